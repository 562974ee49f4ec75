"""A canary held by labelled accuracy, over HTTP: shadow events, a sale, corrections, promotion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.keys import Role
from tests.cloud.support import Live, event, make_key
from tests.cloud.test_rollouts_http import UNITS, desired, fleet, report

__all__ = ["fleet"]
T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


def test_labelled_gate_holds_then_releases_the_canary(fleet: tuple[Live, dict[str, str]]) -> None:
    live, tokens = fleet
    be = live.client(make_key(live.store, Role.BACKEND))
    with live.client(make_key(live.store, Role.OPERATOR)) as op:
        for d in UNITS:
            assert op.put(f"/v1/devices/{d}/desired", json={"model_version": 1}).status_code == 200
        body = {
            "model_version": 2,
            "phases": "canary:2,100%",
            "min_soak_s": 0,
            "max_labelled_drop": 0.0,
            "min_labelled_windows": 2,
        }
        made = op.post("/v1/rollouts", json=body)
        assert made.status_code == 201, made.text
        rid = made.json()["rollout_id"]
        canary = [d for d, v in desired(live, tokens).items() if v == 2]
        for d in canary:
            report(live, tokens[d], d, "active", 2)
        shown = op.get(f"/v1/rollouts/{rid}").json()
        assert (shown["phase"], shown["status"]) == (0, "running")
        assert "waiting for 2 labelled shadow windows" in shown["reason"]
        # the canary's first unit decided two removals; the candidate said restock
        unit = canary[0]
        evs = [
            event(unit, s, t=T0 - timedelta(minutes=s))
            | {"shadow": {"version": 2, "label": "restock"}}
            for s in (1, 2)
        ]
        with live.client(tokens[unit]) as u:
            r = u.post("/v1/ingest/events", json={"device_id": unit, "events": evs})
            assert r.status_code == 200, r.text
        sale = {"store_id": "store-1", "sku": "SKU-1", "quantity": 2, "sold_at": T0.isoformat()}
        assert be.post("/v1/sales", json=sale).json()["matched_units"] == 2
        report(live, tokens[unit], unit, "active", 2)
        shown = op.get(f"/v1/rollouts/{rid}").json()
        assert shown["phase"] == 0 and "candidate 0/2 vs current 2/2" in shown["reason"]
        assert shown["labelled"] == {
            "stock": {"windows": 2, "current_accuracy": 1.0, "candidate_accuracy": 0.0}
        }
        # staff: both were really restocks, so the candidate was right
        for s in (1, 2):
            fix = {"device_id": unit, "seq": s, "label": "restock", "note": ""}
            assert be.post("/v1/corrections", json=fix).status_code == 201
        report(live, tokens[unit], unit, "active", 2)
        shown = op.get(f"/v1/rollouts/{rid}").json()
        assert shown["phase"] == 1 or shown["status"] == "completed", shown
