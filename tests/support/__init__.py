"""Real parts for tests: a Mosquitto on a free loopback port, a PostgreSQL database."""
