"""``shelfsense provision setup`` at the unit's console: the PIN shown there opens the page.

The command runs on a pseudo-terminal with simulated load cells and camera; the test,
as a phone on the store network, reads the PIN off the console, signs in, claims the
unit against the real cloud (which then shows operators the page and its PIN), and
finishes setup; the command then closes the page, withdraws the PIN from the cloud and
exits 0. Run again, setup has a new PIN, told to the cloud from the start.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from cloud.keys import Role
from edge.sync.identity import load_identity
from provisioning.claim import IDENTITY_FILE
from tests.cloud.console_support import signed_in
from tests.cloud.support import Live, make_key
from tests.provisioning.test_claim import cloud, make_code  # noqa: F401 (fixture)
from tests.provisioning.test_setup_http import send, sign_in
from tests.support.mosquitto import free_port
from tests.support.terminal import Terminal

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow(seconds=25)
def test_the_console_shows_the_pin_and_setup_ends_with_finish(
    cloud: Live,  # noqa: F811
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "unit.toml"
    cfg.write_text(
        f'[unit]\ndata_dir = "{tmp_path / "var"}"\n\n[loadcells]\nsource = "sim"\n\n'
        '[[slots]]\nslot = 0\nchannel = 0\nsku = "SKU-A"\nunit_grams = 250\n'
    )
    port = free_port()
    code = str(make_code(cloud)["code"])
    args = ["provision", "setup", "--config", str(cfg), "--cloud", cloud.url]
    term = Terminal(
        [*args, "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env={"PYTHONPATH": str(ROOT)}
    )
    try:
        shown = term.expect("(setup mode ends when staff press Finish")
        assert f"setup page: http://127.0.0.1:{port}/" in shown
        pin = re.search(r"PIN: ([0-9]{6})", shown)
        assert pin is not None
        url = f"http://127.0.0.1:{port}"
        session, csrf = sign_in(url, pin.group(1))
        claimed = send("POST", f"{url}/claim", session, {"csrf": csrf, "code": code})
        assert claimed.status_code == 303
        page = send("GET", f"{url}/", session).text
        assert "Claimed: this unit is" in page and "store-7/bay-2" in page
        term.expect("(operators see this PIN on unit")  # told the cloud once claimed
        device_id = load_identity(tmp_path / "var" / IDENTITY_FILE).device_id
        told = setup_in_cloud(cloud, device_id)
        assert told.status_code == 200, told.text
        assert (told.json()["pin"], told.json()["url"]) == (pin.group(1), url + "/")
        assert send("POST", f"{url}/finish", session, {"csrf": csrf}).status_code == 200
        assert send("GET", f"{url}/").status_code == 410
        term.expect("setup finished; the setup page is closed", timeout=40)
        assert term.wait() == 0
    finally:
        term.close()
    assert device_id in page
    with pytest.raises(httpx.ConnectError):  # the page is gone from the network
        httpx.get(url, timeout=2)
    assert setup_in_cloud(cloud, device_id).status_code == 404  # withdrawn when setup ended

    # setup again on the claimed unit: a new PIN, told to the cloud from the start
    term = Terminal(
        [*args, "--host", "127.0.0.1", "--port", str(port), "--no-camera"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )
    try:
        shown = term.expect(f"(operators see this PIN on unit {device_id}'s page in the cloud)")
        again = re.search(r"PIN: ([0-9]{6})", shown)
        assert again is not None and again.group(1) != pin.group(1)
        assert setup_in_cloud(cloud, device_id).json()["pin"] == again.group(1)
        with signed_in(cloud, make_key(cloud.store, Role.OPERATOR)) as browser:
            unit_page = browser.get(f"/console/units/{device_id}").text
        assert "In setup mode" in unit_page and again.group(1) in unit_page
        session, csrf = sign_in(url, again.group(1))
        assert send("POST", f"{url}/finish", session, {"csrf": csrf}).status_code == 200
        term.expect("setup finished; the setup page is closed", timeout=40)
        assert term.wait() == 0
    finally:
        term.close()
    assert setup_in_cloud(cloud, device_id).status_code == 404


def setup_in_cloud(live: Live, device_id: str) -> httpx.Response:
    """What operators read of the unit's setup page in the cloud."""
    with live.client(make_key(live.store, Role.OPERATOR)) as c:
        return c.get(f"/v1/devices/{device_id}/setup")
