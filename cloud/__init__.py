"""The cloud service: ingest from units, the store, the backend API, labels, training, fleet."""
