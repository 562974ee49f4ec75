"""MQTT ingest under fuzzing at a large size: whatever one unit sends, another is still served.

For SQLite and PostgreSQL: a real Mosquitto and a real ingest worker; unit A publishes
``N`` hypothesis-generated messages (arbitrary JSON, bytes, near-valid events; full:
2,000 per database, ``--quick``: 150), each followed by a valid event of unit B that must
be stored and acked before the next. The baseline in the same run: the same number of
rounds where A's message is a valid event of its own. Prints per database the rounds,
A's messages refused and stored, worker errors, and milliseconds per round (fuzz and
baseline, and their ratio). Run: ``make bench BENCH=mqtt_fuzz [QUICK=1]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from cloud.store import Store, open_store
from tests.cloud.mqtt_fuzz import FuzzReport, live_fleet, run_fuzz
from tests.cloud.support import event
from tests.support.mosquitto import Broker, run_mosquitto
from tests.support.postgres import pg_schema


def baseline(broker: Broker, store: Store, rounds: int) -> float:
    """Seconds for ``rounds`` rounds of one valid A event then one B event, each acked."""
    with live_fleet(broker, store) as (_worker, a, b):
        started = time.monotonic()
        for i in range(1, rounds + 1):
            a.publish(json.dumps(event("unit-a", i, store="s1", bay="b1")))
            b.publish(event("unit-b", i, store="s1", bay="b2", slot=None, sku=None))
            assert b.wait(lambda i=i: b.highest() >= i)
        return time.monotonic() - started


def run(quick: bool, *, n: int | None = None) -> list[tuple[str, FuzzReport, float]]:
    """Fuzz and baseline on each database; returns the rows printed."""
    n = n or (150 if quick else 2000)
    rows = []
    for db in ("sqlite", "postgresql"):
        print(f"{db}: fuzzing {n} messages", flush=True)
        with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
            urls = []
            for i in range(2):
                if db == "sqlite":
                    urls.append(f"sqlite:///{Path(tmp) / f'c{i}.db'}")
                else:
                    urls.append(stack.enter_context(pg_schema()))
            broker = stack.enter_context(run_mosquitto(Path(tmp)))
            store = open_store(urls[0], pool_size=4)
            report = run_fuzz(broker, store, n, progress=True)
            store.dispose()
            store = open_store(urls[1], pool_size=4)
            base = baseline(broker, store, report.examples)
            store.dispose()
        rows.append((db, report, base))
    print()
    print(
        "| database | rounds | A refused | A stored | worker errors | ms/round fuzz | ms/round valid | ratio |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for db, r, base in rows:
        fz, bs = 1000 * r.seconds / r.examples, 1000 * base / r.examples
        print(
            f"| {db} | {r.examples} | {r.refused} | {r.stored_a} | {r.worker_errors} "
            f"| {fz:.1f} | {bs:.1f} | {fz / bs:.2f} |"
        )
    print(
        "\nEvery round: unit B's event stored and acked after A's message; nothing of A's "
        "outside its own bay."
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--quick", action="store_true", help="150 messages per database")
    run(p.parse_args(argv).quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
