"""A bundle download over loopback cut five times in the middle: resumed with ranges vs started again.

The real cloud (uvicorn on loopback, SQLite) serves a published v2 whose model is
``--bundle-kib`` random KiB; a proxy in front of it (``tests/edge/cut_proxy.py``)
closes each of the first five target answers after half its body. Five runs in the
same process, each with a fresh metadata folder and proxy:

* ``no cut``: the unit's fetcher (:class:`~edge.ota.resume.ResumingFetcher`), nothing cut;
* ``restart`` (baseline: what the unit did before): ngclient's stock ``Urllib3Fetcher``,
  each cut a failed download that the OTA client tries again from the first byte;
* ``resume``: the unit's fetcher, each cut resumed with ``Range: bytes=N-``;
* ``reboot``: each cut ends the download and the agent with it (the fetcher allows no
  resume); each try is a new fetcher, as after a restart, and goes on from the bytes
  the one before kept on disk;
* ``paced``: nothing cut, the unit's fetcher under ``ota.max_download_kib_s = 512``
  (the seconds should come to about the archive over 512 KiB/s, less one second's burst).

Reported: download attempts, seconds, target body bytes the proxy sent and their
ratio to the archive. ``python -m tests.bench.bench_ota_resume [--quick] [--bundle-kib K]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tuf.ngclient import FetcherInterface
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from cloud import registry
from cloud.tuf_repo import key_file, load_signer
from edge.ota.fetch import FetchError, TufFetcher
from edge.ota.resume import ResumingFetcher
from tests.bench.bench_ota import _bundle
from tests.edge.cut_proxy import cut_proxy
from tests.edge.ota_support import OtaCloud, ota_cloud

CUTS = 5
PACED_KIB_S = 512


@dataclass
class Row:
    mode: str
    attempts: int
    seconds: float
    body_bytes: int
    archive: int

    def line(self) -> str:
        return (
            f"{self.mode:<8} {self.attempts:>8} {self.seconds:>8.2f} "
            f"{self.body_bytes / 1e6:>9.2f} {self.body_bytes / self.archive:>10.2f}"
        )


HEADER = "mode     attempts  seconds  body MB  x archive"


def _one(cloud: OtaCloud, tmp: Path, mode: str, archive: bytes) -> Row:
    cuts = 0 if mode in ("no cut", "paced") else CUTS
    with cut_proxy(cloud.live.url, cuts) as proxy:
        where = tmp / mode.replace(" ", "-")
        where.mkdir()

        def unit() -> TufFetcher:
            root = cloud.repo.root_bytes(1)
            if mode == "reboot":  # the agent's own fetcher, as a fresh process builds it
                return TufFetcher(proxy.url, where / "tuf", trusted_root=root, max_resumes=0)
            fetcher: FetcherInterface = (
                Urllib3Fetcher(socket_timeout=10)
                if mode == "restart"
                else ResumingFetcher(
                    10, max_bytes_per_s=PACED_KIB_S * 1024 if mode == "paced" else 0
                )
            )
            return TufFetcher(proxy.url, where / "tuf", trusted_root=root, fetcher=fetcher)

        tuf = unit()
        started = time.perf_counter()
        attempts = 0
        while True:
            attempts += 1
            if mode == "reboot" and attempts > 1:
                tuf = unit()
            try:
                got = tuf.fetch(2)
                break
            except FetchError as err:
                if not err.retry or attempts > 2 * CUTS:
                    raise
        seconds = time.perf_counter() - started
    assert got == archive, f"{mode}: the archive differs"
    return Row(mode, attempts, seconds, proxy.body_bytes, len(archive))


def run(bundle_kib: int) -> list[Row]:
    """The five runs on one server; prints and returns the rows."""
    from tests.cloud.conftest import build_settings

    with tempfile.TemporaryDirectory(prefix="bench-ota-resume-") as name:
        tmp = Path(name)
        settings = build_settings(database_url=f"sqlite:///{tmp / 'cloud.db'}", rate_per_s=0)
        with ota_cloud(settings, tmp) as cloud:
            out = _bundle(tmp, cloud.key, 2, bundle_kib * 1024)
            with cloud.live.store.writer.begin() as conn:
                model = registry.publish(
                    conn,
                    cloud.repo,
                    registry.read_candidate(out, [cloud.key.public_key()]),
                    load_signer(key_file(cloud.keys_dir, "targets")),
                )
            archive = cloud.stored_target(model).read_bytes()
            print(f"archive {len(archive) / 1e6:.2f} MB, {CUTS} cuts each after half an answer")
            print(HEADER)
            rows = []
            for mode in ("no cut", "restart", "resume", "reboot", "paced"):
                rows.append(_one(cloud, tmp, mode, archive))
                print(rows[-1].line(), flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 256 KiB bundle")
    ap.add_argument("--bundle-kib", type=int, default=2048)
    args = ap.parse_args()
    run(256 if args.quick else args.bundle_kib)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
