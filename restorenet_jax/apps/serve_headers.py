"""A time limit on request headers for the service's HTTP server (uvicorn with h11).

uvicorn bounds the size of a request's headers (h11's incomplete-event limit, 16 kB) but not the time they take:
a connection that sends nothing, or half a request line and then a byte now and then, is held forever, and enough
of them exhaust the process's file descriptors. This protocol gives every request `header_timeout` seconds from
the moment its connection opens (or from the end of the previous answer on a kept-alive connection) until its
headers are complete; a client that is late is logged in one line and disconnected. The body has its own limit
(`--body-timeout`, serve_limits.read_upload).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Optional

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("restorenet_jax.serve")


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's headers (module docstring)."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: Optional[asyncio.TimerHandle] = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._late)

    def _disarm(self) -> None:
        if getattr(self, "_header_timer", None) is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in: the body has its own limit
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # a kept-alive connection: the next request's headers get the same time

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        client = "%s:%d" % self.client if self.client else "unknown client"
        log.info("client %s sent no complete request headers within %g s; connection closed", client,
                 self.header_timeout)
        self.transport.close()


def protocol(header_timeout: float) -> type:
    """The protocol class to give uvicorn (`http=`), with this header time limit in seconds."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": float(header_timeout)})
