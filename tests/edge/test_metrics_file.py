"""The unit's node_exporter textfile: parsed by the Prometheus text parser, replaced whole."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from edge.health import Health
from edge.metrics_file import TEXTFILE, render, write_textfile


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_render_reports_buffer_decisions_timing_and_link_errors() -> None:
    h = Health(clock=lambda: 1000.0)
    h.set("buffer_depth", 12)
    h.set("oldest_unsynced", 940.0)
    h.set("last_sync", 990.0)
    h.set("model_version", 7)
    h.count("decisions.stock.model", 5)
    h.count("decisions.interest.model", 2)
    h.count("sync_failures", 3)
    h.observe("inference_seconds", 0.02)
    h.observe("inference_seconds", 0.04)
    h.alarm("buffer_full")
    got = samples(render(h.snapshot(), device_id="unit-1", now=1000.0))
    dev = (("device", "unit-1"),)
    assert got[("shelfsense_unit_buffer_depth", dev)] == 12
    assert got[("shelfsense_unit_oldest_unsynced_age_seconds", dev)] == 60
    assert got[("shelfsense_unit_last_sync_age_seconds", dev)] == 10
    assert got[("shelfsense_unit_model_version", dev)] == 7
    head = (("decided_by", "model"), ("device", "unit-1"), ("head", "stock"))
    assert got[("shelfsense_unit_decisions_total", head)] == 5
    assert got[("shelfsense_unit_inference_seconds_count", dev)] == 2
    assert abs(got[("shelfsense_unit_inference_seconds_sum", dev)] - 0.06) < 1e-9
    link = (("device", "unit-1"), ("kind", "sync_failure"))
    assert got[("shelfsense_unit_link_errors_total", link)] == 3
    assert got[("shelfsense_unit_alarm", (("alarm", "buffer_full"), ("device", "unit-1")))] == 1


def test_nothing_synced_yet_leaves_ages_out() -> None:
    text = render(Health(clock=lambda: 5.0).snapshot(), device_id="u", now=5.0)
    names = {name for name, _ in samples(text)}
    assert "shelfsense_unit_oldest_unsynced_age_seconds" not in names
    assert "shelfsense_unit_last_sync_age_seconds" not in names


@given(
    device=st.text(min_size=1, max_size=30),
    counters=st.dictionaries(st.text(min_size=1, max_size=40), st.integers(0, 2**40), max_size=8),
    alarm=st.text(min_size=1, max_size=40),
)
def test_any_names_render_as_parseable_text(
    device: str, counters: dict[str, int], alarm: str
) -> None:
    h = Health(clock=lambda: 1.0)
    for name, n in counters.items():
        h.count(name, n)
    h.alarm(alarm)
    got = samples(render(h.snapshot(), device_id=device, now=1.0))
    assert (
        got[("shelfsense_unit_alarm", tuple(sorted({"alarm": alarm, "device": device}.items())))]
        == 1
    )


def test_write_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / TEXTFILE
    write_textfile(path, "a 1\n")
    write_textfile(path, "a 2\n")
    assert path.read_text() == "a 2\n"
    assert [p.name for p in tmp_path.iterdir()] == [TEXTFILE]
