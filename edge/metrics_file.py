"""The unit's health in the node_exporter textfile format, written atomically into its data dir.

Point node_exporter's ``--collector.textfile.directory`` at the unit's data dir
and it exports ``shelfsense.prom`` with the host's own metrics. :func:`render`
is pure (a :meth:`edge.health.Health.snapshot` in, text out);
:func:`write_textfile` replaces the file in one rename, so a scrape never sees
half of it (the temporary file does not end in ``.prom``, so it is never read).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from models.atomic import write_text_atomic

TEXTFILE = "shelfsense.prom"
PREFIX = "shelfsense_unit"
# Counters that mean the link to the cloud failed, by the kind named in the metric.
LINK_ERRORS = {
    "sync_failures": "sync_failure",
    "ack_timeouts": "ack_timeout",
    "batches_refused": "batch_refused",
    "acks_malformed": "ack_malformed",
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, metric: str, value: float, /, **labels: str) -> None:
        inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        self.lines.append(f"{metric}{{{inner}}} {value!r}" if inner else f"{metric} {value!r}")


def render(snapshot: dict[str, Any], *, device_id: str, now: float) -> str:
    """The textfile for one health snapshot of ``device_id`` taken before ``now``."""
    gauges: dict[str, Any] = snapshot.get("gauges", {})
    counters: dict[str, int] = snapshot.get("counters", {})
    alarms: dict[str, Any] = snapshot.get("alarms", {})
    out = _Out()
    dev = {"device": device_id}

    def gauge(name: str, help_text: str, value: Any) -> None:
        v = _num(value)
        if v is not None:
            out.family(f"{PREFIX}_{name}", "gauge", help_text)
            out.sample(f"{PREFIX}_{name}", v, **dev)

    gauge(
        "buffer_depth",
        "Events in the outbox not yet acked by the cloud.",
        gauges.get("buffer_depth"),
    )
    oldest = _num(gauges.get("oldest_unsynced"))
    age = None if oldest is None else max(0.0, now - oldest)
    gauge("oldest_unsynced_age_seconds", "Age of the oldest event not yet synced.", age)
    last_sync = _num(gauges.get("last_sync"))
    gauge(
        "last_sync_age_seconds",
        "Seconds since the cloud last acked a batch.",
        None if last_sync is None else max(0.0, now - last_sync),
    )
    gauge("buffer_used_bytes", "Bytes the outbox takes on disk.", gauges.get("buffer_used_bytes"))
    gauge(
        "model_version",
        "Model version deciding (absent while rules decide).",
        gauges.get("model_version"),
    )
    gauge(
        "status_age_seconds",
        "Seconds since this file's figures were taken.",
        now - float(snapshot.get("at", now)),
    )

    name = f"{PREFIX}_decisions_total"
    out.family(name, "counter", "Events decided, by head (stock, interest) and decider.")
    for key, n in sorted(counters.items()):
        if key.startswith("decisions."):
            head, _, by = key.removeprefix("decisions.").partition(".")
            out.sample(name, float(n), head=head, decided_by=by or "unknown", **dev)

    timing = gauges.get("inference_seconds")
    if isinstance(timing, dict) and _num(timing.get("count")) is not None:
        name = f"{PREFIX}_inference_seconds"
        out.family(name, "summary", "Time deciding a pass of windows (model or rules).")
        out.sample(f"{name}_count", float(timing["count"]), **dev)
        out.sample(f"{name}_sum", float(timing.get("sum", 0.0)), **dev)
        last = _num(timing.get("last"))
        if last is not None:
            gauge("inference_last_seconds", "Time the last pass took deciding.", last)

    name = f"{PREFIX}_link_errors_total"
    out.family(name, "counter", "Failures talking to the cloud, by kind.")
    for key, kind in LINK_ERRORS.items():
        out.sample(name, float(counters.get(key, 0)), kind=kind, **dev)

    name = f"{PREFIX}_alarm"
    out.family(name, "gauge", "1 for each alarm raised now.")
    for alarm in sorted(alarms):
        out.sample(name, 1.0, alarm=alarm, **dev)

    name = f"{PREFIX}_counter_total"
    out.family(name, "counter", "Every counter the agent keeps, by name.")
    for key, n in sorted(counters.items()):
        v = _num(n)
        if v is not None:
            out.sample(name, v, name=key, **dev)
    return "\n".join(out.lines) + "\n"


def write_textfile(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename (rewritten often: not fsynced)."""
    write_text_atomic(path, text, perms=0o644, durable=False)
