"""Counters, alarms and component health of the agent, as one small thread-safe object.

Workers count what happened (``health.count("events_dropped")``), raise and clear
alarms (``buffer_full``, ``disk_full``, ``db_corrupted``, ``camera_down``,
``sensor_fault``), set gauges (``model_version``, ``last_sync``) and report the
state of components (``camera``, ``loadcell.3``). :meth:`Health.snapshot` gives a
JSON-ready dict; :func:`write_status` writes it atomically to the status file that
``shelfsense edge status`` reads, and the health worker sends :func:`health_report`
of it (``models.wire.HealthReport``) to the cloud: published on ``…/health`` over
MQTT, PUT over HTTP.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from models.atomic import atomic_write
from models.wire import MAX_HEALTH_BYTES

STATUS_FILE = "status.json"

# Alarm names other parts raise; free-form names are allowed too.
BUFFER_FULL = "buffer_full"
DISK_FULL = "disk_full"
DB_CORRUPTED = "db_corrupted"
CAMERA_DOWN = "camera_down"
SENSOR_FAULT = "sensor_fault"
LOADCELL_LINK_DOWN = "loadcell_link_down"

_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # models.wire.KEY_PATTERN
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_VERSION = re.compile(r"^[0-9A-Za-z.+_-]{1,32}$")  # models.wire.VERSION_PATTERN


class HealthConfig(BaseModel):
    """The ``[health]`` section: how often health is written and published."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    interval_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Write the status file and publish health this often.",
    )
    status_file: str = Field(
        default=STATUS_FILE, min_length=1, description="Status file, relative to unit.data_dir."
    )
    publish: bool = Field(
        default=True,
        description="Publish health on shelfsense/<id>/health (MQTT) and PUT it to the cloud (HTTP).",
    )


class Health:
    """Thread-safe counters, alarms, gauges and component states of one agent."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._counters: Counter[str] = Counter()
        self._alarms: dict[str, dict[str, Any]] = {}
        self._gauges: dict[str, Any] = {}
        self._components: dict[str, dict[str, Any]] = {}
        self.started = clock()

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name``."""
        if n:
            with self._lock:
                self._counters[name] += n

    def counter(self, name: str) -> int:
        """Current value of counter ``name``."""
        with self._lock:
            return self._counters[name]

    def alarm(self, name: str, detail: str = "") -> None:
        """Raise alarm ``name`` (keeps the time it was first raised, updates the detail)."""
        with self._lock:
            entry = self._alarms.get(name)
            if entry is None:
                self._alarms[name] = {"since": self._clock(), "detail": detail}
            else:
                entry["detail"] = detail

    def clear(self, name: str) -> None:
        """Clear alarm ``name`` if raised."""
        with self._lock:
            self._alarms.pop(name, None)

    def alarmed(self, name: str) -> bool:
        """True while alarm ``name`` is raised."""
        with self._lock:
            return name in self._alarms

    def set(self, name: str, value: Any) -> None:
        """Set gauge ``name`` (JSON-serialisable value)."""
        with self._lock:
            self._gauges[name] = value

    def get(self, name: str, default: Any = None) -> Any:
        """Current value of gauge ``name``."""
        with self._lock:
            return self._gauges.get(name, default)

    def observe(self, name: str, seconds: float) -> None:
        """Add one timing to gauge ``name`` (``{count, sum, last}``)."""
        with self._lock:
            t = self._gauges.setdefault(name, {"count": 0, "sum": 0.0, "last": None})
            t["count"] += 1
            t["sum"] += seconds
            t["last"] = seconds

    def component(self, name: str, ok: bool, detail: str = "") -> None:
        """Report the state of a component (a load-cell channel, the camera, a link)."""
        with self._lock:
            self._components[name] = {"ok": ok, "detail": detail, "at": self._clock()}

    def snapshot(self) -> dict[str, Any]:
        """Everything as a JSON-ready dict."""
        with self._lock:
            return {
                "at": self._clock(),
                "started": self.started,
                "pid": os.getpid(),
                "counters": dict(sorted(self._counters.items())),
                "alarms": {k: dict(v) for k, v in sorted(self._alarms.items())},
                "gauges": dict(sorted(self._gauges.items())),
                "components": {k: dict(v) for k, v in sorted(self._components.items())},
            }


def write_status(path: Path, snapshot: dict[str, Any]) -> None:
    """Write ``snapshot`` as JSON to ``path`` atomically (rewritten often: not fsynced)."""
    with atomic_write(path, perms=0o644, durable=False) as f:
        json.dump(snapshot, f, indent=1, sort_keys=True, default=str)
        f.write("\n")


def read_status(path: Path) -> dict[str, Any] | None:
    """The last status written, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _text(value: object) -> str:
    return _CONTROL.sub(" ", str(value))[:200]


def _interval(value: object) -> float | None:
    """A health interval within the wire's bounds (0, 3600], or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value <= 3600 else None


def health_report(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The part of a snapshot the cloud keeps (``models.wire.HealthReport``), fit to its bounds."""
    alarms = {
        k: {"since": max(0.0, float(v.get("since", 0.0))), "detail": _text(v.get("detail", ""))}
        for k, v in snapshot.get("alarms", {}).items()
        if _KEY.match(k)
    }
    components = {
        k: {"ok": bool(v.get("ok")), "detail": _text(v.get("detail", ""))}
        for k, v in snapshot.get("components", {}).items()
        if _KEY.match(k)
    }
    counters = {
        k: min(int(v), 2**53 - 1)
        for k, v in snapshot.get("counters", {}).items()
        if _KEY.match(k) and isinstance(v, int) and v >= 0
    }
    gauges = snapshot.get("gauges", {})
    report: dict[str, Any] = {
        "at": max(0.0, float(snapshot.get("at", 0.0))),
        "alarms": dict(list(alarms.items())[:64]),
        "components": dict(list(components.items())[:64]),
        "counters": dict(list(counters.items())[:256]),
        "agent_version": AGENT_VERSION,
        "model_version": _int(gauges.get("model_version"), 2**31 - 1),
        "buffer_depth": _int(gauges.get("buffer_depth"), 2**53 - 1),
        "oldest_unsynced": _clock(gauges.get("oldest_unsynced")),
        "last_sync": _clock(gauges.get("last_sync")),
        "interval_s": _interval(gauges.get("health_interval_s")),
    }
    if gauges.get("decided_by") in ("model", "rules"):
        report["decided_by"] = gauges["decided_by"]
    return {k: v for k, v in report.items() if v is not None}


def health_payload(snapshot: dict[str, Any]) -> bytes:
    """:func:`health_report` as the JSON sent, trimmed to the cloud's size bound.

    A report past ``MAX_HEALTH_BYTES`` loses its counters first, then the details
    of its alarms and components (names and states always go).
    """
    report = health_report(snapshot)
    body = json.dumps(report, separators=(",", ":")).encode()
    if len(body) > MAX_HEALTH_BYTES:
        report["counters"] = {}
        body = json.dumps(report, separators=(",", ":")).encode()
    if len(body) > MAX_HEALTH_BYTES:
        for part in ("alarms", "components"):
            report[part] = {k: {**v, "detail": ""} for k, v in report[part].items()}
        body = json.dumps(report, separators=(",", ":")).encode()
    return body


def _agent_version() -> str | None:
    try:
        found = importlib.metadata.version("shelfsense")
    except importlib.metadata.PackageNotFoundError:
        return None
    return found if _VERSION.match(found) else None


def _int(value: object, top: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        return None
    return value


def _clock(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 <= value <= 1e10 else None


AGENT_VERSION = _agent_version()
