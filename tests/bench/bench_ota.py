"""A model rollout to N lightweight units against the real cloud: time to 100 %, bytes, server RSS.

``shelfsense cloud serve`` runs as a child process on loopback (SQLite, rollout ticker
every 0.5 s) with v1 and v2 published in its TUF repository. Each simulated unit is the
real OTA client without sensing: its A/B slots (v1 installed), :class:`OtaWorker` and
:class:`TufFetcher` (python-tuf ngclient, counting the bytes it receives), polling its
desired state (every ``--poll-s``) and posting its reports over HTTP with its own unit key, one thread each.

Two phases on the same server, one after the other:

* ``baseline``: the units poll their desired state for a while, nothing to fetch;
* ``rollout``: ``POST /v1/rollouts`` (``canary:5%,50%,100%``, no soak) until the
  rollout is completed and every unit runs v2.

Per phase: seconds, TUF bytes served (metadata and targets, as the units received
them), the server's largest RSS (sampled every 50 ms from ``/proc``) and its CPU
seconds, and CPU per unit update. ``.venv/bin/python -m tests.bench.bench_ota
[--quick] [--units N] [--bundle-kib K]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tuf.ngclient.urllib3_fetcher import Urllib3Fetcher

from cloud import registry
from cloud.keys import Role
from cloud.settings import build_settings
from cloud.store import open_store
from cloud.tuf_repo import TufRepository, init_repository, key_file, load_signer
from edge.health import Health
from edge.ota.fetch import TufFetcher
from edge.ota.install import install_bundle
from edge.ota.slots import Slots
from edge.ota.state import OtaSettings
from edge.ota.worker import OtaWorker
from models.bundle import MODEL_ONNX, generate_key, write_bundle
from models.tokens import ShelfTokenizer
from models.wire_fleet import OtaReport
from tests.cloud.ota_support import train_output
from tests.cloud.support import make_key, register_unit
from tests.edge.real_cloud import RealCloud, real_cloud
from tests.support.waiting import wait_until


class CountingFetcher(Urllib3Fetcher):
    """ngclient's urllib3 fetcher that adds up the bytes it receives."""

    def __init__(self, total: list[int], lock: threading.Lock) -> None:
        super().__init__(socket_timeout=30, app_user_agent="shelfsense-bench")
        self.total, self.lock = total, lock

    def _fetch(self, url: str) -> Iterator[bytes]:
        for chunk in super()._fetch(url):
            with self.lock:
                self.total[0] += len(chunk)
            yield chunk


@dataclass
class LiteUnit:
    """One unit's OTA client and its HTTP session to the cloud."""

    device_id: str
    worker: OtaWorker
    http: httpx.Client
    poll_s: float = 0.5
    desired: int | None = None

    def poll(self) -> None:
        got = self.http.get(f"/v1/devices/{self.device_id}/desired")
        version = got.json().get("model_version") if got.status_code == 200 else None
        if version is not None and version != self.desired:
            self.desired = version
            self.worker.want(version)
        self.worker.step()

    def run(self, stop: threading.Event) -> None:
        self.worker.boot()
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):  # the next poll tries again
                self.poll()
            stop.wait(self.poll_s)


@dataclass
class Sampler:
    """The server's largest RSS and its CPU seconds, read from ``/proc/<pid>``."""

    pid: int
    peak_kib: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def loop(self) -> None:
        while not self.stop.wait(0.05):
            self.peak_kib = max(self.peak_kib, self.rss_kib())


@dataclass
class Row:
    phase: str
    units: int
    seconds: float
    tuf_bytes: int
    rss_mib: float
    cpu_s: float
    updates: int

    def line(self) -> str:
        per = f"{1000 * self.cpu_s / self.updates:8.1f}" if self.updates else "       -"
        return (
            f"{self.phase:<9} {self.units:>5} {self.seconds:>8.1f} "
            f"{self.tuf_bytes / 1e6:>10.2f} {self.rss_mib:>9.1f} {self.cpu_s:>7.1f} {per}"
        )


HEADER = "phase     units  seconds  TUF MB out  RSS MiB  CPU s  CPU ms/update"


def _bundle(tmp: Path, key: Any, version: int, size: int) -> Path:
    """A signed, gated train-output folder of ``version`` whose model is ``size`` random bytes."""
    out = train_output(tmp / f"run{version}", key, version)
    onnx = tmp / f"m{version}.onnx"
    onnx.write_bytes(os.urandom(size))
    tok = ShelfTokenizer.default()
    write_bundle(
        out / "bundle",
        files={MODEL_ONNX: onnx},
        tokenizer=tok,
        golden=[{"input_ids": [[1, 2, 3]], "attention_mask": [[1, 1, 1]]}],
        version=version,
        model={"vocab_size": tok.vocab_size, "max_len": tok.max_len},
        metrics={"student int8": {"interest": 0.71, "stock": 0.83}},
        signing_key=key,
    )
    return out


def _setup(cloud: RealCloud, tmp: Path, n: int, size: int) -> tuple[list[str], bytes, Any]:
    """Publish v1 and v2 in a fresh repository and register ``n`` units; their ids."""
    tuf_dir = tmp / "tuf"
    settings = build_settings(database_url=cloud.database_url, tuf_dir=tuf_dir)
    repo = TufRepository.from_settings(settings)
    init_repository(repo, tmp / "keys")
    key = generate_key()
    store = open_store(cloud.database_url, pool_size=1)
    try:
        with store.writer.begin() as conn:
            for version in (1, 2):
                candidate = registry.read_candidate(
                    _bundle(tmp, key, version, size), [key.public_key()]
                )
                registry.publish(
                    conn, repo, candidate, load_signer(key_file(tmp / "keys", "targets"))
                )
        ids = [f"unit-{i:04d}" for i in range(n)]
        for d in ids:
            cloud.keys[d] = register_unit(store, d, "store-1", f"bay-{d}")
        cloud.keys["operator"] = make_key(store, Role.OPERATOR)
    finally:
        store.dispose()
    cloud.env = {
        "SHELFSENSE_CLOUD_TUF_DIR": str(tuf_dir),
        "SHELFSENSE_CLOUD_ROLLOUT_TICK_S": "0.5",
        "SHELFSENSE_CLOUD_DB_POOL_SIZE": "8",
    }
    return ids, repo.root_bytes(1), key


def _unit(
    cloud: RealCloud, tmp: Path, d: str, root: bytes, key: Any, got: list[int], lock: threading.Lock
) -> LiteUnit:
    where = tmp / "units" / d
    current = where / "models" / "current"
    install_bundle(
        tmp / "run1" / "bundle", current, trusted_keys=[key.public_key()], agent_version="0.1.0"
    )
    http = httpx.Client(
        base_url=cloud.url, headers={"Authorization": f"Bearer {cloud.keys[d]}"}, timeout=30
    )

    def report(body: OtaReport) -> None:
        http.post(
            f"/v1/devices/{d}/reported",
            content=body.model_dump_json(exclude_none=True),
            headers={"Content-Type": "application/json"},
        ).raise_for_status()

    worker = OtaWorker(
        Slots.open(current),
        TufFetcher(cloud.url, where / "tuf", trusted_root=root, fetcher=CountingFetcher(got, lock)),
        state_file=where / "ota.json",
        trusted_keys=[key.public_key()],
        agent_version="0.1.0",
        report=report,
        health=Health(),
        settings=OtaSettings(watch_s=0, retry_s=1.0),
    )
    return LiteUnit(d, worker, http)


def run(units: int, bundle_kib: int, baseline_s: float, poll_s: float = 0.5) -> list[Row]:
    """Baseline, then a rollout of v2 to ``units`` units; prints and returns the rows."""
    with tempfile.TemporaryDirectory(prefix="bench-ota-") as name:
        tmp = Path(name)
        with real_cloud(tmp, start=False) as cloud:
            ids, root, key = _setup(cloud, tmp, units, bundle_kib * 1024)
            cloud.start()
            assert cloud.api is not None
            lock, got = threading.Lock(), [0]
            fleet = [_unit(cloud, tmp, d, root, key, got, lock) for d in ids]
            for u in fleet:
                u.poll_s = poll_s
            sampler = Sampler(cloud.api.pid)
            threading.Thread(target=sampler.loop, daemon=True).start()
            stop = threading.Event()
            threads = [threading.Thread(target=u.run, args=(stop,), daemon=True) for u in fleet]
            op = httpx.Client(
                base_url=cloud.url,
                headers={"Authorization": f"Bearer {cloud.keys['operator']}"},
                timeout=120,
            )
            rows = []
            try:
                for t in threads:
                    t.start()
                cpu0, t0 = sampler.cpu_s(), time.monotonic()
                stop.wait(baseline_s)  # the baseline is a fixed span of polling, by design
                rows.append(
                    Row(
                        "baseline",
                        units,
                        time.monotonic() - t0,
                        got[0],
                        sampler.peak_kib / 1024,
                        sampler.cpu_s() - cpu0,
                        0,
                    )
                )
                sampler.peak_kib, got[0] = 0, 0
                cpu0, t0 = sampler.cpu_s(), time.monotonic()
                made = op.post(
                    "/v1/rollouts",
                    json={"model_version": 2, "phases": "canary:5%,50%,100%", "min_soak_s": 0},
                )
                made.raise_for_status()
                rollout = made.json()["rollout_id"]

                def done() -> bool:
                    if any(u.worker.slots.current_version() != 2 for u in fleet):
                        return False
                    status = op.get(f"/v1/rollouts/{rollout}").json()["status"]
                    return bool(status == "completed")

                wait_until(done, timeout=600, poll=0.1)
                rows.append(
                    Row(
                        "rollout",
                        units,
                        time.monotonic() - t0,
                        got[0],
                        sampler.peak_kib / 1024,
                        sampler.cpu_s() - cpu0,
                        units,
                    )
                )
            finally:
                stop.set()
                sampler.stop.set()
                for t in threads:
                    t.join(timeout=30)
                for u in fleet:
                    u.http.close()
                op.close()
    print(f"{units} units, bundle model {bundle_kib} KiB, polls every {poll_s} s")
    print(HEADER)
    for row in rows:
        print(row.line())
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="20 units, 256 KiB, 3 s baseline, 0.5 s poll"
    )
    p.add_argument("--units", type=int, default=None, help="simulated units (default 200)")
    p.add_argument("--bundle-kib", type=int, default=None, help="model size (default 2048)")
    p.add_argument("--poll-s", type=float, default=None, help="desired poll (default 5 s)")
    args = p.parse_args(argv)
    # a SIGTERM (``timeout``) unwinds like an exception: the cloud child is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    units = args.units or (20 if args.quick else 200)
    kib = args.bundle_kib or (256 if args.quick else 2048)
    poll = args.poll_s or (0.5 if args.quick else 5.0)
    run(units, kib, 3.0 if args.quick else 10.0, poll)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
