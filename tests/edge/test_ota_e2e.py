"""End to end: a rollout on the real cloud (uvicorn on loopback) moves a sim unit from v1 to v2.

The unit runs the whole agent in sim mode with a real int8 model (version 1) in its
slots. The operator publishes version 2 (a TUF target) and starts a rollout; the unit
polls its desired state, fetches v2 through python-tuf, verifies it, loads it and
replays its golden outputs, switches slots without missing a decision, watches, and
reports ``active``; the rollout completes on that report. Then a v3 whose golden
outputs do not reproduce on the unit is refused (``failed``, the reason names the
golden batch) and v2 goes on deciding. The cloud's events of the unit run 1..N once
each, decided by v1 and then by v2, never back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from cloud import registry
from cloud.keys import Role
from cloud.store.tables import events
from cloud.tuf_repo import key_file, load_signer
from edge.agent import Agent
from edge.config import parse_config
from edge.ota.install import install_bundle
from edge.sync.identity import Identity
from edge.workers.build import add_sensing
from models.bundle import MODEL_ONNX, Bundle, public_key_pem, verify_bundle, write_bundle
from models.tokens import ShelfTokenizer
from tests.cloud.conftest import build_settings
from tests.cloud.ota_support import train_output
from tests.cloud.support import make_key, register_unit
from tests.edge.agent_support import BAY, DEVICE, STORE, unit
from tests.edge.ota_support import ota_cloud
from tests.support.waiting import wait_until

pytest.importorskip("torch")  # the bundle is exported from a tiny random student


def real_versions(tmp: Path) -> tuple[dict[int, Path], Path, Ed25519PrivateKey]:
    """A real int8 bundle as versions 1, 2 and 3 (train-output folders), one signing key."""
    from tests.models.conftest import build_bundle

    built = build_bundle(tmp / "built", version=1)
    golden = Bundle.golden(verify_bundle(built.path, trusted_keys=[built.key.public_key()]))
    tok = ShelfTokenizer.default()

    # v3: signed and gated, but its golden outputs are not what the model computes here
    def one_hot(row: list[float]) -> list[float]:
        return [1.0] + [0.0] * (len(row) - 1)

    off = [{**g, "interest_probs": [one_hot(r) for r in g["interest_probs"]]} for g in golden]
    outs = {}
    for version in (1, 2, 3):
        out = train_output(tmp / f"run{version}", built.key, version)  # the gates report
        write_bundle(
            out / "bundle",
            files={MODEL_ONNX: built.onnx},
            tokenizer=tok,
            golden=off if version == 3 else golden,
            version=version,
            model={"vocab_size": tok.vocab_size, "max_len": tok.max_len},
            metrics={},
            signing_key=built.key,
        )
        outs[version] = out
    pem = tmp / "trusted.pem"
    pem.write_bytes(public_key_pem(built.key))
    return outs, pem, built.key


def test_rollout_moves_a_sim_unit_to_v2_without_missing_a_decision(tmp_path: Path) -> None:
    outs, pem, key = real_versions(tmp_path)
    settings = build_settings(
        database_url=f"sqlite:///{tmp_path / 'cloud.db'}", rate_per_s=0, db_pool_size=5
    )
    with ota_cloud(settings, tmp_path) as cloud:
        live = cloud.live
        with live.store.writer.begin() as conn:
            for version in (2, 3):
                registry.publish(
                    conn,
                    cloud.repo,
                    registry.read_candidate(outs[version], [key.public_key()]),
                    load_signer(key_file(cloud.keys_dir, "targets")),
                )
        token = register_unit(live.store, DEVICE, STORE, BAY)
        data = tmp_path / "unit"
        data.mkdir()
        (data / "tuf-root.json").write_bytes(cloud.repo.root_bytes(1))
        current = data / "models" / "current"
        install_bundle(
            outs[1] / "bundle",
            current,
            trusted_keys=[key.public_key()],
            agent_version="0.1.0",
        )
        cfg = unit(data, live.url)
        cfg["sync"]["desired_poll_s"] = 0.2
        cfg["model"] = {"bundle_dir": str(current), "trusted_key": str(pem)}
        cfg["ota"] = {"watch_s": 1.0, "watch_poll_s": 0.1}
        agent = Agent(parse_config(cfg), identity=Identity(device_id=DEVICE, api_key=token))
        assert agent.ota is not None
        add_sensing(agent, speed=20, sim_hours=1.0)
        op = live.client(make_key(live.store, Role.OPERATOR))
        agent.start()
        try:
            assert op.put(f"/v1/devices/{DEVICE}/desired", json={"model_version": 1}).is_success

            def stored() -> list[tuple[int, int | None]]:
                with live.store.engine.connect() as conn:
                    rows = conn.execute(
                        select(events.c.seq, events.c.model_version)
                        .where(events.c.device_id == DEVICE)
                        .order_by(events.c.seq)
                    )
                    return [(r.seq, r.model_version) for r in rows]

            wait_until(lambda: any(v == 1 for _, v in stored()), timeout=120)
            made = op.post(
                "/v1/rollouts",
                json={"model_version": 2, "phases": "100%", "min_soak_s": 0},
            )
            assert made.status_code == 201, made.text
            rollout = made.json()["rollout_id"]

            def completed() -> bool:
                op.post(f"/v1/rollouts/{rollout}/tick")
                return bool(op.get(f"/v1/rollouts/{rollout}").json()["status"] == "completed")

            wait_until(completed, timeout=120)
            wait_until(lambda: any(v == 2 for _, v in stored()), timeout=120)
            reported = op.get(f"/v1/devices/{DEVICE}/reported").json()
            assert (reported["state"], reported["version"]) == ("active", 2)
            assert reported["previous_version"] == 1
            shown = op.get(f"/v1/rollouts/{rollout}").json()["per_phase"][0]["states"]
            assert {k: n for k, n in shown.items() if n} == {"active": 1}

            # v3 does not reproduce its golden outputs on the unit: refused, v2 decides on
            assert op.put(f"/v1/devices/{DEVICE}/desired", json={"model_version": 3}).is_success

            def refused() -> bool:
                got = op.get(f"/v1/devices/{DEVICE}/reported").json()
                return bool(got["state"] == "failed" and got["version"] == 3)

            wait_until(refused, timeout=120)
            reason = op.get(f"/v1/devices/{DEVICE}/reported").json()["reason"]
            assert "golden" in reason and "interest" in reason, reason
            assert agent.ota.slots.current_version() == 2
            decided = agent.buffer.seq
            wait_until(lambda: agent.buffer.seq > decided + 5, timeout=120)  # still deciding
            wait_until(lambda: agent.buffer.seq > 0 and stored()[-1][0] == agent.buffer.seq)
        finally:
            agent.stop()
            op.close()
    rows = stored()
    seqs = [s for s, _ in rows]
    assert seqs == list(range(1, len(seqs) + 1))  # every decision once, no gap at the switch
    versions = [v for _, v in rows]
    switch = versions.index(2)
    assert set(versions[:switch]) == {1} and set(versions[switch:]) == {2}
    status = json.loads((data / "ota.json").read_text())
    # staging the refused v3 emptied the slot that kept v1: no previous version is kept
    assert (status["current"], status["previous"], status["phase"]) == (2, None, "idle")
