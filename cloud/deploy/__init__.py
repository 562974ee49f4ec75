"""The files a cloud server needs, shipped with the package: systemd units for the API
and the MQTT ingest workers, the service user (sysusers.d), an example ``cloud.toml`` and
the Grafana dashboard (``grafana/shelfsense.json``).

``python -m cloud.deploy`` prints the folder that holds them.
"""

from __future__ import annotations

from pathlib import Path

DIR = Path(__file__).resolve().parent
