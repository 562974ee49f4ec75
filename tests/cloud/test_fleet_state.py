"""Fleet state without a broker: message parsing, alarm history, online state, the HTTP routes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud import fleet_state, fleet_views
from cloud.fleet_messages import StateRefused, parse_state_message
from cloud.fleet_table import age, device_table
from cloud.keys import Role
from models.wire import MAX_HEALTH_BYTES, HealthReport
from shelfsense.cli import main
from tests.cloud.support import make_key, register_unit

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
ALARM_NAMES = st.sampled_from(["camera_down", "buffer_full", "loadcell_link_down", "disk_full"])


def report(at: float, alarms: dict[str, str] | None = None, **kw: object) -> dict:
    return {
        "at": at,
        "alarms": {k: {"since": at - 5, "detail": d} for k, d in (alarms or {}).items()},
        **kw,
    }


# parsing ----------------------------------------------------------------------------------


def test_parse_reads_each_state_topic() -> None:
    assert parse_state_message("shelfsense/u1/status", b"online").online is True
    assert parse_state_message("shelfsense/u1/status", b"offline").online is False
    body = json.dumps(report(1e9, {"camera_down": "no frames"}, model_version=3)).encode()
    msg = parse_state_message("shelfsense/u1/health", body)
    assert msg.device_id == "u1" and msg.health is not None and msg.health.model_version == 3
    rep = parse_state_message("shelfsense/u1/reported", b'{"state": "active", "version": 4}')
    assert rep.reported is not None and rep.reported.version == 4


@pytest.mark.parametrize(
    ("topic", "payload", "why"),
    [
        ("shelfsense/u1/events", b"online", "not a unit state topic"),
        ("shelfsense/+/status", b"online", "not a unit state topic"),
        ("shelfsense/u1/x/status", b"online", "not a unit state topic"),
        ("shelfsense/u1/status", b"maybe", "not online or offline"),
        ("shelfsense/u1/status", b"online" * 4, "over 16"),
        ("shelfsense/u1/health", b"{not json", "invalid message"),
        ("shelfsense/u1/health", b'{"at": 1, "pid": 4}', "pid"),
        ("shelfsense/u1/health", b'{"at": 1, "buffer_depth": -1}', "buffer_depth"),
        ("shelfsense/u1/health", b'{"at": 1, "agent_version": "1\\n2"}', "agent_version"),
        ("shelfsense/u1/health", b" " * (MAX_HEALTH_BYTES + 1), "over 65536"),
        ("shelfsense/u1/reported", b'{"state": "exploded"}', "state"),
    ],
)
def test_parse_refuses_with_the_reason(topic: str, payload: bytes, why: str) -> None:
    with pytest.raises(StateRefused) as err:
        parse_state_message(topic, payload)
    assert why in err.value.message


@settings(max_examples=300, deadline=None)
@given(
    leaf=st.sampled_from(["status", "health", "reported", "events", ""]),
    device=st.text(max_size=70),
    payload=st.binary(max_size=2000)
    | st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    ).map(lambda v: json.dumps(v).encode()),
)
def test_any_message_is_parsed_or_refused_never_an_error(
    leaf: str, device: str, payload: bytes
) -> None:
    try:
        msg = parse_state_message(f"shelfsense/{device}/{leaf}", payload)
    except StateRefused as err:
        assert err.message and len(err.message) <= 400
    else:
        assert msg.device_id == device and msg.leaf == leaf


# pure decisions ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    open_alarms=st.dictionaries(ALARM_NAMES, st.sampled_from(["a", "b"])),
    now_raised=st.dictionaries(ALARM_NAMES, st.sampled_from(["a", "b"])),
)
def test_alarm_changes_bring_the_open_set_to_the_report(
    open_alarms: dict[str, str], now_raised: dict[str, str]
) -> None:
    rep = HealthReport.model_validate(report(1e9, now_raised))
    ch = fleet_state.alarm_changes(open_alarms, rep)
    after = {k: v for k, v in open_alarms.items() if k not in ch.cleared}
    after |= {k: d for k, (_, d) in ch.raised.items()} | ch.detail
    assert after == now_raised
    assert not set(ch.raised) & set(open_alarms)  # an open alarm is never raised twice


def test_online_state_from_status_or_last_heard() -> None:
    assert fleet_state.online_state(True, None, NOW) == "online"
    assert fleet_state.online_state(False, NOW, NOW) == "offline"  # the last will wins
    assert fleet_state.online_state(None, None, NOW) == "unknown"
    assert fleet_state.online_state(None, NOW - timedelta(seconds=60), NOW) == "online"
    assert fleet_state.online_state(None, NOW - timedelta(seconds=600), NOW) == "offline"


def test_ages_read_at_a_glance() -> None:
    assert [age(s) for s in (None, 5.9, 61, 7300, 90000)] == ["-", "5s", "1m", "2h", "1d"]


# store and routes -------------------------------------------------------------------------


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_alarm_history_over_http_and_a_unit_writes_only_its_own(db, request, capsys) -> None:
    live = request.getfixturevalue("live" if db == "sqlite" else "pg_live")
    tok1 = register_unit(live.store, "unit-1")
    tok2 = register_unit(live.store, "unit-2", store_id="store-2")
    op = live.client(make_key(live.store, Role.OPERATOR))
    u1, u2 = live.client(tok1), live.client(tok2)
    t = datetime.now(UTC).timestamp()

    r = u2.put("/v1/devices/unit-1/health", json=report(t, {"camera_down": "forged"}))
    assert r.status_code == 403 and r.json()["code"] == "device_mismatch"
    assert op.get("/v1/alarms").json()["count"] == 0  # nothing stored

    first = report(t, {"camera_down": "no frames"}, buffer_depth=40, oldest_unsynced=t - 90)
    assert u1.put("/v1/devices/unit-1/health", json=first).status_code == 200
    later = report(t + 30, {"buffer_full": "outbox at its cap"}, buffer_depth=5, model_version=7)
    assert u1.put("/v1/devices/unit-1/health", json=later).status_code == 200
    stale = report(t + 10, {"camera_down": "late"})  # out of order: changes nothing
    assert u1.put("/v1/devices/unit-1/health", json=stale).status_code == 200

    alarms = op.get("/v1/alarms", params={"device": "unit-1"}).json()["data"]
    assert [(a["name"], a["active"]) for a in alarms] == [
        ("buffer_full", True),
        ("camera_down", False),
    ]
    cleared = datetime.fromisoformat(alarms[1]["cleared_at"]).replace(tzinfo=UTC)
    assert cleared.timestamp() == pytest.approx(t + 30, abs=1e-3)
    assert [a["name"] for a in op.get("/v1/alarms", params={"active": "true"}).json()["data"]] == [
        "buffer_full"
    ]
    assert op.get("/v1/alarms", params={"store": "store-2"}).json()["count"] == 0
    assert op.get("/v1/alarms", params={"device": "ghost"}).status_code == 404
    assert op.get("/v1/alarms", params={"active": "maybe"}).status_code == 422
    assert op.get("/v1/alarms", params={"limit": 0}).status_code == 422
    assert u1.get("/v1/alarms").status_code == 403  # operators only

    listed = {d["device_id"]: d for d in op.get("/v1/devices").json()["data"]}
    one = listed["unit-1"]
    assert one["state"] == "online"  # HTTP only: heard from just now
    assert (one["model_version"], one["buffer_depth"], one["alarms"]) == (7, 5, ["buffer_full"])
    assert listed["unit-2"]["state"] == "unknown"
    assert op.get("/v1/devices/unit-1").json()["alarms"] == ["buffer_full"]
    assert op.get("/v1/devices", params={"store": "nowhere"}).status_code == 404

    with live.store.engine.connect() as conn:
        since = datetime.now(UTC) - timedelta(hours=1)
        history = fleet_views.health_history(conn, "unit-1", since=since)
    assert [h[1] for h in history] == [40]  # a sample a minute at most
    text = device_table(
        [fleet_views.DeviceStatePublic.model_validate(d) for d in listed.values()],
        datetime.now(UTC),
    )
    assert "unit-1" in text and "v7" in text and "buffer_full" in text
    assert text.splitlines()[-1] == "2 units: 1 online, 1 not; 1 alarming"

    db_url = ["--database-url", live.settings.database_url]
    assert main(["fleet", "devices", "alarms", "--device", "unit-1", *db_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["UNIT", "STORE", "ALARM", "RAISED", "CLEARED", "DETAIL"]
    assert lines[1].split()[:3] == ["unit-1", "store-1", "buffer_full"]
    assert "raised now" in lines[1] and "outbox at its cap" in lines[1]
    assert lines[-1] == "2 alarms"
    assert main(["fleet", "devices", "alarms", "--active", "--json", *db_url]) == 0
    assert [a["name"] for a in json.loads(capsys.readouterr().out)] == ["buffer_full"]
    assert main(["fleet", "devices", "alarms", "--limit", "0", *db_url]) == 2


def test_health_body_is_bounded_over_http(live) -> None:
    tok = register_unit(live.store, "unit-1")
    big = json.dumps({"at": 1e9, "pad": "x" * (live.settings.max_body_bytes + 1)})
    r = live.client(tok).put(
        "/v1/devices/unit-1/health", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413


def test_two_workers_with_one_units_reports_raise_its_alarm_once(pg_url: str) -> None:
    """Reports of one unit stored at once by workers (PostgreSQL): one history row, no error,
    from the unit's very first report on."""
    import concurrent.futures as cf

    from cloud.store import open_store
    from cloud.store.tables import device_alarms

    store = open_store(pg_url, pool_size=4)
    register_unit(store, "unit-1")
    t = datetime.now(UTC).timestamp()

    def store_one(i: int) -> None:
        rep = HealthReport.model_validate(report(t + i * 0.001, {"disk_full": "98 %"}))
        with store.writer.begin() as conn:
            fleet_state.record_health(conn, "unit-1", rep, datetime.now(UTC))

    with cf.ThreadPoolExecutor(4) as pool:
        list(pool.map(store_one, range(8)))
    with store.engine.connect() as conn:
        rows = conn.execute(device_alarms.select()).all()
    store.dispose()
    assert [(r.name, r.cleared_at) for r in rows] == [("disk_full", None)]


def test_devices_are_read_a_page_at_a_time_by_id(live) -> None:
    for i in range(5):
        register_unit(live.store, f"unit-{i}", store_id="store-1" if i % 2 else "store-2")
    op = live.client(make_key(live.store, Role.OPERATOR))
    seen, url, pages = [], "/v1/devices?limit=2", 0
    while url is not None:
        body = op.get(url).json()
        assert body["count"] == len(body["data"]) <= 2
        seen += [d["device_id"] for d in body["data"]]
        url, pages = body["next"], pages + 1
    assert seen == [f"unit-{i}" for i in range(5)] and pages == 3
    one = op.get("/v1/devices", params={"store": "store-1", "limit": 1}).json()
    assert [d["device_id"] for d in one["data"]] == ["unit-1"]
    rest = op.get(one["next"]).json()
    assert [d["device_id"] for d in rest["data"]] == ["unit-3"] and rest["next"] is None
    assert op.get("/v1/devices").json()["next"] is None  # five fit the default page
    assert op.get("/v1/devices", params={"limit": 0}).status_code == 422
    assert op.get("/v1/devices", params={"after": "../x"}).status_code == 422
