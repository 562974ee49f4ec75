"""Windows in, decisions out: a verified bundle behind an inference backend.

:class:`ModelRuntime` verifies a bundle (``models.bundle``), opens the backend the
config names, warms it up and replays the bundle's golden batches at the batch size
each was made with (dynamic int8 computes activation scales per batch, so a golden
output only holds for its own batch). Only when all of that passes does the new model
replace the old one; on any failure :meth:`ModelRuntime.load` raises
:class:`~models.errors.BundleError` and the runtime keeps the model it had.

Each head of a window goes to the student or to the fitted rules as the bundle's
guard says for the window's crowding buckets (:mod:`models.guard`); a decision names
who made each head (``interest_by``, ``stock_by``). Rule interest decisions carry
:data:`RULES_INTEREST_CONFIDENCE`, rule stock decisions the weigh confidence of each
change: rules are not calibrated, and the figure says so.

Model decisions go through the physics mask (``models.runtime.decoding``): a stock label the
measured change forbids is never chosen, whatever the backend's logits. Golden outputs
stay the model's own probabilities (unmasked), since they check the model file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from models.bundle import Bundle, load_public_key, verify_bundle
from models.errors import BackendError, BundleError
from models.guard import Guard, Who
from models.physics import allowed_mask
from models.rules import RuleBaseline
from models.runtime.base import FloatArray, InferenceBackend
from models.runtime.config import ModelConfig
from models.runtime.decoding import DECODINGS, decode_stock
from models.tokens import Encoded, pad_batch
from models.window import EventWindow

log = logging.getLogger(__name__)
DEFAULT_GOLDEN_ATOL = 0.05
RULES_INTEREST_CONFIDENCE = 0.5


@dataclass(frozen=True, slots=True)
class Decision:
    """The model's decisions for one window: interest of the episode, stock of each change."""

    interest: str
    interest_confidence: float
    stock: tuple[tuple[str, float], ...] = ()
    interest_by: Who = "model"
    stock_by: Who = "model"


def softmax(x: FloatArray) -> FloatArray:
    """Softmax over the last axis."""
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def run_logits(
    backend: InferenceBackend, batch: Sequence[Encoded], length: int | None = None
) -> tuple[FloatArray, list[FloatArray]]:
    """Raw logits for one batch: interest ``(B, n)`` and per-window stock ``(changes, m)``."""
    ids, mask = pad_batch(batch, length)
    interest, stock = backend.run(np.asarray(ids, np.int64), np.asarray(mask, np.int64))
    per = [np.asarray(stock[b, list(e.change_positions)]) for b, e in enumerate(batch)]
    return np.asarray(interest), per


def run_encoded(
    backend: InferenceBackend, batch: Sequence[Encoded], length: int | None = None
) -> tuple[FloatArray, list[FloatArray]]:
    """The model's own probabilities (no physics mask): what golden outputs record."""
    interest, stock = run_logits(backend, batch, length)
    return softmax(interest), [softmax(s) for s in stock]


def check_golden(
    backend: InferenceBackend, golden: Sequence[Mapping[str, Any]], atol: float
) -> None:
    """Replay golden batches; raises ``BundleError`` on a mismatch beyond ``atol``.

    Probabilities must agree within ``atol``; the argmax must agree wherever the
    golden top-two margin is wider than ``2 * atol`` (a near tie may flip across CPUs).
    """
    for n, g in enumerate(golden, 1):
        batch = [
            Encoded(tuple(i for i, m in zip(ids, mask, strict=True) if m), tuple(pos))
            for ids, mask, pos in zip(
                g["input_ids"], g["attention_mask"], g["change_positions"], strict=True
            )
        ]
        length = len(g["input_ids"][0])
        pi, ps = run_encoded(backend, batch, length)
        want_i = np.asarray(g["interest_probs"], np.float32)
        _compare(f"golden batch {n} interest", pi, want_i, atol)
        for b, want in enumerate(g["stock_probs"]):
            if want:
                _compare(f"golden batch {n} stock", ps[b], np.asarray(want, np.float32), atol)


def _compare(what: str, got: FloatArray, want: FloatArray, atol: float) -> None:
    if got.shape != want.shape:
        raise BundleError(f"{what}: output shape {got.shape}, golden {want.shape}")
    diff = float(np.abs(got - want).max()) if got.size else 0.0
    if diff > atol:
        raise BundleError(f"{what}: outputs differ from golden by {diff:.4f} > {atol}")
    top2 = np.sort(want, axis=-1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) > 2 * atol
    if np.any((got.argmax(-1) != want.argmax(-1)) & clear):
        raise BundleError(f"{what}: decisions differ from golden")


class ModelRuntime:
    """The model a unit decides with; swaps bundles only after they verify and reproduce."""

    def __init__(
        self,
        *,
        trusted_keys: Sequence[Ed25519PublicKey],
        backend: str = "onnx",
        threads: int = 1,
        agent_version: str = "0.1.0",
        backends: Mapping[str, type[InferenceBackend]] | None = None,
    ) -> None:
        from models.runtime.registry import BACKENDS

        self._backends = dict(BACKENDS if backends is None else backends)
        if backend not in self._backends:
            raise BackendError(f"unknown backend {backend!r}; known: {', '.join(self._backends)}")
        self.trusted_keys = list(trusted_keys)
        self.backend_name = backend
        self.threads = threads
        self.agent_version = agent_version
        self._bundle: Bundle | None = None
        self._backend: InferenceBackend | None = None
        self._guard = Guard()
        self._rules = RuleBaseline()

    @classmethod
    def from_config(cls, cfg: ModelConfig, *, agent_version: str = "0.1.0") -> ModelRuntime:
        """A runtime with the backend, threads and trusted key of a unit's ``[model]`` section.

        Nothing is loaded yet: call :meth:`load` with ``cfg.bundle_dir``.
        """
        keys = []
        if cfg.trusted_key is not None:
            try:
                keys.append(load_public_key(Path(cfg.trusted_key).read_bytes()))
            except OSError as err:
                raise BundleError(f"trusted key {cfg.trusted_key}: {err.strerror}") from None
        return cls(
            trusted_keys=keys, backend=cfg.backend, threads=cfg.threads, agent_version=agent_version
        )

    @property
    def bundle(self) -> Bundle | None:
        """The bundle in use (``None`` before the first successful load)."""
        return self._bundle

    @property
    def guard(self) -> Guard:
        """The guard of the bundle in use (the model everywhere before a load)."""
        return self._guard

    @property
    def version(self) -> int | None:
        """Version of the model in use."""
        return None if self._bundle is None else self._bundle.version

    def load(self, path: Path) -> Bundle:
        """Verify, open, warm up and golden-test the bundle at ``path``, then switch to it."""
        bundle = verify_bundle(
            path, trusted_keys=self.trusted_keys, agent_version=self.agent_version
        )
        if bundle.decoding not in DECODINGS:
            raise BundleError(
                f"{path}: decoding {bundle.decoding!r} unknown; known: {', '.join(DECODINGS)}"
            )
        cls = self._backends[self.backend_name]
        if not bundle.has(cls.model_file):
            raise BundleError(f"{path}: bundle has no {cls.model_file} for backend {cls.name}")
        try:
            backend = cls(bundle.file(cls.model_file), threads=self.threads)
            warm = bundle.tokenizer.encode(
                EventWindow(
                    bay="warm-up", episode=0, t_start=0.0, t_end=0.0, hour=12, presence=None
                )
            )
            run_encoded(backend, [warm])
            atol = float(bundle.manifest.get("golden_atol", DEFAULT_GOLDEN_ATOL))
            check_golden(backend, bundle.golden(), atol)
        except BackendError as err:
            raise BundleError(f"{path}: {err}") from None
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, BundleError):
                raise BundleError(f"{path}: {err}") from None
            raise BundleError(f"{path}: golden outputs unusable: {err}") from None
        guard = bundle.guard  # parsed and checked by verify_bundle
        rules = RuleBaseline.from_dict(dict(guard.rules)) if guard.rules else RuleBaseline()
        self._bundle, self._backend = bundle, backend
        self._guard, self._rules = guard, rules
        log.info("model version %s loaded from %s (%s)", bundle.version, path, cls.name)
        return bundle

    def encode(self, window: EventWindow) -> list[Encoded]:
        """A window as one or more encodings (windows with many changes are split)."""
        if self._bundle is None:
            raise BackendError("no model loaded")
        tok = self._bundle.tokenizer
        return [tok.encode(w) for w in tok.split(window)]

    def classify(self, windows: Sequence[EventWindow], *, batch_size: int = 1) -> list[Decision]:
        """Decide every window; ``batch_size`` windows (or parts of them) per backend call."""
        if self._bundle is None or self._backend is None:
            raise BackendError("no model loaded")
        labels = self._bundle.labels
        tok = self._bundle.tokenizer
        parts: list[tuple[int, Encoded, EventWindow]] = []
        for i, w in enumerate(windows):
            parts.extend((i, tok.encode(sub), sub) for sub in tok.split(w))
        interest: dict[int, FloatArray] = {}
        stock: dict[int, list[tuple[int, float]]] = {i: [] for i in range(len(windows))}
        for start in range(0, len(parts), batch_size):
            chunk = parts[start : start + batch_size]
            li, ls = run_logits(self._backend, [e for _, e, _ in chunk])
            for (i, _, sub), l_i, l_s in zip(chunk, li, ls, strict=True):
                interest.setdefault(i, softmax(l_i))
                stock[i].extend(decode_stock(l_s, allowed_mask(sub.changes)))
        out = []
        for i, w in enumerate(windows):
            p = interest[i]
            k = int(p.argmax())
            label, conf = labels["interest"][k], float(p[k])
            changes = tuple((labels["stock"][j], c) for j, c in stock[i])
            i_by, s_by = self._guard.decider("interest", w), self._guard.decider("stock", w)
            if "rules" in (i_by, s_by):
                r_interest, r_stock = self._rules.predict(w)
                if i_by == "rules":
                    label, conf = r_interest, RULES_INTEREST_CONFIDENCE
                if s_by == "rules":
                    changes = tuple(
                        (s, c.confidence) for s, c in zip(r_stock, w.changes, strict=True)
                    )
            out.append(Decision(label, conf, changes, i_by, s_by))
        return out
