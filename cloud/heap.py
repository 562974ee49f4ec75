"""The garbage collector's settings for a long-running server process.

A batch of 500 events parses into some 5,000 Python objects that live for one
request. With CPython's defaults the cyclic collector runs every 700 allocations
and, every few runs, walks every object the process holds (its app, schemas and
pools included): HTTP ingest on SQLite ran about a fifth slower for it. A
serving process therefore, once it has started, moves what it holds into the
permanent generation (``gc.freeze``: never walked again) and collects the young
generation every :data:`YOUNG_THRESHOLD` allocations instead. Reference counting
still frees almost everything at once; the collector is only for cycles, which a
request seldom makes.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def settle_for_serving() -> None:
    """Freeze what this process holds after start-up and collect young objects less often."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
