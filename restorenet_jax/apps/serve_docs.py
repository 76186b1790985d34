"""The service's API documentation pages, working without internet access.

FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN. `fastapi-offline` serves those scripts and
styles from its package instead (under /static-offline-docs). One outside request remains: ReDoc's footer shows a
logo fetched from ReDoc's site, so /redoc is served here with a Content-Security-Policy that lets the page load only
what the service itself serves (the logo is then simply not shown).
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html
from fastapi_offline import FastAPIOffline

STATIC_URL = "/static-offline-docs"
# Scripts and styles from this service only (ReDoc and Swagger UI inline a little of both); images also as data: URIs;
# ReDoc runs its search in a worker made from a blob: URL.
LOCAL_ONLY = ("default-src 'self'; script-src 'self' 'unsafe-inline' blob:; style-src 'self' 'unsafe-inline'; "
              "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")


def offline_docs_app(**kwargs: Any) -> FastAPI:
    """A FastAPI app (same keyword arguments) whose /docs (Swagger UI) and /redoc (ReDoc) need no network."""
    app = FastAPIOffline(redoc_url=None, static_url=STATIC_URL, **kwargs)

    @app.get("/redoc", include_in_schema=False)
    async def redoc():
        page = get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{STATIC_URL}/redoc.standalone.js", with_google_fonts=False,
                              redoc_favicon_url=f"{STATIC_URL}/favicon.png")
        page.headers["Content-Security-Policy"] = LOCAL_ONLY
        return page

    return app
