"""A small real cloud for sync tests and benches, on loopback, until the cloud service lands.

:class:`IngestStore` keeps events in its own SQLite file, idempotent on
``(device_id, seq)``. :class:`IngestHttpServer` serves the HTTP contract
(``POST /v1/ingest/events`` gzip JSON → BatchAck; ``GET /v1/devices/<id>/desired``)
with a bearer key and can be stopped and started on the same port.
:class:`MqttIngest` subscribes to ``shelfsense/+/events`` on a real broker, stores,
and publishes MqttAck on ``…/ack`` (stored seqs, duplicates included, and the
highest contiguous seq).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import sqlite3
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.sync.endpoints import INGEST_EVENTS_PATH
from models.wire import BatchAck, EventBatch, MqttAck, ShelfEvent, topic


class IngestStore:
    """Events stored once per (device_id, seq), with arrival order and delivery count."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.conn = sqlite3.connect(str(path), check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS events (device_id TEXT, seq INTEGER, arrival INTEGER,"
            " historical INTEGER, body TEXT, deliveries INTEGER DEFAULT 1,"
            " PRIMARY KEY (device_id, seq))"
        )
        self.conn.commit()
        self._arrival = self.conn.execute("SELECT count(*) FROM events").fetchone()[0]
        self._hc: dict[str, int] = defaultdict(int)
        self._above: dict[str, set[int]] = defaultdict(set)
        for device, seq in self.conn.execute("SELECT device_id, seq FROM events"):
            self._note(device, seq)

    def _note(self, device: str, seq: int) -> None:
        above = self._above[device]
        above.add(seq)
        while self._hc[device] + 1 in above:
            self._hc[device] += 1
            above.discard(self._hc[device])

    def store(self, events: list[ShelfEvent]) -> tuple[list[int], list[int]]:
        """Store events; returns (new seqs, duplicate seqs)."""
        new: list[int] = []
        dup: list[int] = []
        with self._lock:
            for e in events:
                cur = self.conn.execute(
                    "INSERT OR IGNORE INTO events (device_id, seq, arrival, historical, body)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (e.device_id, e.seq, self._arrival, int(e.historical), e.model_dump_json()),
                )
                if cur.rowcount:
                    self._arrival += 1
                    self._note(e.device_id, e.seq)
                    new.append(e.seq)
                else:
                    self.conn.execute(
                        "UPDATE events SET deliveries = deliveries + 1"
                        " WHERE device_id = ? AND seq = ?",
                        (e.device_id, e.seq),
                    )
                    dup.append(e.seq)
            self.conn.commit()
        return new, dup

    def highest_contiguous(self, device_id: str) -> int:
        """N such that seqs 1..N are all stored."""
        with self._lock:
            return self._hc[device_id]

    def seqs(self, device_id: str, *, by: str = "seq") -> list[int]:
        """Stored seqs of a device, by seq or by arrival."""
        order = "arrival" if by == "arrival" else "seq"
        with self._lock:
            return [
                r[0]
                for r in self.conn.execute(
                    f"SELECT seq FROM events WHERE device_id = ? ORDER BY {order}", (device_id,)
                )
            ]

    def rows(self, device_id: str) -> list[dict[str, Any]]:
        """Stored rows of a device in arrival order."""
        with self._lock:
            cur = self.conn.execute(
                "SELECT seq, arrival, historical, deliveries, body FROM events"
                " WHERE device_id = ? ORDER BY arrival",
                (device_id,),
            )
            return [
                {"seq": s, "arrival": a, "historical": bool(h), "deliveries": d, "body": b}
                for s, a, h, d, b in cur
            ]

    def count(self) -> int:
        """Events stored."""
        with self._lock:
            return int(self.conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        self.conn.close()


class IngestHttpServer:
    """The HTTP half of the cloud contract on a loopback port; restartable on that port."""

    def __init__(self, store: IngestStore, *, api_key: str = "test-key", port: int = 0) -> None:
        self.store = store
        self.api_key = api_key
        self.port = port
        self.desired: dict[str, Any] = {}
        self.requests = 0
        self.fail_next = 0  # answer this many POSTs with 503 (after storing nothing)
        self.bogus_acks: list[int] = []  # seqs to add to every ack (never sent by the unit)
        self.batch_sizes: list[int] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._socks: set[socket.socket] = set()

    @property
    def base_url(self) -> str:
        """Where the unit should send."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (again) on the port."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def setup(self) -> None:
                super().setup()
                outer._socks.add(self.connection)

            def finish(self) -> None:
                outer._socks.discard(self.connection)
                super().finish()

            def _reply(self, code: int, body: bytes = b"") -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorised(self) -> bool:
                return self.headers.get("Authorization") == f"Bearer {outer.api_key}"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if self.path != INGEST_EVENTS_PATH:
                    return self._reply(404, b'{"code":"not_found"}')
                if not self._authorised():
                    return self._reply(401, b'{"code":"unauthorised"}')
                outer.requests += 1
                if outer.fail_next > 0:
                    outer.fail_next -= 1
                    return self._reply(503, b'{"code":"unavailable"}')
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                try:
                    batch = EventBatch.model_validate_json(raw)
                except ValueError:
                    return self._reply(422, b'{"code":"invalid"}')
                new, dup = outer.store.store(batch.events)
                outer.batch_sizes.append(len(batch.events))
                ack = BatchAck(
                    device_id=batch.device_id,
                    stored=new + outer.bogus_acks,
                    duplicates=dup,
                    highest_contiguous=outer.store.highest_contiguous(batch.device_id),
                )
                return self._reply(200, ack.model_dump_json().encode())

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) == 4 and parts[:2] == ["v1", "devices"] and parts[3] == "desired":
                    if not self._authorised():
                        return self._reply(401, b'{"code":"unauthorised"}')
                    doc = outer.desired.get(parts[2])
                    if doc is None:
                        return self._reply(404, b'{"code":"not_found"}')
                    return self._reply(200, json.dumps(doc).encode())
                return self._reply(404, b'{"code":"not_found"}')

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                return None  # a client cut off mid-request (a killed unit) is expected

        server = Server(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (connections in progress are cut)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for sock in list(self._socks):  # cut kept-alive connections too: a real outage
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> IngestHttpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MqttIngest:
    """The MQTT half of the cloud: stores events from the broker and publishes MqttAck.

    Every ``ack_every_s`` it stores what arrived since (one transaction) and acks it,
    duplicates included.
    """

    def __init__(self, store: IngestStore, host: str, port: int, *, ack_every_s: float = 0.05):
        self.store = store
        self.ack_every_s = ack_every_s
        self._pending: dict[str, list[int]] = defaultdict(list)
        self._received: list[ShelfEvent] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.acks_sent = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="cloud-ingest", protocol=mqtt.MQTTv5
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.reconnect_delay_set(1, 2)
        self._connected = threading.Event()
        self.client.connect_async(host, port, keepalive=10)
        self.client.loop_start()
        self._acker = threading.Thread(target=self._ack_loop, daemon=True)
        self._acker.start()

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe("shelfsense/+/events", qos=1)

    def _on_subscribe(self, client: mqtt.Client, *_: Any) -> None:
        self._connected.set()

    def wait_connected(self, timeout: float = 10) -> bool:
        """Block until subscribed to the events of every unit."""
        return self._connected.wait(timeout)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        event = ShelfEvent.model_validate_json(msg.payload)
        with self._lock:
            self._received.append(event)

    def _ack_loop(self) -> None:
        while not self._stop.wait(self.ack_every_s):
            with self._lock:
                received, self._received = self._received, []
            if received:  # one transaction for what came in since the last pass
                self.store.store(received)
                with self._lock:
                    for e in received:
                        self._pending[e.device_id].append(e.seq)
            with self._lock:
                todo = dict(self._pending)
                self._pending.clear()
            for device, seqs in todo.items():
                ack = MqttAck(
                    device_id=device,
                    highest_contiguous=self.store.highest_contiguous(device),
                    stored=sorted(seqs),
                )
                info = self.client.publish(topic(device, "ack"), ack.model_dump_json(), qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    with self._lock:  # not connected: ack again later
                        self._pending[device].extend(seqs)
                else:
                    self.acks_sent += 1

    def close(self) -> None:
        """Stop acking and disconnect."""
        self._stop.set()
        self._acker.join(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()
