"""Events decided while a candidate ran in shadow keep the candidate's version and label."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cloud.store.tables import events
from tests.cloud.support import Live, event, register_unit

URL = "/v1/ingest/events"


@pytest.mark.parametrize("fixture", ["live", "pg_live"])
def test_shadow_decision_is_stored_with_the_event(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    live: Live = request.getfixturevalue(fixture)
    c = live.client(register_unit(live.store, "unit-1"))
    shadowed = event("unit-1", 1) | {"shadow": {"version": 7, "label": "restock"}}
    plain = event("unit-1", 2)
    r = c.post(URL, json={"device_id": "unit-1", "events": [shadowed, plain]})
    assert r.status_code == 200, r.text
    with live.store.writer.connect() as conn:
        rows = conn.execute(
            select(events.c.seq, events.c.label, events.c.shadow_version, events.c.shadow_label)
            .where(events.c.device_id == "unit-1")
            .order_by(events.c.seq)
        ).all()
    assert [tuple(r) for r in rows] == [(1, "removal", 7, "restock"), (2, "removal", None, None)]
