"""The TUF repository served by the live service, checked by python-tuf's own client (ngclient).

A unit trusts root 1 from provisioning; from there the ``Updater`` must fetch and
verify a published bundle, refuse a tampered target, refuse a frozen (expired)
timestamp, and follow a root rotation.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner
from tuf.api.exceptions import ExpiredMetadataError, LengthOrHashMismatchError
from tuf.ngclient import Updater

from cloud import registry
from cloud.ota_schemas import ModelPublic
from cloud.settings import CloudSettings
from cloud.tuf_repo import TufRepository, init_repository, key_file, load_signer
from models.bundle import generate_key, verify_bundle
from tests.cloud.ota_support import train_output
from tests.cloud.support import Live, serve


@pytest.fixture
def ota_live(sqlite_settings: CloudSettings, tmp_path: Path) -> Iterator[Live]:
    settings = sqlite_settings.model_copy(update={"tuf_dir": tmp_path / "tuf"})
    init_repository(TufRepository.from_settings(settings), tmp_path / "keys")
    with serve(settings) as running:
        yield running


def updater(live: Live, tmp: Path, name: str) -> Updater:
    """A fresh client that trusts root 1, as a unit does after provisioning."""
    repo = TufRepository.from_settings(live.settings)
    (tmp / name / "targets").mkdir(parents=True)
    return Updater(
        metadata_dir=str(tmp / name),
        metadata_base_url=f"{live.url}/v1/tuf/metadata/",
        target_dir=str(tmp / name / "targets"),
        target_base_url=f"{live.url}/v1/tuf/targets/",
        bootstrap=repo.root_bytes(1),
    )


def publish(
    live: Live, tmp: Path, version: int, key: Ed25519PrivateKey | None = None
) -> ModelPublic:
    key = key or generate_key()
    out = train_output(tmp / f"run{version}", key, version)
    with live.store.writer.begin() as conn:
        return registry.publish(
            conn,
            TufRepository.from_settings(live.settings),
            registry.read_candidate(out, [key.public_key()]),
            load_signer(key_file(tmp / "keys", "targets")),
        )


def test_client_fetches_and_verifies_a_published_bundle(ota_live: Live, tmp_path: Path) -> None:
    key = generate_key()
    model = publish(ota_live, tmp_path, 2, key)
    client = updater(ota_live, tmp_path, "unit")
    client.refresh()
    info = client.get_targetinfo("model-v2.tar")
    assert info is not None and info.length == model.bytes
    path = client.download_target(info)
    bundle = registry.bundle_from_archive(Path(path).read_bytes(), tmp_path / "unpacked")
    assert verify_bundle(bundle, trusted_keys=[key.public_key()]).version == 2


def test_cache_headers(ota_live: Live, tmp_path: Path) -> None:
    model = publish(ota_live, tmp_path, 2)
    with ota_live.client() as http:
        ts = http.get("/v1/tuf/metadata/timestamp.json")
        assert ts.status_code == 200 and ts.headers["cache-control"] == "public, max-age=60"
        root = http.get("/v1/tuf/metadata/1.root.json")
        assert "immutable" in root.headers["cache-control"]
        target = http.get(f"/v1/tuf/targets/{model.sha256}.model-v2.tar")
        assert target.status_code == 200 and len(target.content) == model.bytes
        assert http.get("/v1/tuf/metadata/..%2Fkeys%2Fsnapshot.pem").status_code in (404, 422)
        assert http.get("/v1/tuf/targets/" + "0" * 64 + ".x").status_code == 404


def test_tampered_target_is_refused(ota_live: Live, tmp_path: Path) -> None:
    model = publish(ota_live, tmp_path, 2)
    repo = TufRepository.from_settings(ota_live.settings)
    stored = repo.target_file(f"{model.sha256}.model-v2.tar")
    data = bytearray(stored.read_bytes())
    data[600] ^= 0xFF  # same length, other bytes
    stored.write_bytes(bytes(data))
    client = updater(ota_live, tmp_path, "unit")
    info = client.get_targetinfo("model-v2.tar")
    assert info is not None
    with pytest.raises(LengthOrHashMismatchError):
        client.download_target(info)


def test_frozen_timestamp_is_refused(ota_live: Live, tmp_path: Path) -> None:
    publish(ota_live, tmp_path, 2)
    frozen = TufRepository.from_settings(
        ota_live.settings, clock=lambda: datetime.now(UTC) - timedelta(days=3)
    )
    frozen.refresh(force=True)  # a timestamp signed three days ago, expired for two
    with pytest.raises(ExpiredMetadataError):
        updater(ota_live, tmp_path, "unit").refresh()
    TufRepository.from_settings(ota_live.settings).refresh(force=True)
    updater(ota_live, tmp_path, "unit2").refresh()  # fresh again


def test_client_follows_a_root_rotation(ota_live: Live, tmp_path: Path) -> None:
    repo = TufRepository.from_settings(ota_live.settings)
    new = CryptoSigner.generate_ed25519()
    assert repo.rotate_root(load_signer(key_file(tmp_path / "keys", "root")), new) == 2
    publish(ota_live, tmp_path, 3)
    client = updater(ota_live, tmp_path, "unit")
    client.refresh()
    assert client.get_targetinfo("model-v3.tar") is not None
    assert (tmp_path / "unit" / "root.json").read_bytes() == repo.root_bytes(2)
