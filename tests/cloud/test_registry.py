"""``fleet models publish|list|show`` and ``/v1/models``: only gated, signed, newer bundles get in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tuf.api.metadata import Targets

from cloud import registry
from cloud.errors import ConflictError
from cloud.keys import Role
from cloud.tuf_repo import TufRepository, init_repository, key_file, load_signer
from models.bundle import generate_key
from shelfsense.cli import main
from tests.cloud.ota_support import train_output
from tests.cloud.support import Live, make_key


@pytest.fixture
def repo(tmp_path: Path) -> TufRepository:
    repo = TufRepository(tmp_path / "tuf")
    init_repository(repo, tmp_path / "keys")
    return repo


def test_publish_records_metrics_training_and_target(
    live: Live, repo: TufRepository, tmp_path: Path
) -> None:
    key = generate_key()
    out = train_output(tmp_path / "run2", key, 2)
    candidate = registry.read_candidate(out, [key.public_key()])
    signer = load_signer(key_file(tmp_path / "keys", "targets"))
    with live.store.writer.begin() as conn:
        model = registry.publish(conn, repo, candidate, signer)
    assert model.version == 2 and model.target_name == "model-v2.tar"
    assert model.training == {
        "windows": 1200,
        "heldout_windows": 300,
        "from": "2026-11-01T00:00:00+00:00",
        "to": "2026-11-30T00:00:00+00:00",
    }
    assert model.metrics["int8_fp32_agreement"] == 0.98
    info = repo.load(Targets).signed.targets["model-v2.tar"]
    assert info.length == model.bytes and info.hashes["sha256"] == model.sha256
    # the same version, or an older one, is refused
    older = registry.read_candidate(train_output(tmp_path / "run1", key, 1), [key.public_key()])
    with live.store.writer.begin() as conn, pytest.raises(ConflictError, match="not higher"):
        registry.publish(conn, repo, older, signer)
    with live.client(make_key(live.store, Role.OPERATOR)) as http:
        listed = http.get("/v1/models").json()
        assert listed["count"] == 1 and listed["data"][0]["version"] == 2
        assert http.get("/v1/models/2").json()["sha256"] == model.sha256
        assert http.get("/v1/models/9").json()["code"] == "not_found"
    with live.client(make_key(live.store, Role.BACKEND)) as http:
        assert http.get("/v1/models").status_code == 403


def test_refuses_bad_signature_failed_gates_and_missing_report(tmp_path: Path) -> None:
    key = generate_key()
    out = train_output(tmp_path / "a", key, 3)
    with pytest.raises(registry.BundleRefusedError, match="bad signature"):
        registry.read_candidate(out, [generate_key().public_key()])
    failed = train_output(tmp_path / "b", key, 3, gates_pass=False)
    with pytest.raises(registry.BundleRefusedError, match="golden outputs reproduce"):
        registry.read_candidate(failed, [key.public_key()])
    (out / "metrics.json").unlink()
    with pytest.raises(registry.BundleRefusedError, match="no training report"):
        registry.read_candidate(out, [key.public_key()])
    tampered = train_output(tmp_path / "c", key, 3)
    with (tampered / "bundle" / "vocab.json").open("a") as f:
        f.write(" ")
    with pytest.raises(registry.BundleRefusedError, match=r"vocab\.json"):
        registry.read_candidate(tampered, [key.public_key()])


def test_cli_publish_list_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--database-url", f"sqlite:///{tmp_path / 'c.db'}", "--tuf-dir", str(tmp_path / "tuf")]
    assert main(["fleet", "tuf", "init", "--keys-dir", str(tmp_path / "keys"), *db]) == 0
    key = generate_key()
    out = train_output(tmp_path / "run", key, 4)
    publish = ["fleet", "models", "publish", str(out), "--keys-dir", str(tmp_path / "keys")]
    trusted = ["--trusted-key", str(out / "trusted-key.pem")]
    capsys.readouterr()
    assert main([*publish, *trusted, *db]) == 0
    assert "published model v4: model-v4.tar" in capsys.readouterr().out
    assert main(["fleet", "models", "list", *db]) == 0
    assert "windows 1200" in capsys.readouterr().out
    assert main(["fleet", "models", "show", "4", *db]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 4
    shutil.rmtree(out / "bundle")
    train_output(out, key, 4)
    assert main([*publish, *trusted, *db]) != 0
    assert "version 4 is not higher than the published 4" in capsys.readouterr().err


def test_cli_rollout_tag_create_show_halt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--database-url", f"sqlite:///{tmp_path / 'c.db'}", "--tuf-dir", str(tmp_path / "tuf")]
    assert main(["fleet", "tuf", "init", "--keys-dir", str(tmp_path / "keys"), *db]) == 0
    out = train_output(tmp_path / "run", generate_key(), 2)
    publish = ["fleet", "models", "publish", str(out), "--keys-dir", str(tmp_path / "keys")]
    assert main([*publish, "--trusted-key", str(out / "trusted-key.pem"), *db]) == 0
    assert main(["fleet", "stores", "add", "s1", *db[:2]]) == 0
    assert main(["fleet", "stores", "add-bay", "s1", "b1", *db[:2]]) == 0
    for d in ("u1", "u2", "u3"):
        assert main(["fleet", "devices", "add", d, "--store", "s1", "--bay", "b1", *db[:2]]) == 0
    assert main(["fleet", "devices", "tag", "u1", "north", *db]) == 0
    assert main(["fleet", "devices", "tag", "u2", "north", *db]) == 0
    capsys.readouterr()
    create = ["fleet", "rollouts", "create", "--model", "2", "--phases", "canary:1,100%"]
    assert main([*create, "--group", "north", "--abort-failed", "10%", *db]) == 0
    shown = capsys.readouterr().out
    assert "rollout 1: model v2 running, phase 0 (canary:1,100%), 2 units in north" in shown
    assert "phase 0 canary:1     1 units: pending 1" in shown
    assert main(["fleet", "rollouts", "halt", "1", *db]) == 0
    assert "model v2 halted" in capsys.readouterr().out
    assert main(["fleet", "rollouts", "resume", "1", *db]) != 0
    assert "cannot resume a rollout that is halted" in capsys.readouterr().err
