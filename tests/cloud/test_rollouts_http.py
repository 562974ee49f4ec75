"""Rollouts end to end over HTTP: units report on ``/v1/devices/{id}/reported``, the service promotes,
aborts on failures and rolls back, and every unit ends on the version it should."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud import registry
from cloud.keys import Role
from cloud.settings import CloudSettings
from cloud.tuf_repo import TufRepository, init_repository, key_file, load_signer
from models.bundle import generate_key
from tests.cloud.ota_support import train_output
from tests.cloud.support import Live, make_key, register_fleet, serve
from tests.support.waiting import wait_until

UNITS = [f"unit-{i}" for i in range(6)]


@pytest.fixture(params=["sqlite", "postgresql"])
def fleet(
    request: pytest.FixtureRequest, sqlite_settings: CloudSettings, tmp_path: Path
) -> Iterator[tuple[Live, dict[str, str]]]:
    """Six units and versions 1-3 published, on SQLite and on PostgreSQL."""
    update: dict[str, object] = {"tuf_dir": tmp_path / "tuf", "rollout_tick_s": 0}
    if request.param == "postgresql":
        update["database_url"] = request.getfixturevalue("pg_url")
    settings = sqlite_settings.model_copy(update=update)
    repo = TufRepository.from_settings(settings)
    init_repository(repo, tmp_path / "keys")
    with serve(settings) as live:
        tokens = register_fleet(live.store, {d: ("store-1", "bay-1") for d in UNITS})
        key = generate_key()
        for version in (1, 2, 3):
            out = train_output(tmp_path / f"run{version}", key, version)
            with live.store.writer.begin() as conn:
                registry.publish(
                    conn,
                    repo,
                    registry.read_candidate(out, [key.public_key()]),
                    load_signer(key_file(tmp_path / "keys", "targets")),
                )
        yield live, tokens


def desired(live: Live, tokens: dict[str, str]) -> dict[str, int | None]:
    out = {}
    for d, token in tokens.items():
        with live.client(token) as http:
            out[d] = http.get(f"/v1/devices/{d}/desired").json()["model_version"]
    return out


def counted(states: dict[str, int]) -> dict[str, int]:
    """The states some unit is in (the API lists every state, with zeros)."""
    return {k: n for k, n in states.items() if n}


def report(
    live: Live, token: str, device: str, state: str, version: int, reason: str = ""
) -> httpx.Response:
    with live.client(token) as http:
        return http.post(
            f"/v1/devices/{device}/reported",
            json={"state": state, "version": version, "reason": reason},
        )


def test_canary_phases_complete_then_rollback(fleet: tuple[Live, dict[str, str]]) -> None:
    live, tokens = fleet
    with live.client(make_key(live.store, Role.OPERATOR)) as op:
        for d in UNITS:
            assert op.put(f"/v1/devices/{d}/desired", json={"model_version": 1}).status_code == 200
        made = op.post(
            "/v1/rollouts",
            json={
                "model_version": 2,
                "phases": "canary:2,50%,100%",
                "min_soak_s": 0,
                "abort_failed": 0.2,
            },
        )
        assert made.status_code == 201, made.text
        rollout = made.json()
        rid = rollout["rollout_id"]
        assert counted(rollout["per_phase"][0]["states"]) == {"pending": 2}
        assert set(rollout["per_phase"][0]["states"]) >= {
            "pending", "downloading", "verifying", "shadow", "active", "failed", "rolled_back"
        }  # fmt: skip
        now = desired(live, tokens)
        canary = [d for d, v in now.items() if v == 2]
        assert len(canary) == 2 and list(now.values()).count(1) == 4
        # a unit reports only for itself
        other = next(d for d in UNITS if d not in canary)
        assert report(live, tokens[other], canary[0], "active", 2).status_code == 403
        for d in canary:
            assert report(live, tokens[d], d, "downloading", 2).status_code == 200
        phase0 = op.get(f"/v1/rollouts/{rid}").json()["per_phase"][0]
        assert counted(phase0["states"]) == {"downloading": 2}
        for d in canary:
            report(live, tokens[d], d, "active", 2)
        # soaked (min_soak 0): promoted to 50 %, one more unit
        shown = op.get(f"/v1/rollouts/{rid}").json()
        assert shown["phase"] == 1 and counted(shown["per_phase"][1]["states"]) == {"pending": 1}
        while (shown := op.get(f"/v1/rollouts/{rid}").json())["status"] == "running":
            for d, v in desired(live, tokens).items():
                if v == 2:
                    report(live, tokens[d], d, "active", 2)
        assert shown["status"] == "completed"
        assert set(desired(live, tokens).values()) == {2}
        back = op.post(f"/v1/rollouts/{rid}/rollback").json()
        assert back["status"] == "rolled_back"
        assert set(desired(live, tokens).values()) == {1}
        for d in UNITS:  # the units go back to 1: the rollout still says what they did with 2
            report(live, tokens[d], d, "active", 1)
        after = op.get(f"/v1/rollouts/{rid}").json()["per_phase"]
        assert sum(counted(p["states"]).get("active", 0) for p in after) == len(UNITS)
        assert op.post(f"/v1/rollouts/{rid}/resume").json()["code"] == "rollout_state"


def test_failing_canary_aborts_and_others_never_get_it(fleet: tuple[Live, dict[str, str]]) -> None:
    live, tokens = fleet
    with live.client(make_key(live.store, Role.OPERATOR)) as op:
        rid = op.post(
            "/v1/rollouts", json={"model_version": 3, "phases": "canary:2,100%", "min_soak_s": 0}
        ).json()["rollout_id"]
        # a second live rollout is refused
        assert op.post("/v1/rollouts", json={"model_version": 2}).json()["code"] == "rollout_live"
        canary = [d for d, v in desired(live, tokens).items() if v == 3]
        report(live, tokens[canary[0]], canary[0], "rolled_back", 3, "golden outputs differ")
        shown = op.get(f"/v1/rollouts/{rid}").json()
        assert shown["status"] == "aborted" and "more than 5%" in shown["reason"]
        assert shown["per_phase"][0]["reasons"] == {"golden outputs differ": 1}
        assert set(desired(live, tokens).values()) == {None}
        assert len(op.get("/v1/rollouts").json()["data"]) == 1


def test_group_rollout_and_halt(fleet: tuple[Live, dict[str, str]]) -> None:
    live, tokens = fleet
    with live.client(make_key(live.store, Role.OPERATOR)) as op:
        for d in UNITS[:3]:
            assert op.post(f"/v1/devices/{d}/groups", json={"group": "north"}).json() == ["north"]
        shown = op.post(
            "/v1/rollouts",
            json={"model_version": 2, "phases": "1,100%", "group": "north", "min_soak_s": 0},
        ).json()
        assert shown["units"] == 3 and shown["group"] == "north"
        first = next(d for d, v in desired(live, tokens).items() if v == 2)
        report(live, tokens[first], first, "active", 2)
        on = {d for d, v in desired(live, tokens).items() if v == 2}
        assert on == set(UNITS[:3])
        halted = op.post(f"/v1/rollouts/{shown['rollout_id']}/halt").json()
        assert halted["status"] == "halted"
        assert set(desired(live, tokens).values()) == {None}
        with live.client(tokens[first]) as unit:
            assert unit.get(f"/v1/devices/{first}/reported").json()["state"] == "active"
            assert unit.get("/v1/rollouts").status_code == 403


def test_background_thread_promotes_after_the_soak(
    sqlite_settings: CloudSettings, tmp_path: Path
) -> None:
    settings = sqlite_settings.model_copy(
        update={"tuf_dir": tmp_path / "tuf", "rollout_tick_s": 0.1}
    )
    repo = TufRepository.from_settings(settings)
    init_repository(repo, tmp_path / "keys")
    with serve(settings) as live:
        tokens = register_fleet(live.store, {d: ("store-1", "bay-1") for d in UNITS[:3]})
        key = generate_key()
        with live.store.writer.begin() as conn:
            registry.publish(
                conn,
                repo,
                registry.read_candidate(train_output(tmp_path / "r", key, 2), [key.public_key()]),
                load_signer(key_file(tmp_path / "keys", "targets")),
            )
        with live.client(make_key(live.store, Role.OPERATOR)) as op:
            rid = op.post(
                "/v1/rollouts",
                json={"model_version": 2, "phases": "1,100%", "min_soak_s": 0.5},
            ).json()["rollout_id"]
            first = next(d for d, v in desired(live, tokens).items() if v == 2)
            report(live, tokens[first], first, "active", 2)
            wait_until(lambda: op.get(f"/v1/rollouts/{rid}").json()["phase"] == 1, timeout=20)
        assert set(desired(live, tokens).values()) == {2}


def test_canary_shadow_agreement_gates_promotion(fleet: tuple[Live, dict[str, str]]) -> None:
    live, tokens = fleet
    with live.client(make_key(live.store, Role.OPERATOR)) as op:
        rid = op.post(
            "/v1/rollouts",
            json={
                "model_version": 2,
                "phases": "canary:2,100%",
                "min_soak_s": 0,
                "min_shadow_agreement": 0.9,
            },
        ).json()["rollout_id"]
        canary = [d for d, v in desired(live, tokens).items() if v == 2]
        for d in canary:
            with live.client(tokens[d]) as unit:
                body = {"state": "shadow", "version": 2, "shadow_agreement": 0.95}
                assert unit.post(f"/v1/devices/{d}/reported", json=body).status_code == 200
        for d in canary:  # going active keeps the agreement reported in shadow
            report(live, tokens[d], d, "active", 2)
        assert op.get(f"/v1/rollouts/{rid}").json()["phase"] == 1
        with live.client(tokens[canary[0]]) as unit:
            assert unit.get(f"/v1/devices/{canary[0]}/reported").json()["shadow_agreement"] == 0.95


def test_the_canary_is_asked_to_shadow_and_its_lowest_head_gates(
    fleet: tuple[Live, dict[str, str]],
) -> None:
    live, tokens = fleet
    with live.client(make_key(live.store, Role.OPERATOR)) as op:
        rid = op.post(
            "/v1/rollouts",
            json={
                "model_version": 2,
                "phases": "canary:2,100%",
                "min_soak_s": 0,
                "min_shadow_agreement": 0.9,
                "shadow_windows": 40,
                "abort_failed": 0.4,
            },
        ).json()["rollout_id"]
        asked = {}
        for d, token in tokens.items():
            with live.client(token) as http:
                asked[d] = http.get(f"/v1/devices/{d}/desired").json()
        canary = [d for d, doc in asked.items() if doc["model_version"] == 2]
        assert len(canary) == 2
        for d in canary:  # only the canary shadows, with the minimum it checks itself
            assert (asked[d]["shadow_windows"], asked[d]["min_shadow_agreement"]) == (40, 0.9)
        good, poor = canary
        for d, heads in (
            (good, {"interest": 0.97, "stock": 0.93}),
            (poor, {"interest": 0.99, "stock": 0.6}),
        ):
            body = {
                "state": "shadow",
                "version": 2,
                "shadow_agreement": 0.99,  # the cloud reads the heads: the lowest counts
                "shadow_heads": heads,
                "shadow_windows": 40,
                "latency_ratio": 1.1,
            }
            with live.client(tokens[d]) as unit:
                assert unit.post(f"/v1/devices/{d}/reported", json=body).status_code == 200
        report(live, tokens[good], good, "active", 2)
        shown = op.get(f"/v1/rollouts/{rid}").json()
        assert shown["shadow_windows"] == 40 and shown["status"] == "aborted"
        assert "shadow agreement 0.60 below 0.90" in shown["reason"]
        phase0 = shown["per_phase"][0]
        assert phase0["reasons"] == {"shadow agreement 0.60 below 0.90": 1}
        figures = {f["device_id"]: f for f in phase0["shadow"]}
        assert figures[poor]["agreement"] == 0.6 and figures[good]["windows"] == 40
        assert figures[good]["heads"] == {"interest": 0.97, "stock": 0.93}
        with live.client(tokens[good]) as unit:  # going active kept the figures
            kept = unit.get(f"/v1/devices/{good}/reported").json()
        assert kept["shadow_heads"] == {"interest": 0.97, "stock": 0.93}
        assert kept["latency_ratio"] == 1.1
