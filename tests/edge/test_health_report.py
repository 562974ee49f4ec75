"""What the unit sends as its health always passes the cloud's schema, whatever its gauges hold."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.health import AGENT_VERSION, Health, health_report
from models.wire import HealthReport

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
