"""Keeping the service's resident memory bounded: give freed heap pages back to the system.

Decoding, restoring and encoding an image of a new size allocate large temporary buffers (and a new compiled
program allocates more while it compiles). glibc's allocator keeps freed memory in its arenas, fragmented across the
worker threads, so the process's RSS climbs with every new size even though nothing is still in use.
`malloc_trim(0)` returns those free pages to the system; it costs well under a millisecond on a trimmed heap.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from typing import Callable, Optional


def _load_trim() -> Optional[Callable[[int], int]]:
    name = ctypes.util.find_library("c")
    try:
        fn = ctypes.CDLL(name or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows): nothing to trim
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


_TRIM = _load_trim()
_LOCK = threading.Lock()


def rss_mb() -> float | None:
    """This process's resident memory in MiB (Linux /proc; None elsewhere): reported by /healthz."""
    try:
        with open("/proc/self/statm") as f:
            return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def release_free_memory() -> bool:
    """Returns free heap memory to the operating system (glibc `malloc_trim`); False where unavailable."""
    if _TRIM is None:
        return False
    with _LOCK:  # one trim at a time: concurrent trims would only contend for the same arena locks
        _TRIM(0)
    return True
