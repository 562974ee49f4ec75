"""A download cut five times in the middle completes, resumed with HTTP Range requests.

The unit's :class:`TufFetcher` fetches v2 from the real cloud's TUF repository through
a proxy that cuts each of the first five target answers after half its body. With
ranges it resumes from where each cut left it (fewer than twice the archive's bytes
in all); against a server that ignores ranges it starts again each time and still
ends with the verified archive. More cuts than ``max_resumes`` fail, to be retried.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.ota.fetch import FetchError, TufFetcher
from edge.ota.resume import ResumingFetcher
from tests.edge.cut_proxy import cut_proxy
from tests.edge.ota_support import OtaCloud, sqlite_ota_cloud


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[OtaCloud]:
    with sqlite_ota_cloud(tmp_path) as running:
        yield running


def fetch_through(
    cloud: OtaCloud, where: Path, url: str, fetcher: ResumingFetcher, version: int
) -> bytes:
    where.mkdir(parents=True, exist_ok=True)
    tuf = TufFetcher(
        url, where / "tuf", trusted_root=cloud.repo.root_bytes(1), fetcher=fetcher, timeout_s=5
    )
    return tuf.fetch(version)


def test_five_cuts_resume_with_ranges_and_fetch_less_than_twice_the_size(
    cloud: OtaCloud, tmp_path: Path
) -> None:
    stored = cloud.stored_target(cloud.publish(2)).read_bytes()
    with cut_proxy(cloud.live.url, cuts=5) as proxy:
        fetcher = ResumingFetcher(5, max_resumes=10, chunk_size=512)
        data = fetch_through(cloud, tmp_path / "unit", proxy.url, fetcher, 2)
    assert data == stored
    assert fetcher.resumes == 5 and proxy.requests == 6
    assert len(proxy.ranges) == 5 and all(r.startswith("bytes=") for r in proxy.ranges)
    assert proxy.body_bytes < 2 * len(stored), (proxy.body_bytes, len(stored))
    assert proxy.body_bytes == len(stored)  # every byte once: the bytes before a cut are kept


def test_a_server_without_ranges_is_fetched_again_from_the_start(
    cloud: OtaCloud, tmp_path: Path
) -> None:
    stored = cloud.stored_target(cloud.publish(2)).read_bytes()
    with cut_proxy(cloud.live.url, cuts=5, honour_range=False) as proxy:
        fetcher = ResumingFetcher(5, max_resumes=10, chunk_size=512)
        data = fetch_through(cloud, tmp_path / "unit", proxy.url, fetcher, 2)
    assert data == stored and fetcher.resumes == 5
    assert proxy.body_bytes > 3 * len(stored)  # five half bodies and a whole one


def test_more_cuts_than_allowed_fail_to_be_retried(cloud: OtaCloud, tmp_path: Path) -> None:
    cloud.publish(2)
    with cut_proxy(cloud.live.url, cuts=5) as proxy:
        fetcher = ResumingFetcher(5, max_resumes=3, chunk_size=512)
        with pytest.raises(FetchError) as err:
            fetch_through(cloud, tmp_path / "unit", proxy.url, fetcher, 2)
    assert err.value.retry and "cut 4 times" in err.value.reason, err.value.reason


def _unit_fetcher(cloud: OtaCloud, where: Path, url: str, max_resumes: int) -> TufFetcher:
    """The fetcher as the agent builds it (its own resuming fetcher, keeping partials)."""
    return TufFetcher(
        url,
        where / "tuf",
        trusted_root=cloud.repo.root_bytes(1),
        timeout_s=5,
        max_resumes=max_resumes,
    )


def _cut_once(cloud: OtaCloud, unit: Path, url: str) -> Path:
    """A download of v2 that a cut ends (no resume allowed); returns the bytes it kept."""
    unit.mkdir(exist_ok=True)
    before = _unit_fetcher(cloud, unit, url, max_resumes=0)
    with pytest.raises(FetchError) as err:
        before.fetch(2)
    assert err.value.retry, err.value.reason
    (kept,) = before.partial_dir.glob("*.part")
    return kept


def test_a_download_cut_before_a_restart_goes_on_from_the_bytes_kept_on_disk(
    cloud: OtaCloud, tmp_path: Path
) -> None:
    stored = cloud.stored_target(cloud.publish(2)).read_bytes()
    unit = tmp_path / "unit"
    with cut_proxy(cloud.live.url, cuts=1) as proxy:
        kept = _cut_once(cloud, unit, proxy.url)
        half = kept.stat().st_size
        assert 0 < half < len(stored) and stored.startswith(kept.read_bytes())

        after = _unit_fetcher(cloud, unit, proxy.url, max_resumes=0)  # a new process
        assert after.fetch(2) == stored
    assert proxy.ranges == [f"bytes={half}-"]
    assert proxy.body_bytes == len(stored)  # the half before the cut and the rest, once
    assert getattr(after.fetcher, "bytes_reused", None) == half
    assert not list(after.partial_dir.glob("*.part"))  # a verified download leaves nothing


def test_kept_bytes_that_do_not_make_the_signed_file_are_dropped_and_fetched_again(
    cloud: OtaCloud, tmp_path: Path
) -> None:
    stored = cloud.stored_target(cloud.publish(2)).read_bytes()
    unit = tmp_path / "unit"
    with cut_proxy(cloud.live.url, cuts=1) as proxy:
        kept = _cut_once(cloud, unit, proxy.url)
        spoilt = bytearray(kept.read_bytes())
        spoilt[len(spoilt) // 2] ^= 0xFF  # a torn or tampered byte on the card
        kept.write_bytes(bytes(spoilt))

        second = _unit_fetcher(cloud, unit, proxy.url, max_resumes=0)
        with pytest.raises(FetchError) as err:
            second.fetch(2)
        assert err.value.retry and "kept partial download dropped" in err.value.reason
        assert not list(second.partial_dir.glob("*.part"))
        assert second.fetch(2) == stored  # from the first byte, verified


def test_metadata_is_never_kept_and_another_versions_partial_goes(
    cloud: OtaCloud, tmp_path: Path
) -> None:
    cloud.publish(2)
    unit = tmp_path / "unit"
    unit.mkdir()
    stale = unit / "ota-partial" / ("0" * 32 + ".part")
    stale.parent.mkdir()
    stale.write_bytes(b"a version no longer wanted")
    fetcher = _unit_fetcher(cloud, unit, cloud.live.url, max_resumes=0)
    fetcher.fetch(2)
    resuming = fetcher.fetcher
    assert isinstance(resuming, ResumingFetcher)
    assert resuming.partial_path(f"{cloud.live.url}/v1/tuf/metadata/timestamp.json") is None
    assert resuming.partial_path(f"{cloud.live.url}/v1/tuf/targets/model-v2.tar") is not None
    assert not stale.exists()


def test_progress_is_told_at_each_tenth_of_the_archive(cloud: OtaCloud, tmp_path: Path) -> None:
    stored = cloud.stored_target(cloud.publish(2)).read_bytes()
    told: list[float] = []
    fetcher = ResumingFetcher(5, chunk_size=512)
    tuf = TufFetcher(
        cloud.live.url, tmp_path / "tuf", trusted_root=cloud.repo.root_bytes(1), fetcher=fetcher
    )
    assert tuf.fetch(2, progress=told.append) == stored
    assert len(stored) > 10 * 512  # so every tenth is a chunk boundary away
    assert len(told) == 10 and told == sorted(told) and told[-1] == 1.0
    assert [int(share * 10) for share in told] == list(range(1, 11))
    assert fetcher.on_chunk is None  # nothing counted after the download
