"""The agent on the Pi: sensing, signals, windows, local decisions, buffer, sync, OTA."""
