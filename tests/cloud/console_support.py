"""Signing in to the console over plain HTTP, and a store with stock for its pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx

from cloud import fleet
from cloud.schemas import SlotCreate
from cloud.store import Store
from cloud.store.tables import model_versions
from tests.cloud.support import Live, event, register_unit

XSS_SKU = "<script>alert(1)</script>"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = CSRF.search(html)
    assert found, html[:500]
    return found.group(1)


@contextmanager
def signed_in(live: Live, token: str) -> Iterator[httpx.Client]:
    """A client with a console session of ``token`` (asserts the sign-in worked)."""
    with httpx.Client(base_url=live.url, timeout=30) as client:
        form = client.get("/console/signin")
        r = client.post(
            "/console/signin", data={"key": token, "csrf": csrf_of(form.text), "next": "/console/"}
        )
        assert r.status_code == 303, r.text
        yield client


def stocked_store(store: Store, *, device: str = "unit-1", store_id: str = "store-1") -> str:
    """A unit on a bay with two slots (one SKU named like a script); its unit key."""
    token = register_unit(store, device, store_id)
    with store.writer.begin() as conn:
        fleet.add_slot(conn, store_id, "bay-1", SlotCreate(slot=0, sku="SKU-1", unit_grams=100.0))
        fleet.add_slot(conn, store_id, "bay-1", SlotCreate(slot=1, sku=XSS_SKU, unit_grams=50.0))
    return token


def stock_batch(
    device: str, seq: int, slot: int, sku: str, stock: int, *, ago_s: float = 60, **kw: object
) -> dict:
    """One stock event of today (``ago_s`` seconds ago, or just after midnight) as a batch."""
    when = max(
        datetime.now(UTC) - timedelta(seconds=ago_s),
        datetime.now(UTC).replace(hour=0, minute=0, second=1, microsecond=0),
    )
    ev = event(device, seq, t=when, slot=slot, sku=sku, stock_units=stock, **kw)  # type: ignore[arg-type]
    return {"device_id": device, "events": [ev]}


def published_model(store: Store, version: int, *, contender: str = "student int8") -> None:
    """A model version row as ``fleet models publish`` keeps it, with its confusion matrices
    (the registry's files are not needed to show it)."""
    now = datetime.now(UTC)
    metrics = {
        contender: {"interest": 0.91, "stock": 0.87},
        "int8_fp32_agreement": 0.98,
        "confusion": {
            contender: {
                "stock": {
                    "labels": ["none", "removal", "return"],
                    "matrix": [[40, 1, 0], [2, 30, 3], [0, 0, 12]],
                }
            }
        },
    }
    with store.writer.begin() as conn:
        conn.execute(
            model_versions.insert().values(
                version=version,
                target_name=f"model-v{version}.tar",
                bytes=123_456,
                sha256="ab" * 32,
                manifest={"version": version},
                metrics=metrics,
                training={"windows": 1200, "heldout_windows": 300},
                created_at=now,
                published_at=now,
            )
        )
