"""The versioned answer cache: answers by query and version, its bytes bounded."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.requests import Request

from cloud.api.etag import VersionedCache


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
