"""A unit on HTTP only has no last will: it turns offline once it missed four health intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from cloud import fleet_state
from cloud.keys import Role
from edge.health import health_report
from shelfsense.cli import main
from tests.cloud.console_support import signed_in
from tests.cloud.support import Live, make_key, register_unit
from tests.support.waiting import wait_until

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@given(
    interval=st.none() | st.floats(min_value=0.01, max_value=3600),
    silent=st.floats(min_value=0, max_value=4 * 3600 + 10),
)
def test_offline_once_four_stated_intervals_were_missed(
    interval: float | None, silent: float
) -> None:
    seen = NOW - timedelta(seconds=silent)
    state = fleet_state.online_state(None, seen, NOW, interval_s=interval)
    limit = 4 * (interval or 30.0)
    assert fleet_state.offline_after_s(interval) == limit
    assert state == (
        "online" if timedelta(seconds=silent) <= timedelta(seconds=limit) else "offline"
    )
    assert fleet_state.online_state(True, seen, NOW, interval_s=interval) == "online"  # MQTT wins


def test_the_unit_states_its_interval_in_each_report() -> None:
    snap = {"at": 1e9, "gauges": {"health_interval_s": 15.0}}
    assert health_report(snap)["interval_s"] == 15.0
    for bad in (0, -1, 3601, float("nan"), float("inf"), True, "30"):
        assert "interval_s" not in health_report({"at": 1e9, "gauges": {"health_interval_s": bad}})


def test_a_unit_that_stops_posting_turns_offline_everywhere(live: Live, capsys) -> None:
    tok = register_unit(live.store, "unit-1")
    op = live.client(make_key(live.store, Role.OPERATOR))

    def post(interval_s: float) -> None:
        body = {"at": datetime.now(UTC).timestamp(), "interval_s": interval_s}
        assert live.client(tok).put("/v1/devices/unit-1/health", json=body).status_code == 200

    def state() -> str:
        return str(op.get("/v1/devices/unit-1").json()["state"])

    post(60)
    one = op.get("/v1/devices/unit-1").json()
    assert (one["state"], one["offline_after_s"]) == ("online", 240.0)
    post(0.5)  # from now on it says it reports every 0.5 s, and then falls silent
    assert op.get("/v1/devices/unit-1").json()["offline_after_s"] == 2.0
    wait_until(lambda: state() == "offline", timeout=15)

    assert main(["fleet", "devices", "list", "--database-url", live.settings.database_url]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("unit-1"))
    assert row.split()[2] == "offline"
    with signed_in(live, make_key(live.store, Role.OPERATOR)) as client:
        page = client.get("/console/fleet").text
        assert 'class="state offline">offline' in page
        assert 'class="state offline">offline' in client.get("/console/units/unit-1").text

    post(60)  # heard again: online again
    assert state() == "online"
