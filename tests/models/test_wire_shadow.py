"""The candidate's shadow decision on a wire event: same taxonomy as ``label``, bounded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from models.wire import KIND_LABELS, ShelfEvent

KINDS = sorted(KIND_LABELS)


def event(kind: str, label: str, shadow: Any) -> dict[str, Any]:
    return {
        "device_id": "unit-0007",
        "seq": 1,
        "wall_time": datetime(2026, 12, 1, tzinfo=UTC).isoformat(),
        "mono_time": 1.0,
        "store": "store-12",
        "bay": "bay-3",
        "kind": kind,
        "label": label,
        "confidence": 0.9,
        "shadow": shadow,
    }


@given(
    st.sampled_from(KINDS).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.sampled_from(KIND_LABELS[k]),
            st.sampled_from(KIND_LABELS[k]),
            st.integers(0, 2**31 - 1),
        )
    )
)
def test_a_shadow_label_of_the_kind_round_trips(case: tuple[str, str, str, int]) -> None:
    kind, label, candidate, version = case
    ev = ShelfEvent.model_validate(event(kind, label, {"version": version, "label": candidate}))
    assert ev.shadow is not None and ev.shadow.label == candidate
    again = ShelfEvent.model_validate_json(ev.model_dump_json())
    assert again == ev
    assert (
        len(ev.model_dump_json()) - len(ev.model_copy(update={"shadow": None}).model_dump_json())
        < 100
    )


@given(st.sampled_from(KINDS), st.text(max_size=40))
def test_a_shadow_label_outside_the_kind_is_refused(kind: str, candidate: str) -> None:
    label = KIND_LABELS[kind][0]
    body = event(kind, label, {"version": 3, "label": candidate})
    if candidate in KIND_LABELS[kind]:
        assert ShelfEvent.model_validate(body).shadow is not None
    else:
        with pytest.raises(ValidationError):
            ShelfEvent.model_validate(body)


def test_shadow_is_optional_and_closed() -> None:
    assert ShelfEvent.model_validate(event("stock", "removal", None)).shadow is None
    with pytest.raises(ValidationError, match=r"shadow\.label 'browse' is not a stock label"):
        ShelfEvent.model_validate(event("stock", "removal", {"version": 3, "label": "browse"}))
    with pytest.raises(ValidationError, match="extra"):
        ShelfEvent.model_validate(
            event("stock", "removal", {"version": 3, "label": "removal", "x": 1})
        )
