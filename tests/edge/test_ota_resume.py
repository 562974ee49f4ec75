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

from cloud.settings import CloudSettings
from edge.ota.fetch import FetchError, TufFetcher
from edge.ota.resume import ResumingFetcher
from tests.edge.cut_proxy import cut_proxy
from tests.edge.ota_support import OtaCloud, ota_cloud


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[OtaCloud]:
    from tests.cloud.conftest import build_settings

    settings: CloudSettings = build_settings(
        database_url=f"sqlite:///{tmp_path / 'cloud.db'}", rate_per_s=0, db_pool_size=5
    )
    with ota_cloud(settings, tmp_path) as running:
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
