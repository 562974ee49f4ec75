"""The setup page's HTML, rendered from plain values (every value escaped).

:func:`pin_page` asks for the PIN; :func:`main_page` shows the three jobs of setup in
order — claim the unit, calibrate each slot with a known weight, see it working (live
weights and the unit's recent decisions) — and the button that ends setup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

DECISION_HEADINGS = ("#", "time", "what", "slot", "moved", "sent")


@dataclass(frozen=True, slots=True)
class SlotView:
    """One slot as the page shows it."""

    slot: int
    channel: int
    sku: str
    calibrated: bool
    tared: bool
    weight: str


@dataclass(frozen=True, slots=True)
class PageState:
    """Everything the main page shows."""

    csrf: str
    claim: str
    claimed: bool
    camera: str
    slots: list[SlotView] = field(default_factory=list)
    decisions: list[tuple[str, ...]] = field(default_factory=list)
    decisions_note: str = ""
    running: bool = False
    message: str = ""
    bad: bool = False


def _head(title: str, script: bool) -> str:
    js = '<script src="/static/setup.js" defer></script>' if script else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>"
        f'<link rel="stylesheet" href="/static/setup.css">{js}</head><body>'
    )


def _message(text: str, bad: bool) -> str:
    if not text:
        return ""
    return f'<p class="msg{" bad" if bad else ""}" role="status">{escape(text)}</p>'


def pin_page(message: str = "", bad: bool = False) -> str:
    """The sign-in form: the PIN shown on the unit's screen or label."""
    return (
        _head("Set up this shelf unit", script=False)
        + "<h1>Set up this shelf unit</h1>"
        + _message(message, bad)
        + '<section><form method="post" action="/pin">'
        '<p><label for="pin">PIN shown on the unit</label><br>'
        '<input id="pin" name="pin" type="password" inputmode="numeric" autocomplete="off" '
        'maxlength="12" required autofocus></p>'
        "<button type=submit>Sign in</button></form></section></body></html>"
    )


def gone_page(message: str) -> str:
    """What any request gets after setup has ended."""
    return (
        _head("Setup has ended", script=False)
        + f"<h1>Setup has ended</h1><p>{escape(message)}</p></body></html>"
    )


def _csrf(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(token)}">'


def _claim(state: PageState) -> str:
    mark = "ok" if state.claimed else "todo"
    out = f'<section id="claim"><h2>1. Claim</h2><p class="{mark}" id="claim-state">'
    out += f"{escape(state.claim)}</p>"
    if not state.claimed:
        out += (
            '<form method="post" action="/claim">'
            + _csrf(state.csrf)
            + '<p><label for="code">Claim code from the operator</label><br>'
            '<input id="code" name="code" type="text" autocomplete="off" '
            'autocapitalize="characters" maxlength="20" placeholder="7KQ2M-XB9D4" required> '
            "<button type=submit>Claim</button></p></form>"
            f'<p id="camera-state">{escape(state.camera)}</p>'
        )
    return out + "</section>"


def _slot(s: SlotView, csrf: str, running: bool) -> str:
    mark, status = ("ok", "calibrated") if s.calibrated else ("todo", "not calibrated")
    if s.tared and not s.calibrated:
        status = "empty tray recorded: place the known weight"
    head = (
        f'<tr id="slot-{s.slot}"><td>Slot {s.slot}<br><small>{escape(s.sku)}, '
        f"channel {s.channel}</small></td>"
        f'<td class="live" data-live-slot="{s.slot}">{escape(s.weight)}</td>'
        f'<td><span class="{mark}">{escape(status)}</span>'
    )
    if running:
        return head + "</td></tr>"
    return (
        head + "<br>"
        '<form class="inline" method="post" action="/calibrate">'
        + _csrf(csrf)
        + f'<input type="hidden" name="slot" value="{s.slot}">'
        '<button type=submit name="step" value="empty">Tray is empty</button></form><br>'
        '<form class="inline" method="post" action="/calibrate">'
        + _csrf(csrf)
        + f'<input type="hidden" name="slot" value="{s.slot}">'
        f'<input name="grams" type="number" min="1" max="99999" step="any" value="500" '
        f'aria-label="known weight on slot {s.slot}, grams"> g '
        '<button type=submit name="step" value="known">Weight placed</button></form></td></tr>'
    )


def _calibrate(state: PageState) -> str:
    rows = "".join(_slot(s, state.csrf, state.running) for s in state.slots)
    return (
        '<section id="calibrate"><h2>2. Calibrate</h2>'
        "<p>For each slot: take everything off the tray and press <b>Tray is empty</b>; "
        "then place a known weight (e.g. 500 g), type it, hands off, and press "
        "<b>Weight placed</b>. Each step takes a few seconds.</p>"
        f"<table><tr><th>slot</th><th>weight now</th><th></th></tr>{rows}</table></section>"
    )


def _decisions(state: PageState) -> str:
    head = "".join(f"<th>{h}</th>" for h in DECISION_HEADINGS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in state.decisions
    )
    start = ""
    if not state.running:
        start = (
            '<form method="post" action="/start">'
            + _csrf(state.csrf)
            + "<p>Once every slot is calibrated, start the unit: it takes over the load "
            "cells and begins deciding.</p><button type=submit>Start the unit</button></form>"
        )
    return (
        '<section id="working"><h2>3. See it working</h2>'
        + start
        + "<p>Take a product off a slot and put it back: the unit's decisions appear here, "
        "with the weight it saw move.</p>"
        f'<p id="decisions-note">{escape(state.decisions_note)}</p>'
        f'<table><thead><tr>{head}</tr></thead><tbody id="decisions">{body}</tbody></table>'
        "</section>"
    )


def main_page(state: PageState) -> str:
    """The setup page of a signed-in phone."""
    return (
        _head("Set up this shelf unit", script=True)
        + "<h1>Set up this shelf unit</h1>"
        + _message(state.message, state.bad)
        + _claim(state)
        + _calibrate(state)
        + _decisions(state)
        + '<section><h2>4. Done</h2><form method="post" action="/finish">'
        + _csrf(state.csrf)
        + "<p>Ends setup mode: this page closes and the PIN stops working.</p>"
        "<button type=submit>Finish setup</button></form></section></body></html>"
    )
