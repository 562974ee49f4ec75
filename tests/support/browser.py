"""A real browser for web pages: Debian's chromium driven by Playwright (no browser download).

Every request the page makes is recorded; one that leaves the service's own origin is
aborted, so a page that depends on the internet fails its test here as it would on a
store's closed network.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")


def chromium_path() -> str:
    """The system chromium, or skip (fail where the suite requires every real part)."""
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    message = "chromium is not installed (`make system-deps` installs it with apt)"
    if os.environ.get("SHELFSENSE_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Visit:
    """What a page asked for while it loaded."""

    origin: str
    requested: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@contextmanager
def browser_page(origin: str) -> Iterator[tuple[object, Visit]]:
    """A fresh chromium page; requests outside ``origin`` are aborted and listed."""
    from playwright.sync_api import Route, sync_playwright

    visit = Visit(origin)

    def gate(route: Route) -> None:
        url = route.request.url
        visit.requested.append(url)
        if url.startswith(origin + "/") or url == origin or url.startswith("data:"):
            route.continue_()
        else:
            visit.refused.append(url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.route("**/*", gate)
            yield page, visit
        finally:
            browser.close()
