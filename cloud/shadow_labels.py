"""Read the labelled shadow windows of a candidate version from the store.

An event decided while a candidate ran in shadow has ``shadow_version`` and
``shadow_label`` (migration 0013); a later label (``labels``: a matched sale gives
``removal``, a staff correction the corrected label) is its truth. The figures come
from :func:`cloud.shadow_scoring.labelled_accuracy`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Select, select

from cloud.shadow_scoring import HeadAccuracy, LabelledWindow, labelled_accuracy
from cloud.store.tables import events, labels


def labelled_shadow(
    conn: Connection, version: int, units: Collection[str] | Select[Any] | None = None
) -> dict[str, HeadAccuracy]:
    """Per head, labelled accuracy of the current model and of candidate ``version``.

    ``units``: only events of these units (ids, or a query of them); None: every unit.
    """
    e = events.c
    query = (
        select(e.kind, e.label, e.shadow_label, labels.c.label.label("truth"))
        .select_from(events.join(labels, labels.c.event_id == e.id))
        .where(e.shadow_version == version, e.shadow_label.is_not(None))
    )
    if units is not None:
        query = query.where(e.device_id.in_(units if isinstance(units, Select) else list(units)))
    rows = conn.execute(query)
    return labelled_accuracy(LabelledWindow(r.kind, r.label, r.shadow_label, r.truth) for r in rows)
