"""The shelf-event language: an :class:`EventWindow` as a short sentence of closed tokens.

Each window reads ``[CLS] hour neighbours [BAY]|[NOBODY] dwell motion entries``, then the
window's totals (``net`` units over all its changes, ``nchg`` how many changes), then one
``[REACH] slot dwell motion entries`` group per slot-zone episode, then one ``[CHG] ...``
group per weight change (slot, SKU weight class, signed grams, units, fit to whole units,
confidence, settle time, timing against the presence, reach into that slot, the slot's
recent history and level, seconds from the presence's start to the change and from the
change's settling to the presence's end), then ``[SEP]``. The totals and the two timings
tell a shopper's own take (net units gone, leaving right after) from a long stay during
which someone else's hand moved stock; without them a small model must learn to sum. Numbers are binned by fixed edges; the last
bin is open, so every number has a token. A value the vocabulary does not hold (a slot
past the vocabulary, a NaN) becomes ``[UNK]``. The stock head reads the ``[CHG]`` positions.

The vocabulary and bin edges are saved as one JSON file inside each bundle; the edge
tokenizes with this module alone (no transformers). Format 2 files hold the totals and
timings; format 3 adds two tokens to every change group: ``nbr`` (how many changes on
other slots the window holds) and ``sku`` (whether the added weight is whole units of
the slot's own SKU, of another changed slot's SKU, of none, or not an addition; see
:func:`sku_match`). A format 1 or 2 file (bundles made before them) still reads, and
its windows are written without what it lacks, as the model it came with was trained;
a newer format is refused by name.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from models.types import Presence, WeightChange
from models.window import EventWindow

TOKENIZER_FORMAT: Final[int] = 3
READABLE_FORMATS: Final[tuple[int, ...]] = (1, 2, 3)
SPECIALS: Final[tuple[str, ...]] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MARKERS: Final[tuple[str, ...]] = ("[BAY]", "[NOBODY]", "[REACH]", "[CHG]")
PAD, UNK, CLS, SEP, MASK = range(5)
CHG_ID: Final[int] = len(SPECIALS) + MARKERS.index("[CHG]")
MAX_SLOTS: Final[int] = 32

DEFAULT_BINS: Final[dict[str, tuple[float, ...]]] = {
    "nb": (1, 2, 3, 5, 8),
    "dwell": (0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 120),
    "motion": (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    "entries": (2, 3, 4, 6),
    "ug": (20, 50, 100, 150, 200, 300, 400, 500, 750, 1000, 2000),
    "g": (2, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 400, 600, 800, 1200, 1600, 3200),
    "fit": (0.05, 0.1, 0.15, 0.2, 0.3, 0.4),
    "conf": (0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
    "settle": (0.5, 1, 2, 3, 5, 8, 15),
    "hist": (1, 2, 3, 5, 8),
    "since": (5, 15, 30, 60, 120, 300, 900, 1800),
    "stock": (1, 2, 3, 5, 8, 12, 20, 40),
    "nchg": (1, 2, 3, 4, 6),
    "lead": (1, 2, 3, 4, 6, 8, 12, 20, 30),
    "tail": (0.5, 1, 2, 3, 5, 8, 12, 20, 30),
    "nbr": (1, 2, 3, 5),
}
TIMED_BINS: Final[frozenset[str]] = frozenset({"nchg", "lead", "tail"})  # format 2 on
CONTEXT_BINS: Final[frozenset[str]] = frozenset({"nbr"})  # format 3 on
SKU_TOKENS: Final[tuple[str, ...]] = ("sku:own", "sku:other", "sku:none", "sku:na")
SKU_FIT: Final[float] = 0.15  # an added weight within this share of whole units fits a SKU
UNITS_CLAMP: Final[int] = 8


@dataclass(frozen=True, slots=True)
class Encoded:
    """Token ids of one window, with the index of each change's ``[CHG]`` token.

    ``change_positions[i]`` belongs to ``window.changes[i]``; the windows given to
    :meth:`ShelfTokenizer.encode` must hold at most ``max_changes`` changes.
    """

    ids: tuple[int, ...]
    change_positions: tuple[int, ...] = ()


def _bin(x: float | None, edges: Sequence[float]) -> str | None:
    if x is None or not math.isfinite(x):
        return None
    return str(bisect.bisect_right(edges, x))


@dataclass
class ShelfTokenizer:
    """Maps windows to token ids over a closed vocabulary (see the module docstring)."""

    tokens: list[str]
    bins: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(DEFAULT_BINS))
    max_reaches: int = 4
    max_changes: int = 7
    totals: bool = True  # format 2: window totals and change timings (see the module docstring)
    context: bool = True  # format 3: neighbouring changes and the added item's SKU per change
    _ids: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        head = SPECIALS + MARKERS
        if tuple(self.tokens[: len(head)]) != head:
            raise ValueError(f"a vocabulary starts with {head}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("a vocabulary holds each token once")
        self._ids = {t: i for i, t in enumerate(self.tokens)}

    # -- construction and files --------------------------------------------------------

    @classmethod
    def default(cls) -> ShelfTokenizer:
        """The vocabulary built from :data:`DEFAULT_BINS`."""
        return cls(tokens=list(_vocabulary(DEFAULT_BINS, totals=True, context=True)))

    @property
    def vocab_size(self) -> int:
        """Number of tokens (ids run from 0 to ``vocab_size - 1``)."""
        return len(self.tokens)

    @property
    def max_len(self) -> int:
        """Longest sequence a window can produce."""
        if self.totals:
            return 10 + 5 * self.max_reaches + (17 if self.context else 15) * self.max_changes
        return 8 + 5 * self.max_reaches + 13 * self.max_changes

    def to_json(self) -> dict[str, Any]:
        """The tokenizer file contents."""
        return {
            "format": TOKENIZER_FORMAT if self.context else 2 if self.totals else 1,
            "tokens": self.tokens,
            "bins": {k: list(v) for k, v in self.bins.items()},
            "max_reaches": self.max_reaches,
            "max_changes": self.max_changes,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ShelfTokenizer:
        """Read tokenizer file contents; raises ``ValueError`` when they cannot be used."""
        if not isinstance(d, dict) or d.get("format") not in READABLE_FORMATS:
            fmt = d.get("format") if isinstance(d, dict) else None
            raise ValueError(f"tokenizer format {fmt!r} is not one of {READABLE_FORMATS}")
        try:
            return cls(
                tokens=[str(t) for t in d["tokens"]],
                bins={str(k): tuple(float(x) for x in v) for k, v in d["bins"].items()},
                max_reaches=int(d["max_reaches"]),
                max_changes=int(d["max_changes"]),
                totals=d["format"] >= 2,
                context=d["format"] >= 3,
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"tokenizer file is missing or mistypes {err}") from None

    def save(self, path: Path) -> None:
        """Write the tokenizer file (callers write bundles atomically as a whole)."""
        path.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ShelfTokenizer:
        """Read a tokenizer file."""
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))

    # -- encoding ----------------------------------------------------------------------

    def id(self, token: str | None) -> int:
        """The id of ``token``, ``[UNK]`` for a token the vocabulary does not hold."""
        return UNK if token is None else self._ids.get(token, UNK)

    def _b(self, name: str, x: float | None) -> str | None:
        b = _bin(x, self.bins[name])
        return None if b is None else f"{name}:{b}"

    def _presence(self, p: Presence) -> list[str | None]:
        return [
            self._b("dwell", p.dwell),
            self._b("motion", p.peak_motion),
            self._b("entries", p.entries),
        ]

    def _change(self, w: EventWindow, c: WeightChange) -> list[str | None]:
        ctx = w.context(c.slot)
        fit: float | None = None
        if ctx is not None and ctx.unit_grams > 0 and math.isfinite(c.grams):
            ratio = abs(c.grams) / ctx.unit_grams
            fit = abs(ratio - round(ratio))
        g = _bin(abs(c.grams), self.bins["g"]) if math.isfinite(c.grams) else None
        sign = "+" if c.grams > 0 else "-"
        units = max(-UNITS_CLAMP, min(UNITS_CLAMP, c.units))
        if w.presence is None:
            at = "at:none"
        elif w.presence.t_enter - 1.0 <= c.t_start <= w.presence.t_leave + 1.0:
            at = "at:in"
        else:
            at = "at:out"
        zone = f"slot-{c.slot}"
        reached = any(r.zone == zone for r in w.reaches)
        return [
            "[CHG]",
            f"slot:{c.slot}",
            self._b("ug", ctx.unit_grams) if ctx else None,
            None if g is None else f"g:{sign}{g}",
            f"u:{units}",
            self._b("fit", fit),
            self._b("conf", c.confidence),
            self._b("settle", c.t_settled - c.t_start),
            at,
            "reach:yes" if reached else "reach:no",
            self._b("hist", ctx.recent_changes) if ctx else None,
            (self._b("since", ctx.since_last_s) or "since:never") if ctx else None,
            (self._b("stock", ctx.stock_units) or "stock:unk") if ctx else None,
            *(self._timing(w.presence, c) if self.totals else []),
            *(self._context_of(w, c) if self.context else []),
        ]

    def _context_of(self, w: EventWindow, c: WeightChange) -> list[str | None]:
        others = sum(1 for x in w.changes if x.slot != c.slot)
        return [self._b("nbr", others), sku_match(w, c)]

    def _timing(self, p: Presence | None, c: WeightChange) -> list[str | None]:
        if p is None:
            return ["lead:none", "tail:none"]
        return [self._b("lead", c.t_start - p.t_enter), self._b("tail", p.t_leave - c.t_settled)]

    def _totals(self, changes: Sequence[WeightChange]) -> list[str | None]:
        net = max(-UNITS_CLAMP, min(UNITS_CLAMP, sum(c.units for c in changes)))
        return [f"net:{net}", self._b("nchg", len(changes))]

    def tokens_of(self, w: EventWindow) -> tuple[list[str | None], list[int]]:
        """The window as token strings (``None`` where a value has no token) and ``[CHG]`` indices."""
        out: list[str | None] = ["[CLS]", f"hour:{w.hour}", self._b("nb", w.neighbours)]
        if w.presence is None:
            out += ["[NOBODY]", None, None, None]
        else:
            out += ["[BAY]", *self._presence(w.presence)]
        if self.totals:
            out += self._totals(w.changes)
        for r in w.reaches[: self.max_reaches]:
            out += ["[REACH]", r.zone.replace("slot-", "slot:"), *self._presence(r)]
        positions = []
        if len(w.changes) > self.max_changes:
            raise ValueError(f"a window holds at most {self.max_changes} changes; split it first")
        for c in w.changes:
            positions.append(len(out))
            out += self._change(w, c)
        out.append("[SEP]")
        return out, positions

    def encode(self, w: EventWindow) -> Encoded:
        """Token ids of ``w``; unknown values become ``[UNK]``, never an error."""
        toks, positions = self.tokens_of(w)
        return Encoded(tuple(self.id(t) for t in toks), tuple(positions))

    def split(self, w: EventWindow) -> list[EventWindow]:
        """``w`` as windows of at most ``max_changes`` changes each (same presence)."""
        if len(w.changes) <= self.max_changes:
            return [w]
        from dataclasses import replace

        n = self.max_changes
        return [replace(w, changes=w.changes[i : i + n]) for i in range(0, len(w.changes), n)]


def sku_match(w: EventWindow, c: WeightChange) -> str:
    """Which SKU of the window's slots explains an added weight best, in whole units.

    ``sku:own`` the slot's own, ``sku:other`` another slot's (a ``misplaced`` 250 g item
    on a 240 g slot, taken from a 250 g slot in the same window), ``sku:none`` none
    within :data:`SKU_FIT`, ``sku:na`` for a removal, no change or an unweighable one.
    """
    if not math.isfinite(c.grams) or c.grams <= 0:
        return "sku:na"
    best: tuple[float, bool] | None = None
    for ctx in w.slots.values():
        if not math.isfinite(ctx.unit_grams) or ctx.unit_grams <= 0:
            continue  # a slot without a known unit weight explains nothing
        r = c.grams / ctx.unit_grams
        if not math.isfinite(r) or round(r) < 1:
            continue
        err = abs(r - round(r)) / round(r)
        cand = (err, ctx.slot == c.slot)
        if best is None or cand[0] < best[0] or (cand[0] == best[0] and cand[1]):
            best = cand
    if best is None or best[0] > SKU_FIT:
        return "sku:none"
    return "sku:own" if best[1] else "sku:other"


def _vocabulary(
    bins: dict[str, tuple[float, ...]], *, totals: bool, context: bool = False
) -> Iterable[str]:
    yield from SPECIALS
    yield from MARKERS
    yield from (f"hour:{h}" for h in range(24))
    yield from (f"slot:{s}" for s in range(MAX_SLOTS))
    for name, edges in bins.items():
        if (name in TIMED_BINS and not totals) or (name in CONTEXT_BINS and not context):
            continue
        if name == "g":
            yield from (f"g:{s}{i}" for s in "+-" for i in range(len(edges) + 1))
        else:
            yield from (f"{name}:{i}" for i in range(len(edges) + 1))
    yield from (f"u:{u}" for u in range(-UNITS_CLAMP, UNITS_CLAMP + 1))
    yield from ("at:none", "at:in", "at:out", "reach:yes", "reach:no")
    yield from ("since:never", "stock:unk")
    if totals:
        yield from (f"net:{u}" for u in range(-UNITS_CLAMP, UNITS_CLAMP + 1))
        yield from ("lead:none", "tail:none")
    if context:
        yield from SKU_TOKENS


def pad_batch(
    batch: Sequence[Encoded], length: int | None = None
) -> tuple[list[list[int]], list[list[int]]]:
    """Right-pad ids to the longest in the batch (or ``length``): ``(input_ids, attention_mask)``."""
    n = length if length is not None else max((len(e.ids) for e in batch), default=1)
    ids = [list(e.ids[:n]) + [PAD] * (n - len(e.ids[:n])) for e in batch]
    mask = [[1] * min(len(e.ids), n) + [0] * (n - min(len(e.ids), n)) for e in batch]
    return ids, mask
