"""Getting a unit into service: enrollment, identity, calibration wizard, systemd install."""
