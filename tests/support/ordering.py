"""The order in which a parallel suite starts its tests: the long ones first, spread out.

``make test`` runs pytest-xdist's ``worksteal`` scheduler, which hands worker ``i`` the
``i``-th equal share of the collection and later lets an idle worker take the back
half of a busy worker's queue. A long test that sits late in a share can then run
alone at the end while the other workers wait. Tests marked ``slow(seconds=…)`` (their
time alone on 2 shared cores, roughly) are therefore dealt out heaviest first to the
share with the least work, and each share starts with its long tests; the rest keep
their collection order. Every worker computes the same order, as xdist requires.
"""

from __future__ import annotations

import heapq

import pytest

DEFAULT_SLOW_S = 10.0


def slow_seconds(item: pytest.Item) -> float | None:
    """The weight of a test marked ``slow``, or None when it is not marked."""
    mark = item.get_closest_marker("slow")
    if mark is None:
        return None
    return float(mark.kwargs.get("seconds", DEFAULT_SLOW_S))


def spread(items: list[pytest.Item], shares: int) -> list[pytest.Item]:
    """``items`` reordered: ``shares`` equal-length shares, each opening with its long tests.

    Long tests go heaviest first to the share with the least long-test time (ties to the
    earlier share); the remaining tests fill the shares in collection order.
    """
    if shares <= 1:
        return sorted(items, key=lambda it: -(slow_seconds(it) or 0.0))
    long = sorted(
        ((w, i) for i, it in enumerate(items) if (w := slow_seconds(it)) is not None),
        key=lambda t: (-t[0], t[1]),
    )
    long_idx = {i for _, i in long}
    rest = [it for i, it in enumerate(items) if i not in long_idx]
    # the scheduler gives the first share len // n items, the next (what is left) // (n - 1) ...
    sizes = []
    left = len(items)
    for k in range(shares):
        sizes.append(left // (shares - k))
        left -= sizes[-1]
    heap = [(0.0, k) for k in range(shares)]
    heads: list[list[pytest.Item]] = [[] for _ in range(shares)]
    for w, i in long:
        full = []
        load, k = heapq.heappop(heap)
        while len(heads[k]) >= sizes[k]:  # a share holds no more long tests than its size
            full.append((load, k))
            load, k = heapq.heappop(heap)
        heads[k].append(items[i])
        heapq.heappush(heap, (load + w, k))
        for entry in full:
            heapq.heappush(heap, entry)
    out: list[pytest.Item] = []
    pos = 0
    for k in range(shares):
        fill = sizes[k] - len(heads[k])
        out += heads[k] + rest[pos : pos + fill]
        pos += fill
    return out


def reorder(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place for the number of workers this run has."""
    workers = getattr(config, "workerinput", {}).get("workercount", 1)
    items[:] = spread(items, int(workers))
