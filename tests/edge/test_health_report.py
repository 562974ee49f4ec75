"""What the unit sends as its health always passes the cloud's schema, whatever its gauges hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.health import AGENT_VERSION, Health, health_payload, health_report
from models.wire import MAX_HEALTH_BYTES, HealthReport

ANY = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)


def test_the_report_carries_versions_and_outbox_figures() -> None:
    h = Health(clock=lambda: 1_800_000_000.0)
    h.set("model_version", 7)
    h.set("decided_by", "model")
    h.set("buffer_depth", 12)
    h.set("oldest_unsynced", 1_799_999_900.0)
    h.set("last_sync", 1_799_999_990.0)
    h.alarm("camera_down", "no frames\nfor 30 s")
    h.component("camera", False, "down")
    rep = HealthReport.model_validate(health_report(h.snapshot()))
    assert (rep.model_version, rep.decided_by, rep.buffer_depth) == (7, "model", 12)
    assert (rep.oldest_unsynced, rep.last_sync) == (1_799_999_900.0, 1_799_999_990.0)
    assert (
        rep.agent_version == AGENT_VERSION
        and rep.alarms["camera_down"].detail == "no frames for 30 s"
    )


@settings(max_examples=300, deadline=None)
@given(
    gauges=st.dictionaries(
        st.sampled_from(
            ["model_version", "decided_by", "buffer_depth", "oldest_unsynced", "last_sync", "x"]
        ),
        ANY,
    ),
    alarms=st.dictionaries(st.text(max_size=70), st.text(max_size=300), max_size=5),
)
def test_any_snapshot_makes_a_valid_report(gauges: dict, alarms: dict) -> None:
    h = Health(clock=lambda: 1_800_000_000.0)
    for k, v in gauges.items():
        h.set(k, v)
    for k, v in alarms.items():
        h.alarm(k, v)
    HealthReport.model_validate(health_report(h.snapshot()))


def test_a_report_past_the_bound_is_trimmed_to_fit() -> None:
    h = Health(clock=lambda: 1_800_000_000.0)
    for i in range(64):
        h.alarm(f"alarm_{i:02d}_" + "a" * 50, '"' * 200)  # each quote escaped: twice the bytes
        h.component(f"part_{i:02d}_" + "p" * 50, False, "\\" * 200)
    for i in range(256):
        h.count(f"counter_{i:03d}_" + "c" * 50, 2**40)
    body = health_payload(h.snapshot())
    assert len(body) <= MAX_HEALTH_BYTES
    rep = HealthReport.model_validate_json(body)
    assert len(rep.alarms) == 64 and len(rep.components) == 64  # names and states kept


def test_a_report_within_the_bound_is_sent_whole() -> None:
    h = Health(clock=lambda: 1_800_000_000.0)
    h.alarm("camera_down", "no frames")
    h.count("events", 5)
    rep = HealthReport.model_validate_json(health_payload(h.snapshot()))
    assert rep.alarms["camera_down"].detail == "no frames" and rep.counters == {"events": 5}
