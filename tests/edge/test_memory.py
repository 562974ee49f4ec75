"""Freed heap goes back to the system: a large freed allocation no longer counts as resident."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import pytest

from edge.memory import trim


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trim_returns_freed_heap_that_malloc_kept() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    # many small blocks live in the main heap (not mmap'd); one more block above them
    # keeps the heap's top in use, so free() alone cannot hand their pages back
    blocks = [libc.malloc(4000) for _ in range(20_000)]
    top = libc.malloc(4000)
    for p in blocks:
        ctypes.memset(p, 1, 4000)
    held = _rss_kib()
    for p in blocks:
        libc.free(p)
    kept = _rss_kib()
    try:
        assert kept > held - 40_000, (held, kept)  # free() kept most of the ~80 MB resident
        assert trim() is True
        assert _rss_kib() < kept - 40_000, (held, kept, _rss_kib())  # trim() handed it back
    finally:
        libc.free(top)
