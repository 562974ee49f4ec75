"""End to end: five sim units, the real cloud and the cloud's own Mosquitto config, one fleet rollout.

The broker runs exactly the ``mosquitto.conf`` that ``write_broker_files`` writes
(units on one loopback listener with their device id and API key, the cloud on the
other as the service user). The app runs under uvicorn with its MQTT ingest, fleet
state worker, desired-state publisher and rollout ticker. Five whole agents run in
sim mode with a real int8 model (version 1) and sync over MQTT only: desired state
arrives retained on ``…/desired``, events go out on ``…/events`` and OTA reports on
``…/reported``; bundles come from ``/v1/tuf/`` through python-tuf.

1. v2 rolls out ``canary:1,100%`` with a short soak, the canary asked to shadow it
   first: the canary runs v2 beside v1 on live windows (v1 still deciding), reports
   agreement per head, windows compared and latency ratio, which arrive in the cloud
   and gate the promotion (no other unit hears of v2 before them); then it switches
   and goes active, the rollout promotes by itself after the soak, all five end
   active on v2.
2. v3, signed and gated but with golden outputs that do not reproduce on the unit,
   rolls out ``canary:1,100%``: the canary refuses it at verifying and reports
   ``failed``, the rollout aborts by itself at its failure share, the four others
   never hear of v3, and every unit goes on deciding with v2.
3. ``rollback`` of the v2 rollout puts all five back on v1.

Every unit's events reach the cloud once each with seqs 1..N and no gap; they were
decided by v1, then v2, then v1 again, never mixed.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from cloud import registry
from cloud.broker_files import BrokerConf, write_broker_files
from cloud.keys import Role
from cloud.settings import build_settings
from cloud.store import open_store
from cloud.store.tables import events
from cloud.tuf_repo import TufRepository, init_repository, key_file, load_signer
from edge.agent import Agent
from edge.config import parse_config
from edge.ota.install import install_bundle
from edge.sync.identity import Identity
from edge.workers.build import add_sensing
from shelfsense.cli import main
from tests.cloud.support import Live, make_key, register_unit, serve
from tests.edge.agent_support import CAMERA, SEED
from tests.edge.test_ota_e2e import real_versions
from tests.support.mosquitto import free_port, mosquitto_binary, run_mosquitto_conf
from tests.support.waiting import wait_until

pytest.importorskip("torch")  # the bundles are exported from a tiny random student
pytestmark = pytest.mark.mqtt

UNITS = tuple(f"unit-{i}" for i in range(1, 6))
SERVICE, SERVICE_PW = "cloud-svc", "svc-secret"
WAIT = 180.0
SHADOW_WINDOWS = 5


def counted(states: dict[str, int]) -> dict[str, int]:
    """The states some unit is in (the API lists every state, with zeros)."""
    return {k: n for k, n in states.items() if n}


@dataclass
class Reports:
    """Every ``shelfsense/<id>/reported`` message, in arrival order, read as the service user."""

    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.seen.append((msg.topic.split("/")[1], json.loads(msg.payload)))

    def of(self, device_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for d, r in self.seen if d == device_id]


@dataclass
class Fleet:
    live: Live
    op: httpx.Client
    agents: dict[str, Agent]
    reports: Reports

    def stored(self, device_id: str) -> list[tuple[int, int | None]]:
        with self.live.store.engine.connect() as conn:
            rows = conn.execute(
                select(events.c.seq, events.c.model_version)
                .where(events.c.device_id == device_id)
                .order_by(events.c.seq)
            )
            return [(r.seq, r.model_version) for r in rows]

    def shadowed(self, device_id: str) -> list[tuple[int | None, int | None, str | None]]:
        """(model version, candidate version, candidate label) of events that carry a shadow."""
        with self.live.store.engine.connect() as conn:
            rows = conn.execute(
                select(events.c.model_version, events.c.shadow_version, events.c.shadow_label)
                .where(events.c.device_id == device_id, events.c.shadow_version.is_not(None))
                .order_by(events.c.seq)
            )
            return [(r.model_version, r.shadow_version, r.shadow_label) for r in rows]

    def reported(self, device_id: str) -> dict[str, Any]:
        got = self.op.get(f"/v1/devices/{device_id}/reported")
        return dict(got.json()) if got.status_code == 200 else {}

    def rollout(self, rollout_id: int) -> dict[str, Any]:
        return dict(self.op.get(f"/v1/rollouts/{rollout_id}").json())

    def show(self, *args: str) -> None:
        """What ``shelfsense fleet …`` prints now (seen with ``pytest -s``)."""
        print("$ shelfsense fleet", " ".join(args))
        assert main(["fleet", *args, "--database-url", self.live.settings.database_url]) == 0

    def all_on(self, version: int) -> bool:
        return all(
            (r := self.reported(d)).get("state") == "active" and r.get("version") == version
            for d in UNITS
        )


@contextmanager
def fleet(tmp: Path) -> Iterator[Fleet]:
    """The broker from the cloud's own config, the app, v1..v3 published, five units on v1."""
    if mosquitto_binary() is None:
        pytest.fail("mosquitto is not installed (make test installs it with apt)")
    outs, pem, key = real_versions(tmp)
    db_url = f"sqlite:///{tmp / 'cloud.db'}"
    unit_port, service_port = free_port(), free_port()
    settings = build_settings(
        database_url=db_url,
        rate_per_s=0,
        db_pool_size=5,
        mqtt_host="127.0.0.1",
        mqtt_port=service_port,
        mqtt_username=SERVICE,
        mqtt_password=SERVICE_PW,
        mqtt_batch_wait_s=0.02,
        tuf_dir=tmp / "tuf",
        rollout_tick_s=0.2,
    )
    repo = TufRepository.from_settings(settings)
    init_repository(repo, tmp / "keys")
    store = open_store(db_url, pool_size=2)
    tokens = {d: register_unit(store, d, "store-1", f"bay-{d[-1]}") for d in UNITS}
    with store.writer.begin() as conn:
        for version in (1, 2, 3):
            candidate = registry.read_candidate(outs[version], [key.public_key()])
            registry.publish(conn, repo, candidate, load_signer(key_file(tmp / "keys", "targets")))
    conf_file, persist = tmp / "mosquitto.conf", tmp / "persist"
    persist.mkdir()
    conf = BrokerConf(
        files_dir=tmp / "broker",
        unit_host="127.0.0.1",
        unit_port=unit_port,
        service_port=service_port,
        persistence_dir=persist,
    )
    with store.engine.connect() as conn:
        write_broker_files(
            conn,
            tmp / "broker",
            service_user=SERVICE,
            service_password=SERVICE_PW,
            conf=conf,
            conf_file=conf_file,
        )
    store.dispose()
    if os.geteuid() == 0:  # as root Mosquitto would drop to user mosquitto, who cannot read tmp
        conf_file.write_text("user root\n" + conf_file.read_text())
    with ExitStack() as stack:
        stack.enter_context(run_mosquitto_conf(conf_file, unit_port, service_port, log=tmp / "log"))
        live = stack.enter_context(serve(settings, mqtt=True))
        publisher = live.server.config.app.state.desired_publisher
        assert publisher is not None and publisher.connected.wait(10), "publisher not connected"
        reports = Reports()
        watcher = mqtt.Client(CallbackAPIVersion.VERSION2, "e2e-watch", protocol=mqtt.MQTTv5)
        watcher.username_pw_set(SERVICE, SERVICE_PW)
        watcher.on_message = reports.add
        watcher.on_connect = lambda c, *_: c.subscribe("shelfsense/+/reported", qos=1)
        watching = threading.Event()
        watcher.on_subscribe = lambda *_: watching.set()
        watcher.connect("127.0.0.1", service_port)
        watcher.loop_start()
        stack.callback(watcher.loop_stop)
        assert watching.wait(10), "no SUBACK for the units' reports"
        op = stack.enter_context(live.client(make_key(live.store, Role.OPERATOR)))
        agents: dict[str, Agent] = {}
        for i, device in enumerate(UNITS):
            data = tmp / device
            data.mkdir()
            (data / "tuf-root.json").write_bytes(repo.root_bytes(1))
            current = data / "models" / "current"
            install_bundle(
                outs[1] / "bundle", current, trusted_keys=[key.public_key()], agent_version="0.1.0"
            )
            cfg = {
                "unit": {
                    "device_id": device,
                    "data_dir": str(data),
                    "store": "store-1",
                    "bay": f"bay-{device[-1]}",
                },
                "loadcells": {"source": "sim", "sim_scenario": "busy", "sim_seed": SEED + i},
                "camera": {"source": "sim", **CAMERA},
                "sync": {
                    "mode": "mqtt",
                    "base_url": live.url,  # TUF only: desired, events and reports go by MQTT
                    "mqtt_host": "127.0.0.1",
                    "mqtt_port": unit_port,
                    "idle_s": 0.05,
                },
                "health": {"interval_s": 0.5},
                "model": {"bundle_dir": str(current), "trusted_key": str(pem)},
                "ota": {
                    "watch_s": 1.0,
                    "watch_poll_s": 0.1,
                    "retry_s": 0.5,
                    "shadow_max_s": 60.0,
                },
            }
            agent = Agent(
                parse_config(cfg), identity=Identity(device_id=device, api_key=tokens[device])
            )
            assert agent.ota is not None
            add_sensing(agent, speed=20, sim_hours=4.0)
            agents[device] = agent
        try:
            for agent in agents.values():
                agent.start()
            yield Fleet(live, op, agents, reports)
        finally:
            for agent in agents.values():
                agent.stop()


def _runs(versions: list[int | None]) -> list[int | None]:
    """``[1, 1, 2, 2, 1]`` as ``[1, 2, 1]``: the models that decided, in turn."""
    return [v for i, v in enumerate(versions) if i == 0 or versions[i - 1] != v]


@pytest.mark.slow(seconds=60)
def test_a_fleet_rolls_out_v2_refuses_v3_and_rolls_back_to_v1(tmp_path: Path) -> None:
    with fleet(tmp_path) as f:
        op = f.op
        for d in UNITS:
            assert op.put(f"/v1/devices/{d}/desired", json={"model_version": 1}).is_success
        wait_until(lambda: all(any(v == 1 for _, v in f.stored(d)) for d in UNITS), timeout=WAIT)

        # v2: a canary of one, then everyone once the canary was active for the soak
        made = op.post(
            "/v1/rollouts",
            json={
                "model_version": 2,
                "phases": "canary:1,100%",
                "min_soak_s": 2,
                "min_shadow_agreement": 0.0,  # any figure passes; the canary must report one
                "shadow_windows": SHADOW_WINDOWS,
            },
        )
        assert made.status_code == 201, made.text
        v2 = made.json()["rollout_id"]
        wait_until(lambda: f.rollout(v2)["status"] == "completed", timeout=WAIT)
        wait_until(lambda: f.all_on(2), timeout=WAIT)
        f.show("rollouts", "show", str(v2))
        shown = f.rollout(v2)["per_phase"]
        assert [(p["name"], counted(p["states"])) for p in shown] == [
            ("canary:1", {"active": 1}),
            ("100%", {"active": 4}),
        ]
        canary = shown[0]["shadow"][0]["device_id"]
        figures = f.reported(canary)  # kept by the cloud after the canary went active
        # the canary shadows the windows asked for or until its shadow time is up, whichever
        # comes first: a loaded machine makes fewer windows in that time, never none
        assert figures["shadow_windows"] >= 1 and figures["latency_ratio"] > 0
        assert figures["shadow_agreement"] == min(figures["shadow_heads"].values())
        asked = op.get(f"/v1/devices/{canary}/desired").json()  # the canary was asked to shadow
        assert (asked["shadow_windows"], asked["min_shadow_agreement"]) == (SHADOW_WINDOWS, 0.0)
        seen = list(f.reports.seen)
        said = next(i for i, (d, r) in enumerate(seen) if d == canary and r.get("shadow_windows"))
        first_other = min(
            i for i, (d, r) in enumerate(seen) if d != canary and r.get("version") == 2
        )
        assert said < first_other  # the figures gated the promotion
        # events the canary decided in shadow carry v2's label beside v1's, for labels to score
        assert {d for d in UNITS if f.shadowed(d)} <= {canary}
        in_shadow = f.shadowed(canary)
        assert in_shadow and all(m == 1 and v == 2 and lab for m, v, lab in in_shadow)
        for d in UNITS:
            wait_until(lambda d=d: any(v == 2 for _, v in f.stored(d)), timeout=WAIT)
            steps = [(r["state"], r["version"]) for r in f.reports.of(d)]
            # a download is reported again with its progress: one step however often
            steps = [
                x
                for i, x in enumerate(steps)
                if i == 0 or x[0] != "downloading" or x != steps[i - 1]
            ]
            shadowed = [("shadow", 2), ("shadow", 2)] if d == canary else []
            assert steps == [
                ("downloading", 2),
                ("verifying", 2),
                *shadowed,
                ("staged", 2),
                ("active", 2),
            ], d
            assert f.reported(d)["previous_version"] == 1

        # v3 does not reproduce its golden outputs on the unit: the canary refuses it
        made = op.post(
            "/v1/rollouts",
            json={
                "model_version": 3,
                "phases": "canary:1,100%",
                "min_soak_s": 2,
                "abort_failed": 0.2,
            },
        )
        assert made.status_code == 201, made.text
        v3 = made.json()["rollout_id"]
        wait_until(lambda: f.rollout(v3)["status"] == "aborted", timeout=WAIT)
        f.show("rollouts", "show", str(v3))
        aborted = f.rollout(v3)
        assert "1 of 1 units failed" in aborted["reason"], aborted["reason"]
        assert counted(aborted["per_phase"][0]["states"]) == {"failed": 1}
        assert counted(aborted["per_phase"][1]["states"]) == {"not_started": 4}
        tried = [d for d in UNITS if any(r["version"] == 3 for r in f.reports.of(d))]
        assert len(tried) == 1  # the canary only; the others never heard of v3
        why = f.reported(tried[0])
        assert (why["state"], why["version"]) == ("failed", 3)
        assert "golden" in why["reason"], why["reason"]
        wait_until(lambda: op.get(f"/v1/devices/{tried[0]}/desired").json()["model_version"] == 2)
        for d, agent in f.agents.items():
            assert agent.ota is not None and agent.ota.slots.current_version() == 2, d

        # the operator rolls v2 back: all five on v1 again (their previous slot)
        assert op.post(f"/v1/rollouts/{v2}/rollback").is_success
        wait_until(lambda: f.all_on(1), timeout=WAIT)
        assert f.rollout(v2)["status"] == "rolled_back"
        for d in UNITS:
            wait_until(lambda d=d: _runs([v for _, v in f.stored(d)])[-1:] == [1], timeout=WAIT)
            agent = f.agents[d]
            wait_until(
                lambda d=d, agent=agent: f.stored(d)[-1][0] == agent.buffer.seq, timeout=WAIT
            )
        f.show("rollouts", "list")
        f.show("devices", "list")
        for d in UNITS:
            print(d, " ".join(f"{r['state']}:v{r['version']}" for r in f.reports.of(d)))
    for d in UNITS:
        rows = f.stored(d)
        seqs = [s for s, _ in rows]
        assert seqs == list(range(1, len(seqs) + 1)), d  # once each, no gap at any switch
        assert _runs([v for _, v in rows]) == [1, 2, 1], d
        counts = [sum(1 for _ in g) for _, g in itertools.groupby(v for _, v in rows)]
        print(
            f"{d}: seqs 1..{seqs[-1]} stored once each, decided by v1 {counts[0]}, "
            f"v2 {counts[1]}, v1 {counts[2]}"
        )
