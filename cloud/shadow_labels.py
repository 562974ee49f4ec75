"""Read the labelled shadow windows of a candidate version from the store.

An event decided while a candidate ran in shadow has ``shadow_version`` and
``shadow_label`` (migration 0013); a later label (``labels``: a matched sale gives
``removal``, a staff correction the corrected label) is its truth. The figures come
from :func:`cloud.shadow_scoring.labelled_accuracy`.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, select

from cloud.shadow_scoring import HeadAccuracy, LabelledWindow, labelled_accuracy
from cloud.store.tables import events, labels


def labelled_shadow(
    conn: Connection, version: int, units: Collection[str] | None = None
) -> dict[str, HeadAccuracy]:
    """Per head, labelled accuracy of the current model and of candidate ``version``.

    ``units``: only events of these units; None: every unit. The read starts from the
    labels (few: sales matched and staff corrections) and takes each one's event by
    its key; the units are picked out here, so no plan ever walks a unit's whole
    history (an ``IN`` over a thousand units led SQLite through every event they sent).
    """
    e = events.c
    query = (
        select(e.device_id, e.kind, e.label, e.shadow_label, labels.c.label.label("truth"))
        .select_from(events.join(labels, labels.c.event_id == e.id))
        .where(e.shadow_version == version, e.shadow_label.is_not(None))
    )
    keep = None if units is None else set(units)
    rows = (r for r in conn.execute(query) if keep is None or r.device_id in keep)
    return labelled_accuracy(LabelledWindow(r.kind, r.label, r.shadow_label, r.truth) for r in rows)
