"""A busy unit to kill: appends events (and optionally syncs them over HTTP) forever.

``python -m tests.edge.crash_child DB SEED [BASE_URL]`` prints ``seq`` lines to stdout
after each commit returns, so the parent knows what was committed before ``kill -9``.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from pathlib import Path

from edge.buffer import Buffer
from edge.sync.config import SyncConfig
from edge.sync.http import HttpTransport
from edge.sync.identity import Identity
from edge.sync.worker import SyncWorker
from tests.edge.events_support import event_fields

DEVICE = "crash-unit"


def main() -> None:
    """Append events in small random batches forever, printing each committed seq."""
    db, seed = Path(sys.argv[1]), int(sys.argv[2])
    base_url = sys.argv[3] if len(sys.argv) > 3 else None
    rng = random.Random(seed)
    buf = Buffer(db, device_id=DEVICE)
    if base_url:
        cfg = SyncConfig(mode="http", base_url=base_url, batch_size=50, idle_s=0.01)
        ident = Identity(device_id=DEVICE, api_key="test-key")
        worker = SyncWorker(buf, [HttpTransport(base_url, ident)], config=cfg)
        threading.Thread(target=worker.run, args=(threading.Event(),), daemon=True).start()
    i = 0
    out = sys.stdout
    while True:
        n = rng.randint(1, 5)
        events = buf.append_many([event_fields(i + k) for k in range(n)])
        i += n
        out.write("".join(f"{e.seq}\n" for e in events))
        out.flush()
        time.sleep(rng.random() * 0.004)


if __name__ == "__main__":
    main()
