"""The console's **Models** and **Rollouts** pages, and the rollout buttons.

Models: every published version with its held-out macro-F1 per contender, the
int8/fp32 agreement, what it was trained on and its confusion matrices (shaded
tables, rows true). Rollouts: each rollout with its status and every phase's
progress (units active, in flight, failed, not started), and for an operator the
pause / resume / halt / roll-back buttons (CSRF token, operator key; the desired
states that change are published like the API's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud import registry, rollouts
from cloud.console.charts import HEAT_LEVELS
from cloud.console.routes import _error, _form, _services, _to_signin, current_session, render
from cloud.errors import CloudError
from cloud.keys import Role
from cloud.ota_schemas import ModelPublic, RolloutPublic

router = APIRouter(prefix="/console", include_in_schema=False)
ACTIONS = {
    "running": ("pause", "halt", "rollback"),
    "paused": ("resume", "halt", "rollback"),
    "completed": ("rollback",),
}
IN_FLIGHT = ("pending", "downloading", "verifying", "staged", "shadow")
FAILED = ("failed", "rolled_back")
ROLLOUTS_SHOWN = 10  # the newest; older ones stay in ``GET /v1/rollouts``


@dataclass
class Matrix:
    """A confusion matrix to draw: labels, rows of (count, shade), and the diagonal share."""

    contender: str
    head: str
    labels: list[str]
    rows: list[tuple[str, list[tuple[int, int]]]]
    accuracy: float | None


def matrices(metrics: dict[str, Any]) -> list[Matrix]:
    """The confusion matrices kept with a version, shaded per row (a row is a true class)."""
    out = []
    for contender, heads in sorted((metrics.get("confusion") or {}).items()):
        for head, m in sorted(heads.items()):
            labels, counts = m["labels"], m["matrix"]
            rows = []
            for label, row in zip(labels, counts, strict=True):
                top = max(row, default=0)
                shade = [0 if v <= 0 else max(1, round(v / top * (HEAT_LEVELS - 1))) for v in row]
                rows.append((label, list(zip(row, shade, strict=True))))
            total = sum(sum(r) for r in counts)
            right = sum(counts[i][i] for i in range(len(counts)))
            out.append(Matrix(contender, head, labels, rows, right / total if total else None))
    return out


def f1_table(metrics: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """Macro-F1 per contender and head, as the bundle's manifest lists it."""
    return [
        (name, {h: float(v) for h, v in heads.items() if isinstance(v, int | float)})
        for name, heads in metrics.items()
        if isinstance(heads, dict) and name != "confusion"
    ]


@dataclass
class PhaseBar:
    """One phase of a rollout: its units split into active, in flight, failed, not started."""

    name: str
    units: int
    active: int
    in_flight: int
    failed: int
    waiting: int
    current: bool
    reasons: dict[str, int]

    def pct(self, n: int) -> int:
        """``n`` as a whole percentage of the phase's units."""
        return round(100 * n / self.units) if self.units else 0


def phase_bars(r: RolloutPublic) -> list[PhaseBar]:
    """Each phase's progress."""
    bars = []
    for p in r.per_phase:
        s = p.states
        bars.append(
            PhaseBar(
                p.name,
                p.units,
                s.get("active", 0),
                sum(s.get(k, 0) for k in IN_FLIGHT),
                sum(s.get(k, 0) for k in FAILED),
                s.get("not_started", 0),
                p.phase == r.phase and r.status in ("running", "paused"),
                p.reasons,
            )
        )
    return bars


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request) -> Response:
    """Published model versions, newest first, with their metrics and confusion matrices."""
    session = current_session(request)
    if session is None:
        return _to_signin(request)
    with _services(request).store.engine.connect() as conn:
        versions: list[ModelPublic] = registry.list_models(conn)
    shown = [(m, f1_table(m.metrics), matrices(m.metrics)) for m in versions]
    return render(request, "models.html", {"versions": shown}, session=session)


@router.get("/rollouts", response_class=HTMLResponse)
def rollouts_page(request: Request) -> Response:
    """The newest rollouts with each phase's progress and the operator's buttons."""
    session = current_session(request)
    if session is None:
        return _to_signin(request)
    with _services(request).store.engine.connect() as conn:
        found = rollouts.list_rollouts(conn, limit=ROLLOUTS_SHOWN)
    shown = [(r, phase_bars(r), ACTIONS.get(r.status, ())) for r in found]
    ctx = {"rollouts": shown, "operator": session.role == Role.OPERATOR.value}
    return render(request, "rollouts.html", ctx, session=session)


@router.post("/rollouts/{rollout_id}/{action}", response_class=HTMLResponse)
async def rollout_action(
    request: Request,
    rollout_id: int,
    action: Literal["pause", "resume", "halt", "rollback"],
) -> Response:
    """Pause, resume, halt or roll back a rollout (operators only, with the form's CSRF token)."""
    session = await run_in_threadpool(current_session, request)
    if session is None:
        return _error(request, None, 401, "Sign in first.")
    _, csrf = await _form(request, session)
    if not csrf:
        return _error(request, session, 403, "The form is stale or forged.")
    if session.role != Role.OPERATOR.value:
        return _error(request, session, 403, "Only an operator key can change a rollout.")
    try:
        changed = await run_in_threadpool(
            rollouts.command, _services(request).store, rollout_id, action
        )
    except CloudError as err:
        return _error(request, session, err.status, err.message)
    publisher = getattr(request.app.state, "desired_publisher", None)
    if publisher is not None:
        for state in changed:
            await run_in_threadpool(publisher.publish, state)
    return RedirectResponse("/console/rollouts", status_code=303)
