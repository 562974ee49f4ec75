"""The rollout service: stores rollouts, feeds the pure decisions, applies their actions.

:func:`tick` loads each running rollout with its units' latest reports, asks
:class:`cloud.rollout_plan.RolloutState` what to do, stores the new state and sets each
touched unit's desired model version (``cloud.fleet.set_desired``), all in one
transaction per rollout (the rollout row locked where the database can). It returns the
desired states it changed so the caller can publish them to the units. The API's
background thread, the CLI and the routes call it; running it twice at once is safe.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cloud import fleet, registry
from cloud.errors import ConflictError, NotFoundError
from cloud.ota_schemas import (
    GroupTag,
    LabelledFigures,
    PhaseCounts,
    ReportedCreate,
    ReportedPublic,
    RolloutCreate,
    RolloutPublic,
    ShadowFigures,
)
from cloud.rollout_plan import FAILED_STATES, LIVE, Report, RolloutState, SetDesired, parse_phases
from cloud.shadow_labels import labelled_shadow
from cloud.store import Store
from cloud.store.tables import device_groups, device_reported, devices, rollout_units, rollouts
from models.wire_fleet import DesiredSpec, DesiredState

DEFAULT_SHADOW_WINDOWS = 200
SHADOW_FIGURES = ("shadow_agreement", "shadow_heads", "shadow_windows", "latency_ratio")
UNIT_STATES = (
    "not_started",
    "pending",
    "downloading",
    "verifying",
    "shadow",
    "active",
    "failed",
    "rolled_back",
)


def _now() -> datetime:
    return datetime.now(UTC)


# groups and reports -------------------------------------------------------------------


def tag_device(conn: Connection, device_id: str, body: GroupTag) -> list[str]:
    """Put a unit in a group; returns its groups."""
    fleet.get_device(conn, device_id)
    ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(device_groups)
    conn.execute(ins.values(device_id=device_id, group_name=body.group).on_conflict_do_nothing())
    return groups_of(conn, device_id)


def groups_of(conn: Connection, device_id: str) -> list[str]:
    """The groups of a unit."""
    stmt = select(device_groups.c.group_name).where(device_groups.c.device_id == device_id)
    return sorted(conn.execute(stmt).scalars())


def record_report(
    conn: Connection, device_id: str, body: ReportedCreate, now: datetime | None = None
) -> ReportedPublic:
    """Store a unit's report; ``since`` moves only when its state or version changes."""
    now = now or _now()
    fleet.get_device(conn, device_id)
    old = conn.execute(
        select(device_reported).where(device_reported.c.device_id == device_id).with_for_update()
    ).first()
    values: dict[str, Any] = body.model_dump() | {"updated_at": now}
    same = old is not None and (old.state, old.version) == (body.state, body.version)
    if body.shadow_agreement is None and old is not None and old.version == body.version:
        for name in SHADOW_FIGURES:  # kept once the unit goes active
            values[name] = getattr(old, name)
    values["since"] = old.since if old is not None and same else now
    if old is None:
        conn.execute(insert(device_reported).values(device_id=device_id, **values))
    else:
        conn.execute(
            update(device_reported).where(device_reported.c.device_id == device_id).values(**values)
        )
    if body.version is not None:
        _remember(conn, device_id, body)
    return ReportedPublic(device_id=device_id, **values)


def _remember(conn: Connection, device_id: str, body: ReportedCreate) -> None:
    """Keep the unit's state on the newest rollout of the reported version that touched it."""
    latest = (
        select(func.max(rollout_units.c.rollout_id))
        .join(rollouts, rollouts.c.rollout_id == rollout_units.c.rollout_id)
        .where(
            rollouts.c.model_version == body.version,
            rollout_units.c.device_id == device_id,
            rollout_units.c.touched_at.is_not(None),
        )
        .scalar_subquery()
    )
    conn.execute(
        update(rollout_units)
        .where(rollout_units.c.rollout_id == latest, rollout_units.c.device_id == device_id)
        .values(last_state=body.state, last_reason=body.reason[:500])
    )


def get_report(conn: Connection, device_id: str) -> ReportedPublic:
    """A unit's latest report."""
    row = conn.execute(select(device_reported).where(device_reported.c.device_id == device_id))
    found = row.first()
    if found is None:
        raise NotFoundError(f"device {device_id!r} has not reported", field="device_id")
    return ReportedPublic.model_validate(dict(found._mapping))


def _reports(conn: Connection, units: Select[Any] | None) -> dict[str, Report]:
    """The latest report of each of ``units`` (a query of their ids; None: every unit)."""
    r = device_reported.c
    stmt = select(r.device_id, r.state, r.version, r.since, r.shadow_agreement, r.shadow_heads)
    if units is not None:
        stmt = stmt.where(r.device_id.in_(units))
    return {
        x.device_id: Report(x.state, x.version, x.since, _agreement(x)) for x in conn.execute(stmt)
    }


def _agreement(row: Any) -> float | None:
    """A unit's shadow agreement: its lowest head (a candidate must agree on every head)."""
    heads = row.shadow_heads
    if isinstance(heads, dict) and heads:
        return min(float(v) for v in heads.values())
    return row.shadow_agreement


# rollouts -----------------------------------------------------------------------------


def _order(version: int, device_id: str) -> str:
    return hashlib.sha256(f"{version}:{device_id}".encode()).hexdigest()


def create_rollout(conn: Connection, body: RolloutCreate, now: datetime | None = None) -> int:
    """Store a new rollout over the eligible units (a group, or every unit); its id."""
    now = now or _now()
    registry.get_model(conn, body.model_version)
    parse_phases(body.phases)
    live = conn.execute(select(rollouts.c.rollout_id).where(rollouts.c.status.in_(LIVE))).first()
    if live is not None:
        raise ConflictError(
            f"rollout {live.rollout_id} is still running or paused: halt or finish it first",
            code="rollout_live",
        )
    stmt = select(devices.c.device_id)
    if body.group is not None:
        stmt = stmt.join(device_groups, device_groups.c.device_id == devices.c.device_id).where(
            device_groups.c.group_name == body.group
        )
    units = sorted(conn.execute(stmt).scalars(), key=lambda d: _order(body.model_version, d))
    rollout_id = conn.execute(
        insert(rollouts).values(
            model_version=body.model_version,
            phases=body.phases,
            group_name=body.group,
            min_soak_s=body.min_soak_s,
            abort_failed=body.abort_failed,
            min_shadow_agreement=body.min_shadow_agreement,
            shadow_windows=_shadow_windows(body),
            max_labelled_drop=body.max_labelled_drop,
            min_labelled_windows=body.min_labelled_windows,
            status="running",
            phase=0,
            phase_started_at=now,
            reason="",
            created_at=now,
            updated_at=now,
        )
    ).inserted_primary_key
    assert rollout_id is not None
    rollout_id = rollout_id[0]
    if units:
        conn.execute(
            insert(rollout_units),
            [
                {"rollout_id": rollout_id, "device_id": d, "position": i}
                for i, d in enumerate(units)
            ],
        )
    return int(rollout_id)


def _shadow_windows(body: RolloutCreate) -> int:
    """Windows the canary shadows: as asked, else a default when an agreement is required."""
    if body.shadow_windows is not None:
        return body.shadow_windows
    return DEFAULT_SHADOW_WINDOWS if body.min_shadow_agreement is not None else 0


def _members(rollout_id: int) -> Select[Any]:
    """The ids of a rollout's units as a query, for tables keyed by unit: the database
    matches them itself rather than binding a parameter per unit."""
    return select(rollout_units.c.device_id).where(rollout_units.c.rollout_id == rollout_id)


def _row(conn: Connection, rollout_id: int, *, lock: bool = False) -> Any:
    stmt = select(rollouts).where(rollouts.c.rollout_id == rollout_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise NotFoundError(f"no rollout {rollout_id}", field="rollout_id")
    return row


def _unit_rows(conn: Connection, rollout_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(rollout_units)
            .where(rollout_units.c.rollout_id == rollout_id)
            .order_by(rollout_units.c.position)
        ).all()
    )


def _state(conn: Connection, row: Any, units: list[Any] | None = None) -> RolloutState:
    """The pure state of rollout ``row`` (``units``: its unit rows, when read already)."""
    if units is None:
        units = _unit_rows(conn, row.rollout_id)
    return RolloutState(
        version=row.model_version,
        phases=parse_phases(row.phases),
        units=tuple(u.device_id for u in units),
        min_soak=timedelta(seconds=row.min_soak_s),
        abort_failed=row.abort_failed,
        phase_started_at=row.phase_started_at,
        status=row.status,
        phase=row.phase,
        touched={u.device_id: u.previous_version for u in units if u.touched_at is not None},
        reason=row.reason,
        created_at=row.created_at,
        min_shadow_agreement=row.min_shadow_agreement,
        shadow_windows=row.shadow_windows or 0,
        max_labelled_drop=row.max_labelled_drop,
        min_labelled_windows=row.min_labelled_windows or 20,
    )


def _save(conn: Connection, rollout_id: int, old: RolloutState, new: RolloutState) -> None:
    now = _now()
    conn.execute(
        update(rollouts)
        .where(rollouts.c.rollout_id == rollout_id)
        .values(
            status=new.status,
            phase=new.phase,
            phase_started_at=new.phase_started_at,
            reason=new.reason[:500],
            updated_at=now,
        )
    )
    for device_id in set(new.touched) - set(old.touched):
        conn.execute(
            update(rollout_units)
            .where(rollout_units.c.rollout_id == rollout_id, rollout_units.c.device_id == device_id)
            .values(previous_version=new.touched[device_id], touched_at=now)
        )


def _current(conn: Connection, rollout_id: int) -> dict[str, int | None]:
    """Each unit's version now: its desired version, else the one it reports running."""
    rows = conn.execute(
        select(devices.c.device_id, devices.c.desired_model_version).where(
            devices.c.device_id.in_(_members(rollout_id))
        )
    )
    current: dict[str, int | None] = {r.device_id: r.desired_model_version for r in rows}
    for d, rep in _reports(conn, _members(rollout_id)).items():
        if current.get(d) is None and rep.state == "active":
            current[d] = rep.version
    return current


def _apply(conn: Connection, actions: list[SetDesired]) -> list[DesiredState]:
    changed = []
    for action in actions:
        config = fleet.get_desired(conn, action.device_id).config
        body = DesiredSpec(
            model_version=action.version,
            config=config,
            shadow_windows=action.shadow_windows,
            min_shadow_agreement=action.min_shadow_agreement,
        )
        changed.append(fleet.set_desired(conn, action.device_id, body))
    return changed


def _step(store: Store, rollout_id: int, command: str | None, now: datetime) -> list[Any]:
    with store.writer.begin() as conn:
        row = _row(conn, rollout_id, lock=True)
        state = _state(conn, row)
        if command is None:
            gated = state.max_labelled_drop is not None
            labelled = labelled_shadow(conn, state.version, state.touched) if gated else None
            reports = _reports(conn, _members(rollout_id))
            new, actions = state.tick(now, reports, _current(conn, rollout_id), labelled)
        else:
            new, actions = getattr(state, command)()
        _save(conn, rollout_id, state, new)
        return _apply(conn, actions)


def tick(store: Store, now: datetime | None = None) -> list[DesiredState]:
    """Advance every running rollout once; the desired states that changed."""
    now = now or _now()
    with store.engine.connect() as conn:
        ids = list(
            conn.execute(select(rollouts.c.rollout_id).where(rollouts.c.status == "running"))
            .scalars()
            .all()
        )
    changed: list[DesiredState] = []
    for rollout_id in ids:
        changed += _step(store, rollout_id, None, now)
    return changed


def command(store: Store, rollout_id: int, name: str) -> list[DesiredState]:
    """``pause``, ``resume``, ``halt`` or ``rollback`` one rollout; the desired states changed."""
    if name not in ("pause", "resume", "halt", "rollback"):
        raise ValueError(f"unknown rollout command {name!r}")
    return _step(store, rollout_id, name, _now())


def get_rollout(
    conn: Connection, rollout_id: int, *, reports: dict[str, Report] | None = None
) -> RolloutPublic:
    """A rollout with its units' states per phase (what each did with the version).

    ``reports``: every unit's latest report, when the caller has read them already.
    """
    row = _row(conn, rollout_id)
    unit_rows = _unit_rows(conn, rollout_id)
    state = _state(conn, row, unit_rows)
    if reports is None:
        reports = _reports(conn, _members(rollout_id))
    last = {u.device_id: (u.last_state, u.last_reason) for u in unit_rows}
    figures = _figures(conn, rollout_id, state)
    sizes = state.sizes()
    per_phase = []
    for i, phase in enumerate(state.phases):
        members = state.units[(sizes[i - 1] if i else 0) : sizes[i]]
        states: Counter[str] = Counter(dict.fromkeys(UNIT_STATES, 0))
        reasons: Counter[str] = Counter()
        for d in members:
            said, why = last.get(d, (None, None))
            if d not in state.touched:
                states["not_started"] += 1
            elif said is None:
                states["pending"] += 1
            else:
                states[said] += 1
                gate = state.failure(reports, d)
                if said in FAILED_STATES:
                    reasons[why or "no reason given"] += 1
                elif gate is not None and gate not in FAILED_STATES:
                    reasons[gate] += 1
        per_phase.append(
            PhaseCounts(
                phase=i,
                name=phase.name,
                units=len(members),
                states=dict(states),
                reasons=dict(reasons),
                shadow=[figures[d] for d in members if d in figures],
            )
        )
    return RolloutPublic(
        **dict(row._mapping),
        group=row.group_name,
        units=len(state.units),
        per_phase=per_phase,
        labelled={
            h: LabelledFigures.model_validate(a.as_dict())
            for h, a in labelled_shadow(conn, state.version, state.touched).items()
        },
    )


def _figures(conn: Connection, rollout_id: int, state: RolloutState) -> dict[str, ShadowFigures]:
    """The shadow figures units reported about the rollout's version."""
    rows = conn.execute(
        select(device_reported).where(
            device_reported.c.device_id.in_(_members(rollout_id)),
            device_reported.c.version == state.version,
            device_reported.c.shadow_windows.is_not(None),
        )
    )
    return {
        r.device_id: ShadowFigures(
            device_id=r.device_id,
            agreement=_agreement(r),
            heads=r.shadow_heads or {},
            windows=r.shadow_windows,
            latency_ratio=r.latency_ratio,
        )
        for r in rows
        if state.created_at is None or r.since >= state.created_at
    }


def list_rollouts(conn: Connection, *, limit: int | None = None) -> list[RolloutPublic]:
    """Every rollout (or the newest ``limit``), newest first; the units' reports read once."""
    stmt = select(rollouts.c.rollout_id).order_by(rollouts.c.rollout_id.desc()).limit(limit)
    ids = conn.execute(stmt).scalars().all()
    reports = _reports(conn, None) if ids else {}
    return [get_rollout(conn, i, reports=reports) for i in ids]
