"""Who decides a window: the installed model when there is one, else the rule baseline.

:func:`build_decider` looks for a bundle in ``model.bundle_dir``: when one is there and
verifies (signature, hashes, golden outputs; :class:`~models.runtime.ModelRuntime`),
windows are decided by the model and events say ``decided_by="model"`` with its
version. Otherwise, or when the bundle is refused (alarm ``model_refused``), the rule
baseline (:class:`~models.rules.RuleBaseline`) decides and events say
``decided_by="rules"``. Confidences of rule decisions are the weigh confidence of each
change and :data:`RULE_INTEREST_CONFIDENCE` for interest: rules are not calibrated, and
the figure says so rather than pretending certainty.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from edge import AGENT_VERSION
from edge.events import WindowDecision
from edge.health import Health
from edge.memory import trim
from models.runtime.config import ModelConfig
from models.window import EventWindow
from models.wire import Decider

if TYPE_CHECKING:
    from models.runtime import ModelRuntime

log = logging.getLogger(__name__)

RULE_INTEREST_CONFIDENCE = 0.5
RESTOCK_UNITS = 3  # weight-only labelling: this many units added at once is a restock


class WindowDecider(Protocol):
    """Decides windows; says who it is and which model version (if any)."""

    decided_by: Decider
    model_version: int | None

    def decide(self, windows: Sequence[EventWindow]) -> list[WindowDecision]:
        """One decision per window, in order."""
        ...


class RulesDecider:
    """The rule baseline of ``models.rules`` as a window decider."""

    decided_by: Decider = "rules"
    model_version: int | None = None

    def __init__(self) -> None:
        from models.rules import RuleBaseline

        self.rules = RuleBaseline()

    def decide(self, windows: Sequence[EventWindow]) -> list[WindowDecision]:
        """Interest (only with a shopper at the bay) and a stock label per change."""
        out = []
        for w in windows:
            interest, stock = self.rules.predict(w)
            out.append(
                WindowDecision(
                    interest if w.presence is not None else None,
                    RULE_INTEREST_CONFIDENCE,
                    tuple((s, c.confidence) for s, c in zip(stock, w.changes, strict=True)),
                )
            )
        return out


class WeightOnlyDecider:
    """Stock from the sign and size of each change alone (no camera, no thresholds fitted).

    ``removal`` when units left, ``restock`` when at least :data:`RESTOCK_UNITS` came,
    ``return`` for fewer, ``none`` for a change of zero whole units.
    """

    decided_by: Decider = "rules"
    model_version: int | None = None

    def decide(self, windows: Sequence[EventWindow]) -> list[WindowDecision]:
        """No interest; one stock label per change."""
        out = []
        for w in windows:
            labels = []
            for c in w.changes:
                if c.units < 0:
                    labels.append(("removal", c.confidence))
                elif c.units >= RESTOCK_UNITS:
                    labels.append(("restock", c.confidence))
                elif c.units > 0:
                    labels.append(("return", c.confidence))
                else:
                    labels.append(("none", c.confidence))
            out.append(WindowDecision(None, 0.0, tuple(labels)))
        return out


class ModelDecider:
    """A loaded :class:`~models.runtime.ModelRuntime` as a window decider.

    Per window and head, the bundle's guard may hand the decision to the fitted rules
    (crowding buckets where they beat the student); the decision says which decided.
    """

    decided_by: Decider = "model"

    def __init__(self, runtime: ModelRuntime, batch_size: int = 1) -> None:
        self.runtime = runtime
        self.batch_size = batch_size
        self.model_version: int | None = runtime.version

    def decide(self, windows: Sequence[EventWindow]) -> list[WindowDecision]:
        """The model's labels and confidences; interest only with a shopper at the bay."""
        if not windows:
            return []
        got = self.runtime.classify(windows, batch_size=self.batch_size)
        return [
            WindowDecision(
                d.interest if w.presence is not None else None,
                d.interest_confidence,
                d.stock,
                d.interest_by,
                d.stock_by,
            )
            for w, d in zip(windows, got, strict=True)
        ]


def load_model(cfg: ModelConfig, *, health: Health | None = None) -> ModelDecider:
    """The bundle in ``cfg.bundle_dir`` loaded, warmed and golden-checked; raises if refused."""
    from models.runtime import ModelRuntime

    runtime = ModelRuntime.from_config(cfg, agent_version=AGENT_VERSION)
    runtime.load(Path(cfg.bundle_dir))
    trim()  # the load's and the golden check's scratch memory goes back to the system
    if health is not None:
        health.clear("model_refused")
        health.set("model_version", runtime.version)
        health.set("decided_by", "model")
    return ModelDecider(runtime, cfg.batch_size)


def build_decider(cfg: ModelConfig, *, health: Health | None = None) -> WindowDecider:
    """The model when a bundle is installed in ``cfg.bundle_dir`` and loads; else the rules."""
    bundle = Path(cfg.bundle_dir)
    if (bundle / "manifest.json").is_file():
        from models.errors import ModelError

        try:
            return load_model(cfg, health=health)
        except (ModelError, OSError) as err:
            log.error("model bundle %s refused, the rules decide: %s", bundle, err)
            if health is not None:
                health.alarm("model_refused", str(err)[:200])
    if health is not None:
        health.set("model_version", None)
        health.set("decided_by", "rules")
    return RulesDecider()


class BundleWatch:
    """Notices a bundle installed (or replaced) in ``model.bundle_dir`` while the agent runs.

    :meth:`poll` looks at the manifest at most every ``every_s`` seconds and, when it
    changed, loads the new bundle (verified, warmed, golden outputs replayed) while the
    decider in use goes on; a bundle that does not load leaves that decider in place
    (counted as ``model_load_failures``, which the OTA watch reads). So an OTA switch
    or ``shelfsense edge install-model`` takes effect without a restart.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        *,
        health: Health | None = None,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.health = health
        self.every_s = every_s
        self._clock = clock
        self._next = clock() + every_s
        self._stamp = self.stamp()

    def stamp(self) -> tuple[int, int, int] | None:
        """Identity of the manifest file now (None: no bundle)."""
        try:
            st = (Path(self.cfg.bundle_dir) / "manifest.json").stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def poll(self) -> WindowDecider | None:
        """A new decider when the installed bundle changed since the last look, else None."""
        now = self._clock()
        if now < self._next:
            return None
        self._next = now + self.every_s
        stamp = self.stamp()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        log.info("model bundle in %s changed: reloading", self.cfg.bundle_dir)
        if stamp is None:
            return build_decider(self.cfg, health=self.health)
        from models.errors import ModelError

        try:  # the decider in use keeps deciding until the new one is loaded and warm
            return load_model(self.cfg, health=self.health)
        except (ModelError, OSError) as err:
            log.error(
                "model bundle %s refused, the model in use goes on: %s", self.cfg.bundle_dir, err
            )
            if self.health is not None:
                self.health.count("model_load_failures")
                self.health.alarm("model_refused", str(err)[:200])
            return None
