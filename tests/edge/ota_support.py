"""A cloud with a TUF repository and published bundles, and a unit's OTA worker beside it.

Bundles here stand in a few random bytes for ``model.onnx`` (signed, hashed and gated
like real ones, as in ``tests/cloud/ota_support.py``): the worker is built without the
load-and-golden ``check``, which the end-to-end test runs with a real model.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud import registry
from cloud.ota_schemas import ModelPublic
from cloud.settings import CloudSettings
from cloud.tuf_repo import TufRepository, init_repository, key_file, load_signer
from edge.health import Health
from edge.ota.fetch import TufFetcher
from edge.ota.install import install_bundle
from edge.ota.slots import Slots
from edge.ota.state import OtaSettings
from edge.ota.worker import Loader, OtaWorker
from models.bundle import MODEL_ONNX, generate_key, write_bundle
from models.tokens import ShelfTokenizer
from models.wire_fleet import OtaReport
from tests.cloud.ota_support import train_output
from tests.cloud.support import Live, serve


@dataclass
class OtaCloud:
    """The live service, its repository, the operator's keys folder and the bundle key."""

    live: Live
    repo: TufRepository
    keys_dir: Path
    key: Ed25519PrivateKey
    tmp: Path

    def publish(self, version: int, **bundle: Any) -> ModelPublic:
        """Publish a signed, gated stand-in bundle of ``version`` (``bundle``: write_bundle kw)."""
        out = train_output(self.tmp / f"run{version}", self.key, version)
        if bundle:
            stand_in = self.tmp / f"m{version}.onnx"
            shutil.copyfile(out / "bundle" / MODEL_ONNX, stand_in)
            tok = ShelfTokenizer.default()
            write_bundle(  # the same bundle, made again with other manifest values
                out / "bundle",
                files={MODEL_ONNX: stand_in},
                tokenizer=tok,
                golden=[{"input_ids": [[1, 2, 3]], "attention_mask": [[1, 1, 1]]}],
                version=version,
                model={"vocab_size": tok.vocab_size, "max_len": tok.max_len},
                metrics={},
                signing_key=self.key,
                **bundle,
            )
        with self.live.store.writer.begin() as conn:
            return registry.publish(
                conn,
                self.repo,
                registry.read_candidate(out, [self.key.public_key()]),
                load_signer(key_file(self.keys_dir, "targets")),
            )

    def stored_target(self, model: ModelPublic) -> Path:
        """The target file the service serves for ``model``."""
        return self.repo.target_file(f"{model.sha256}.{model.target_name}")


@contextmanager
def ota_cloud(settings: CloudSettings, tmp: Path) -> Iterator[OtaCloud]:
    """The app with a fresh TUF repository, under uvicorn on loopback."""
    settings = settings.model_copy(update={"tuf_dir": tmp / "tuf", "rollout_tick_s": 0})
    repo = TufRepository.from_settings(settings)
    init_repository(repo, tmp / "keys")
    with serve(settings) as live:
        yield OtaCloud(live, repo, tmp / "keys", generate_key(), tmp)


@contextmanager
def sqlite_ota_cloud(tmp: Path) -> Iterator[OtaCloud]:
    """:func:`ota_cloud` on a SQLite file in ``tmp``, without a rate limit, a small pool."""
    from tests.cloud.conftest import build_settings

    settings = build_settings(
        database_url=f"sqlite:///{tmp / 'cloud.db'}", rate_per_s=0, db_pool_size=5
    )
    with ota_cloud(settings, tmp) as running:
        yield running


@dataclass
class Unit:
    """A unit's slots and OTA worker; ``reports`` collects what it told the cloud."""

    slots: Slots
    worker: OtaWorker
    health: Health
    reports: list[OtaReport] = field(default_factory=list)

    def last(self) -> OtaReport:
        return self.reports[-1]


def unit(
    cloud: OtaCloud,
    where: Path,
    *,
    installed: int | None = 1,
    root: bytes | None = None,
    settings: OtaSettings | None = None,
    load: Loader | None = None,
) -> Unit:
    """A unit trusting root 1 (or ``root``) with version ``installed`` in its slots."""
    health = Health()
    reports: list[OtaReport] = []
    current = where / "models" / "current"
    if installed is not None:
        src = train_output(where / f"v{installed}", cloud.key, installed) / "bundle"
        install_bundle(src, current, trusted_keys=[cloud.key.public_key()], agent_version="0.1.0")
    slots = Slots.open(current)
    worker = OtaWorker(
        slots,
        TufFetcher(
            cloud.live.url,
            where / "tuf",
            trusted_root=root if root is not None else cloud.repo.root_bytes(1),
            timeout_s=5,
        ),
        state_file=where / "ota.json",
        trusted_keys=[cloud.key.public_key()],
        agent_version="0.1.0",
        report=reports.append,
        health=health,
        settings=settings or OtaSettings(watch_s=0, retry_s=0.1),
        load=load,
    )
    worker.boot()
    return Unit(slots, worker, health, reports)
