"""The cloud service: ingest from units, the store, the backend API, labels, training, fleet.

Map: :mod:`cloud.checks` and :mod:`cloud.ingest` take events in (HTTP through
:mod:`cloud.api`, MQTT through :mod:`cloud.mqtt_ingest`) and store them once in
:mod:`cloud.store` (SQLite or PostgreSQL, Alembic migrations); :mod:`cloud.reads`
serves stock, interest and the feed; :mod:`cloud.labels` turns sales and
corrections into training labels and the JSONL export; :mod:`cloud.keys`,
:mod:`cloud.ratelimit` and :mod:`cloud.broker_files` control access;
:mod:`cloud.fleet` registers stores, bays, slots and units; :mod:`cloud.cli` wires
``shelfsense cloud …`` and ``shelfsense fleet …`` from one module per command group,
all sharing :mod:`cloud.cli_common`.
"""
