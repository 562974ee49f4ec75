"""A model download held under ``ota.max_download_kib_s``.

The pacer's promise, for any chunk sizes, rate, burst and gaps between reads: by the
end of each wait the bytes read are at most ``burst + rate * elapsed``, and it asks
for no more waiting than that needs. Then the unit's fetcher downloads v2 from the
real cloud under a rate, on a clock that only moves when it sleeps: the waits add up
to the bytes it read over the rate (less the first second's burst).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import Config
from edge.ota.fetch import TufFetcher
from edge.ota.pacing import Pacer
from edge.ota.resume import ResumingFetcher
from tests.edge.ota_support import OtaCloud, sqlite_ota_cloud


@given(
    rate=st.floats(min_value=1, max_value=1e7),
    burst_share=st.floats(min_value=0.01, max_value=4),
    reads=st.lists(
        st.tuples(st.integers(min_value=0, max_value=200_000), st.floats(0, 5)), max_size=60
    ),
)
@settings(max_examples=300, deadline=None)
def test_bytes_read_never_run_ahead_of_the_rate(
    rate: float, burst_share: float, reads: list[tuple[int, float]]
) -> None:
    burst = rate * burst_share
    pacer = Pacer(rate, burst)
    now = start = 100.0
    read = 0
    for n, gap in reads:
        now += gap
        wait = pacer.wait_for(n, now)
        assert wait >= 0
        now += wait
        read += n
        assert read <= burst + rate * (now - start) + 1e-6 * max(1.0, read)


@given(
    rate=st.floats(min_value=1, max_value=1e7),
    sizes=st.lists(st.integers(min_value=1, max_value=200_000), min_size=1, max_size=60),
)
@settings(max_examples=300, deadline=None)
def test_back_to_back_reads_wait_exactly_what_the_rate_needs(rate: float, sizes: list[int]) -> None:
    pacer = Pacer(rate)
    now = waited = 0.0
    for n in sizes:
        wait = pacer.wait_for(n, now)
        now += wait
        waited += wait
    expected = max(0.0, (sum(sizes) - rate) / rate)
    assert waited == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_a_pacer_needs_a_rate() -> None:
    with pytest.raises(ValueError, match="rate"):
        Pacer(0)


def test_the_config_caps_downloads_in_kib_per_second() -> None:
    assert Config.model_validate({}).ota.max_download_kib_s == 0
    assert Config.model_validate({"ota": {"max_download_kib_s": 64}}).ota.max_download_kib_s == 64
    with pytest.raises(ValueError, match="max_download_kib_s"):
        Config.model_validate({"ota": {"max_download_kib_s": -1}})


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[OtaCloud]:
    with sqlite_ota_cloud(tmp_path) as running:
        yield running


def test_a_download_under_a_rate_waits_its_bytes_over_the_rate(
    cloud: OtaCloud, tmp_path: Path
) -> None:
    stored = cloud.stored_target(cloud.publish(2)).read_bytes()
    rate = 4096.0
    slept: list[float] = []
    fetcher = ResumingFetcher(5, max_bytes_per_s=rate, clock=lambda: sum(slept), sleep=slept.append)
    tuf = TufFetcher(
        cloud.live.url, tmp_path / "tuf", trusted_root=cloud.repo.root_bytes(1), fetcher=fetcher
    )
    assert tuf.fetch(2) == stored
    assert fetcher.chunk_size <= rate / 4 + 1024  # waits of about a quarter second each
    assert fetcher.bytes_received > len(stored)  # the metadata and the archive
    assert sum(slept) == pytest.approx((fetcher.bytes_received - rate) / rate, rel=1e-9)
    assert sum(slept) > len(stored) / rate - 1  # the archive alone needs this long


def test_without_a_rate_nothing_waits(cloud: OtaCloud, tmp_path: Path) -> None:
    stored = cloud.stored_target(cloud.publish(2)).read_bytes()
    slept: list[float] = []
    fetcher = ResumingFetcher(5, sleep=slept.append)
    tuf = TufFetcher(
        cloud.live.url, tmp_path / "tuf", trusted_root=cloud.repo.root_bytes(1), fetcher=fetcher
    )
    assert tuf.fetch(2) == stored and slept == []
