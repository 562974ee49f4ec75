"""Telling the cloud where a claimed unit's setup page is, and its one-time PIN.

While ``provision setup`` runs on a claimed unit, operators can read the page's
address and PIN from the cloud (``GET /v1/devices/{id}/setup``, the console's unit
page) and pass them to staff who cannot see the unit's console. :class:`Announcer`
sends them once the unit has an identity (at start, or right after a claim on the
page) and withdraws them when setup ends. A failure is said once and changes
nothing else: the PIN on the unit's console always works.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import requests

from edge.config import Config
from edge.sync.identity import Identity, IdentityError, load_identity
from models.wire_fleet import SetupAnnouncement

TIMEOUT_S = 5.0


class Announcer:
    """Announces this setup mode's page and PIN to the cloud, then withdraws them."""

    def __init__(
        self,
        cfg: Config,
        *,
        url: str,
        pin: str,
        until: float,
        cloud: str | None = None,
        say: Callable[[str], None] = print,
        session: requests.Session | None = None,
    ) -> None:
        self.cfg = cfg
        self.url, self.pin, self.until = url, pin, until
        self.cloud = cloud
        self.say = say
        self.http = session or requests.Session()
        self.announced: Identity | None = None

    def body(self) -> SetupAnnouncement:
        """What the cloud is told (``url`` is known once the page listens)."""
        return SetupAnnouncement(url=self.url, pin=self.pin, until=self.until)

    def _identity(self) -> Identity | None:
        data_dir = Path(self.cfg.unit.data_dir)
        try:
            return load_identity(data_dir / self.cfg.sync.identity_file)
        except IdentityError:
            return None

    def _request(self, method: str, ident: Identity, cloud: str) -> requests.Response:
        return self.http.request(
            method,
            f"{cloud.rstrip('/')}/v1/devices/{quote(ident.device_id, safe='')}/setup",
            json=self.body().model_dump() if method == "PUT" else None,
            headers={"Authorization": f"Bearer {ident.api_key}"},
            timeout=TIMEOUT_S,
            verify=ident.ca_file or True,
        )

    def announce(self, cloud: str | None = None) -> bool:
        """Send the page and PIN if the unit is claimed; True when the cloud has them."""
        ident = self._identity()
        cloud = cloud or self.cloud or self.cfg.sync.base_url
        if ident is None:
            self.say("(not claimed yet: the PIN is shown only here until the unit is claimed)")
            return False
        try:
            answer = self._request("PUT", ident, cloud)
        except requests.RequestException as err:
            self.say(f"(the cloud could not be told the PIN: {err})")
            return False
        if not answer.ok:
            self.say(f"(the cloud refused the setup page's PIN: HTTP {answer.status_code})")
            return False
        self.announced, self.cloud = ident, cloud
        self.say(f"(operators see this PIN on unit {ident.device_id}'s page in the cloud)")
        return True

    def withdraw(self) -> None:
        """Setup ended: the cloud stops showing the page and PIN (best effort)."""
        if self.announced is None or self.cloud is None:
            return
        with contextlib.suppress(requests.RequestException):  # dropped at ``until`` anyway
            self._request("DELETE", self.announced, self.cloud)
        self.announced = None
