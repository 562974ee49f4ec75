"""The setup page on a phone, played in a real headless Chromium (Debian's, via Playwright).

A person signs in with the PIN shown on the unit (after one typo), claims the unit
with the operator's code against the real cloud under uvicorn, calibrates both slots
with 500 g placed on the bench bay (read through the serial link on a pty), watches
the live weight follow a hand taking 200 g off, starts the unit (the real agent takes
the link over), takes a product off and sees the unit's decision appear and reach the
cloud, and finishes setup: the page is gone (410). Screenshots go to the tmp dir, and with ``SHELFSENSE_SETUP_SHOTS=docs/setup``
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
import pytest

from cloud.keys import Role
from edge.signals.calibration import CalibrationStore
from tests.cloud.support import Live, make_key
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


@pytest.mark.slow(seconds=25)
def test_staff_set_up_a_unit_from_a_phone(cloud: Live, tmp_path: Path) -> None:  # noqa: F811
    code = str(make_code(cloud)["code"])
    with (
        setup_mode(tmp_path, cloud=cloud.url, serial=True) as su,
        browser_page(su.url) as (opened, visit),
    ):
        page: Any = opened
        page.goto(su.url + "/")
        page.fill("#pin", "999999" if su.session.pin != "999999" else "888888")
        page.click("button:has-text('Sign in')")
        page.wait_for_selector("text=wrong PIN: 4 tries left")
        shot(page, tmp_path, "pin")
        page.fill("#pin", su.session.pin)
        page.click("button:has-text('Sign in')")
        page.wait_for_selector("#claim")

        page.fill("#code", code.lower())
        page.click("#claim button")
        claimed = page.text_content("#claim-state") or ""
        assert claimed.startswith("Claimed: this unit is ") and "store-7/bay-2" in claimed
        device_id = claimed.split("this unit is ")[1].split()[0]

        for slot in (0, 1):
            row = f"#slot-{slot}"
            page.click(f"{row} button[value=empty]")
            page.wait_for_selector(f"text=Slot {slot}: empty tray recorded")
            su.bench.place(slot, 500)
            page.fill(f"{row} input[name=grams]", "500")
            page.click(f"{row} button[value=known]")
            page.wait_for_selector(f"text=Slot {slot} calibrated")

        cals = CalibrationStore(tmp_path / "var" / "calibration.json").load()
        fresh = su.bench.read(160).counts
        for slot in (0, 1):
            read = cals[slot].grams(float(np.mean(fresh[:, slot])))
            assert abs(read - (su.bench.truth(slot) - 250)) <= 1.0

        wait_until(lambda: abs((live_grams(page, 0) or 0) - 500) <= 2, timeout=15)
        su.bench.remove(0, 200)  # a hand lifts 200 g: the page follows by itself
        wait_until(lambda: abs((live_grams(page, 0) or 0) - 300) <= 2, timeout=15)
        su.bench.place(0, 200)
        wait_until(lambda: abs((live_grams(page, 0) or 0) - 500) <= 2, timeout=15)
        assert "No decisions yet" in (page.text_content("#decisions-note") or "")

        page.click("button:has-text('Start the unit')")
        page.wait_for_selector("text=The unit is running")
        assert len(su.agents) == 1
        assert page.locator("button[value=empty]").count() == 0  # the agent has the load cells

        def link_frames() -> int:
            return int(su.agents[0].refresh_health()["gauges"]["loadcell_link"]["frames"])

        wait_until(lambda: link_frames() >= 240, timeout=30)  # the agent has read the shelf a while
        su.bench.remove(0, 250)  # one SKU-A (250 g) taken off slot 0

        def removal_sent() -> bool:
            rows = page.locator("#decisions tr").all_text_contents()
            return any(
                "stock: removal" in r and "-1 unit(s)" in r and r.endswith("yes") for r in rows
            )

        wait_until(removal_sent, timeout=60)
        shot(page, tmp_path, "setup")
        with cloud.client(make_key(cloud.store, Role.BACKEND)) as c:
            feed = c.get("/v1/events", params={"store": "store-7", "type": "stock"}).json()
        mine = [e for e in feed["data"] if e["device_id"] == device_id]
        assert any(e["label"] == "removal" and e["units"] == -1 for e in mine), feed

        page.click("button:has-text('Finish setup')")
        page.wait_for_selector("text=Setup is finished")
        assert httpx.get(su.url + "/", timeout=10).status_code == 410
        assert visit.refused == [], "the page asked for something outside the unit"
