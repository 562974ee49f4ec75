"""Building the OTA worker for an agent from its config: trusted root and key, slots, reporter."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from edge import AGENT_VERSION
from edge.config import Config
from edge.health import Health
from edge.ota.fetch import TufFetcher
from edge.ota.slots import Slots
from edge.ota.worker import OtaWorker
from edge.sync.endpoints import TOPIC_REPORTED
from edge.sync.http import HttpTransport
from edge.sync.mqtt import MqttTransport
from edge.workers.decide import ModelDecider
from models.bundle import load_public_key
from models.wire_fleet import OtaReport

log = logging.getLogger(__name__)


def load_check(config: Config) -> Callable[[Path], None]:
    """Load a staged bundle as the agent would and replay its golden outputs (raises if not)."""

    def check(path: Path) -> None:
        from models.runtime import ModelRuntime

        cfg = config.model.model_copy(update={"bundle_dir": path})
        ModelRuntime.from_config(cfg, agent_version=AGENT_VERSION).load(path)

    return check


def load_candidate(config: Config) -> Callable[[Path], ModelDecider]:
    """Load a staged bundle as a decider to run in shadow (verified, warmed, golden-checked)."""

    def load(path: Path) -> ModelDecider:
        from models.runtime import ModelRuntime

        cfg = config.model.model_copy(update={"bundle_dir": path})
        runtime = ModelRuntime.from_config(cfg, agent_version=AGENT_VERSION)
        runtime.load(path)
        return ModelDecider(runtime, cfg.batch_size)

    return load


def build_ota(
    config: Config,
    health: Health,
    *,
    http: HttpTransport | None,
    mqtt: MqttTransport | None,
) -> OtaWorker | None:
    """The unit's OTA worker; None (logged) when OTA is off or the unit lacks a root or key."""
    data_dir = Path(config.unit.data_dir)
    root_file = data_dir / config.ota.trusted_root
    if not config.ota.enabled or config.sync.mode == "off":
        return None
    if not root_file.is_file():
        log.info("OTA off: no trusted TUF root at %s", root_file)
        return None
    if config.model.trusted_key is None:
        log.info("OTA off: no model.trusted_key to check bundle signatures with")
        return None
    key = load_public_key(Path(config.model.trusted_key).read_bytes())

    def report(body: OtaReport) -> None:
        payload = body.model_dump_json(exclude_none=True)
        if http is not None:
            http.post_reported(payload.encode())
        elif mqtt is None or not mqtt.publish(TOPIC_REPORTED, payload, qos=1, retain=True):
            raise ConnectionError("no transport to report on")

    return OtaWorker(
        Slots.open(config.model.bundle_dir),
        TufFetcher(
            config.sync.base_url,
            data_dir / config.ota.metadata_dir,
            trusted_root=root_file.read_bytes(),
            timeout_s=config.ota.timeout_s,
            max_bytes_per_s=config.ota.max_download_kib_s * 1024,
        ),
        state_file=data_dir / config.ota.state_file,
        trusted_keys=[key],
        agent_version=AGENT_VERSION,
        report=report,
        health=health,
        settings=config.ota.settings(),
        check=load_check(config),
        load=load_candidate(config),
    )
