"""The setup page on a phone, played in a real headless Chromium (Debian's, via Playwright).

A person signs in with the PIN shown on the unit (after one typo), claims the unit
with the operator's code against the real cloud under uvicorn, calibrates slot 0 with
500 g placed on the bench bay, watches the live weight follow a hand taking 200 g
off, sees the unit's newest decisions from its outbox, and finishes setup: the page
is gone (410). Screenshots go to the tmp dir, and with ``SHELFSENSE_SETUP_SHOTS=docs/setup``
also there (the README shows them).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from edge.buffer.store import Buffer
from edge.signals.calibration import CalibrationStore
from tests.cloud.support import Live
from tests.edge.cloud_stand_in import event_fields
from tests.provisioning.setup_support import setup_mode
from tests.provisioning.test_claim import cloud, make_code  # noqa: F401 (fixture)
from tests.support.browser import browser_page
from tests.support.waiting import wait_until

SHOTS_ENV = "SHELFSENSE_SETUP_SHOTS"


def shot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    where = os.environ.get(SHOTS_ENV)
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(where) / path.name)


def live_grams(page: Any, slot: int) -> float | None:
    text = page.text_content(f'[data-live-slot="{slot}"]') or ""
    found = re.fullmatch(r"(-?[0-9.]+) g", text.strip())
    return float(found.group(1)) if found else None


def test_staff_set_up_a_unit_from_a_phone(cloud: Live, tmp_path: Path) -> None:  # noqa: F811
    code = str(make_code(cloud)["code"])
    with setup_mode(tmp_path, cloud=cloud.url) as su, browser_page(su.url) as (opened, visit):
        page: Any = opened
        page.goto(su.url + "/")
        page.fill("#pin", "999999" if su.session.pin != "999999" else "888888")
        page.click("text=Sign in")
        page.wait_for_selector("text=wrong PIN: 4 tries left")
        shot(page, tmp_path, "pin")
        page.fill("#pin", su.session.pin)
        page.click("text=Sign in")
        page.wait_for_selector("#claim")

        page.fill("#code", code.lower())
        page.click("#claim button")
        claimed = page.text_content("#claim-state") or ""
        assert claimed.startswith("Claimed: this unit is ") and "store-7/bay-2" in claimed
        device_id = claimed.split("this unit is ")[1].split()[0]

        page.click("#slot-0 button[value=empty]")
        page.wait_for_selector("text=Slot 0: empty tray recorded")
        su.bench.place(0, 500)
        page.fill("#slot-0 input[name=grams]", "500")
        page.click("#slot-0 button[value=known]")
        page.wait_for_selector("text=Slot 0 calibrated")

        cal = CalibrationStore(tmp_path / "var" / "calibration.json").load()[0]
        fresh = su.bench.read(160).counts[:, 0]
        assert abs(cal.grams(float(np.mean(fresh))) - (su.bench.truth(0) - 250)) <= 1.0

        wait_until(lambda: abs((live_grams(page, 0) or 0) - 500) <= 2, timeout=15)
        su.bench.remove(0, 200)  # a hand takes 200 g off: the page follows by itself
        wait_until(lambda: abs((live_grams(page, 0) or 0) - 300) <= 2, timeout=15)
        assert "counts" in (page.text_content('[data-live-slot="1"]') or "")

        assert "No decisions yet" in (page.text_content("#decisions-note") or "")
        buffer = Buffer(tmp_path / "var" / "buffer.db", device_id=device_id)
        try:  # the agent's outbox, written as the agent writes it
            for i in range(3):
                buffer.append(
                    {
                        **event_fields(i),
                        "store": "store-7",
                        "bay": "bay-2",
                        "slot": 0,
                        "sku": "SKU-A",
                    }
                )
        finally:
            buffer.close()
        wait_until(lambda: page.locator("#decisions tr").count() == 3, timeout=15)
        rows = page.locator("#decisions tr").all_text_contents()
        assert rows[0].startswith("3") and "stock: removal" in rows[0] and "-1" in rows[0]
        shot(page, tmp_path, "setup")

        page.click("text=Finish setup")
        page.wait_for_selector("text=Setup is finished")
        assert httpx.get(su.url + "/", timeout=10).status_code == 410
        assert visit.refused == [], "the page asked for something outside the unit"
