"""Handing freed heap back to the system, so the agent's resident memory follows its use.

glibc keeps memory that Python and onnxruntime freed (a model's load and golden
check, a burst of camera frames) for reuse, and the resident set stays at its high
mark. :func:`trim` asks glibc to return what is free (``malloc_trim(0)``): about 3 MB
after a model loads on a unit. The agent calls it after each model load and on each
health pass. Where the C library is not glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def trim() -> bool:
    """Return free heap to the system; True when glibc did it (False: nothing to do here)."""
    fn = _malloc_trim()
    return fn is not None and bool(fn(0))
