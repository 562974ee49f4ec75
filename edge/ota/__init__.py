"""The unit's OTA client: pure decisions (:mod:`.state`), A/B slots on disk (:mod:`.slots`),
fetching with python-tuf (:mod:`.fetch`), and the worker that runs them (:mod:`.worker`)."""
