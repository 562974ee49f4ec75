"""The versioned answer cache: answers by query and version, its bytes bounded."""

from __future__ import annotations

import sys
import threading

import pytest
from pydantic import BaseModel
from starlette.requests import Request

from cloud.api.etag import VersionedCache
from tests.support.waiting import wait_until


class Body(BaseModel):
    text: str


def _request(etag: str | None = None) -> Request:
    headers = [(b"if-none-match", etag.encode())] if etag else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def test_an_answer_is_computed_once_per_version_and_bodies_stay_within_the_bound() -> None:
    cache = VersionedCache(max_bytes=800)
    computed: list[str] = []

    def compute(text: str):
        def run() -> Body:
            computed.append(text)
            return Body(text=text)

        return run

    first = cache.respond(_request(), 1, "a", compute("a" * 50))
    assert cache.respond(_request(), 1, "a", compute("a" * 50)).body == first.body
    assert computed == ["a" * 50]  # the second answer came from the cache
    assert cache.respond(_request(first.headers["etag"]), 1, "a", compute("x")).status_code == 304
    cache.respond(_request(), 2, "a", compute("a" * 60))  # a new version: computed again
    assert len(computed) == 2
    for i in range(40):  # many answers: the cache never holds more than its bytes
        cache.respond(_request(), 1, ("k", i), compute(str(i) * 40))
        assert sum(len(b) for _v, b in cache._entries.values()) <= 800
    big = "b" * 200  # over an eighth of the bound: answered, never kept
    cache.respond(_request(), 1, "big", compute(big))
    cache.respond(_request(), 1, "big", compute(big))
    assert computed.count(big) == 2


def test_requests_missing_on_one_key_together_wait_for_one_computation() -> None:
    cache = VersionedCache()
    started, release = threading.Event(), threading.Event()
    computed: list[int] = []

    def compute() -> bytes:
        computed.append(1)
        started.set()
        assert release.wait(30)
        return b"answer"

    got: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: got.append(cache.get(7, "k", compute))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    assert started.wait(30)

    def where(t: threading.Thread) -> str:
        """``compute`` when the thread is inside it, else the function it is blocked in."""
        top = frame = sys._current_frames().get(t.ident or -1)
        while frame is not None:
            if frame.f_code.co_name == "compute":
                return "compute"
            frame = frame.f_back
        return top.f_code.co_name if top is not None else ""

    # one thread computes; the seven others wait inside get() for it, none in compute()
    wait_until(lambda: sorted(where(t) for t in threads) == ["compute"] + ["get"] * 7, 30)
    release.set()
    for t in threads:
        t.join(30)
    assert got == [b"answer"] * 8 and computed == [1]
    assert cache._flights == {}  # nothing left behind
    assert cache.get(8, "k", lambda: b"new") == b"new"  # another version: computed again


def test_a_failed_computation_is_not_kept_and_the_next_request_computes() -> None:
    cache = VersionedCache()

    def boom() -> bytes:
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError):
        cache.get(1, "k", boom)
    assert cache._flights == {} and cache.get(1, "k", lambda: b"ok") == b"ok"
