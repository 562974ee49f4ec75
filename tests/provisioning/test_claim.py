"""Claiming a unit against the real cloud: the code, the identity on disk, the code spent."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.keys import Role
from cloud.settings import CloudSettings, build_settings
from cloud.tuf_repo import TufRepository, init_repository
from edge.config import load_config
from edge.sync.identity import load_identity
from models.claim_code import display, new_code
from provisioning.claim import IDENTITY_FILE, KEY_FILE, ClaimError, claim, device_public_key
from tests.cloud.support import Live, batch, make_key, register_unit, serve
from tests.support.mosquitto import free_port


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Live]:
    pub = tmp_path / "signing.pub.pem"
    pub.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    settings: CloudSettings = build_settings(
        database_url=f"sqlite:///{tmp_path / 'cloud.db'}",
        rate_per_s=0,
        db_pool_size=5,
        signing_public_key_file=pub,
        tuf_dir=tmp_path / "tuf",
    )
    init_repository(TufRepository.from_settings(settings), tmp_path / "tuf-keys")
    with serve(settings) as live:
        register_unit(live.store, "seed-unit", "store-7", "bay-2")
        yield live


def make_code(live: Live, **kw: object) -> dict[str, object]:
    operator = make_key(live.store, Role.OPERATOR)
    body = {"store_id": "store-7", "bay_id": "bay-2", **kw}
    with live.client(operator) as c:
        answer = c.post("/v1/claim-codes", json=body)
    assert answer.status_code == 201, answer.text
    made: dict[str, object] = answer.json()["data"][0]
    return made


def codes(live: Live) -> dict[str, object]:
    with live.client(make_key(live.store, Role.OPERATOR)) as c:
        doc: dict[str, object] = c.get("/v1/claim-codes").json()
    return doc


def test_a_claimed_unit_sends_events_under_its_new_identity(cloud: Live, tmp_path: Path) -> None:
    code = str(make_code(cloud)["code"])
    data, config = tmp_path / "unit", tmp_path / "unit.toml"
    config.write_text('# staff notes stay\n[camera]\nsource = "sim"\n')
    said: list[str] = []
    result = claim(code.lower().replace("-", " "), cloud.url, data, config=config, say=said.append)

    assert result.store_id == "store-7" and result.bay_id == "bay-2"
    for name in (IDENTITY_FILE, KEY_FILE, "model-signing.pub.pem", "tuf-root.json"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name
    trusted = TufRepository(tmp_path / "tuf").metadata_file("root.json").read_bytes()
    assert json.loads((data / "tuf-root.json").read_text()) == json.loads(trusted)
    ident = load_identity(data / IDENTITY_FILE)
    assert ident.device_id == result.device_id and ident.mqtt_username == result.device_id
    unit = load_config(config)
    assert (unit.unit.device_id, unit.unit.store, unit.unit.bay) == (
        result.device_id,
        "store-7",
        "bay-2",
    )
    assert unit.sync.base_url == cloud.url
    assert unit.model.trusted_key == (data / "model-signing.pub.pem").resolve()
    assert (data / unit.ota.trusted_root).is_file()  # the OTA client can start from it
    assert "# staff notes stay" in config.read_text()
    assert not list(data.glob(".*.tmp")), "no half-written file stays behind"

    events = batch(
        result.device_id,
        [1, 2],
        store="store-7",
        bay="bay-2",
        kind="interest",
        label="glance",
        slot=None,
        sku=None,
        units=None,
    )
    with cloud.client(ident.api_key) as c:
        stored = c.post("/v1/ingest/events", json=events)
    assert stored.status_code == 200, stored.text
    assert stored.json()["highest_contiguous"] == 2

    listed = codes(cloud)["data"]
    assert isinstance(listed, list)
    assert [(c["state"], c["device_id"]) for c in listed] == [("spent", result.device_id)]
    assert code not in json.dumps(listed), "the list never shows a code"

    with pytest.raises(ClaimError, match="already been used"):
        claim(code, cloud.url, tmp_path / "second-unit", say=said.append)
    assert not (tmp_path / "second-unit" / IDENTITY_FILE).exists()


def test_an_interrupted_claim_is_finished_by_the_same_unit_only(
    cloud: Live, tmp_path: Path
) -> None:
    code = str(make_code(cloud)["code"])
    data = tmp_path / "unit"
    key = device_public_key(data)
    with cloud.client() as c:  # the answer to this claim is lost on the way
        lost = c.post("/v1/claims", json={"code": code, "public_key": key})
        assert lost.status_code == 201
        other = c.post("/v1/claims", json={"code": code, "public_key": "A" * 43})
        assert other.status_code == 409 and other.json()["code"] == "code_in_use"

    result = claim(code, cloud.url, data, say=lambda _: None)
    assert result.device_id == lost.json()["device_id"]
    with cloud.client(lost.json()["api_key"]) as c:
        assert c.get(f"/v1/devices/{result.device_id}/desired").status_code == 401
    with cloud.client(load_identity(data / IDENTITY_FILE).api_key) as c:
        assert c.get(f"/v1/devices/{result.device_id}/desired").status_code == 200


def test_refusals_speak_to_the_person_and_leave_nothing_behind(cloud: Live, tmp_path: Path) -> None:
    code = new_code()
    typo = code[:3] + ("X" if code[3] != "X" else "Y") + code[4:]
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ClaimError, match="typo"):
        claim(typo, nowhere, tmp_path / "a", say=lambda _: None)
    assert not (tmp_path / "a" / KEY_FILE).exists(), "a typo is caught before anything happens"

    with pytest.raises(ClaimError, match="cannot reach the cloud"):
        claim(code, nowhere, tmp_path / "b", say=lambda _: None)
    with pytest.raises(ClaimError, match="not known"):
        claim(code, cloud.url, tmp_path / "c", say=lambda _: None)

    revoked = make_code(cloud)
    with cloud.client(make_key(cloud.store, Role.OPERATOR)) as c:
        assert c.delete(f"/v1/claim-codes/{revoked['code_id']}").status_code == 200
    with pytest.raises(ClaimError, match="withdrawn"):
        claim(str(revoked["code"]), cloud.url, tmp_path / "d", say=lambda _: None)

    with _garbage_server() as url, pytest.raises(ClaimError, match="not JSON"):
        claim(code, url, tmp_path / "e", say=lambda _: None)
    for d in "bcde":
        assert not (tmp_path / d / IDENTITY_FILE).exists()
    failures = codes(cloud)["failures"]
    assert isinstance(failures, dict)
    assert failures["unknown_code"] == 1 and failures["revoked_code"] == 1


def test_expired_codes_are_refused(cloud: Live, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from cloud.store.tables import claim_codes

    made = make_code(cloud)
    with cloud.store.writer.begin() as conn:
        conn.execute(
            update(claim_codes)
            .where(claim_codes.c.code_id == made["code_id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with pytest.raises(ClaimError, match="expired"):
        claim(str(made["code"]), cloud.url, tmp_path / "u", say=lambda _: None)


def test_the_command_line_claims(cloud: Live, tmp_path: Path) -> None:
    code = str(make_code(cloud)["code"])
    config = tmp_path / "unit.toml"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "shelfsense",
            "provision",
            "claim",
            code,
            "--cloud",
            cloud.url,
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path / "var"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "the code is used up" in run.stdout
    assert load_config(config).unit.store == "store-7"
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "shelfsense",
            "provision",
            "claim",
            display(new_code()),
            "--cloud",
            cloud.url,
            "--data-dir",
            str(tmp_path / "other"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 1 and "claim failed: this claim code is not known" in again.stderr


class _Html(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>captive portal</html>")

    def log_message(self, *args: object) -> None:
        pass


class _garbage_server:
    def __enter__(self) -> str:
        self.server = HTTPServer(("127.0.0.1", 0), _Html)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_port}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
