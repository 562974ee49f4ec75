"""Settings of the cloud service, from defaults, a TOML file, the environment and overrides.

Built by :func:`build_settings`, never at import time, so tests and the CLI pass
what they need without touching the process environment. Priority, highest
first: keyword overrides, ``SHELFSENSE_CLOUD_*`` environment variables, the TOML
file, defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "SHELFSENSE_CLOUD_"


class CloudSettings(BaseSettings):
    """Every knob of ``shelfsense cloud serve`` and the MQTT ingest worker."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    database_url: str = Field(
        "sqlite:///shelfsense-cloud.db",
        description="SQLAlchemy URL: a SQLite file (WAL) or postgresql+psycopg://…",
    )
    db_pool_size: int = Field(
        10, ge=1, le=200, description="Read connections per process (API reads, key lookups)."
    )
    db_write_pool_size: int = Field(
        5, ge=1, le=100, description="Write connections per process (ingest and other writes)."
    )
    ingest_concurrency: int | None = Field(
        None,
        ge=1,
        le=100,
        description="Ingest batches stored at once per process; unset: one per ingest process, "
        "or without them one less than the write connections (at least 1), so other writes "
        "always find one.",
    )
    ingest_queue: int = Field(
        16,
        ge=0,
        le=10_000,
        description="Ingest batches that may wait for a slot per process; past it, 503 with Retry-After.",
    )
    ingest_max_wait_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Longest a batch waits for a slot before 503 with Retry-After; keep it well "
        "under the unit's request timeout (15 s).",
    )
    read_queue: int = Field(
        1000,
        ge=0,
        le=100_000,
        description="API requests (reads, and writes outside ingest) that may wait per process "
        "for a database slot (one per pool connection); past it, 503 overloaded with "
        "Retry-After at once. The wait is on the event loop, not on a worker thread.",
    )
    read_max_wait_s: float = Field(
        10.0,
        gt=0,
        le=60,
        description="Longest an API request waits for a database slot before 503 with "
        "Retry-After; one whose expected wait (the queue ahead, at the measured time per "
        "request) is longer is refused on arrival.",
    )
    ingest_processes: int = Field(
        0,
        ge=0,
        le=32,
        description="Processes of their own that decode and store ingest batches, per API "
        "process; 0: threads of the API process. With them, reads never wait for the API "
        "process's interpreter lock while a batch is parsed.",
    )
    ingest_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="How much lower the CPU priority of ingest processes is (a nice increment): "
        "under a storm, ingest slows before reads do.",
    )
    cursor_secret: SecretStr | None = Field(
        None,
        description="HMAC key of feed cursors; when unset one is made once and kept in the database.",
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest ingest body as sent (gzip or not)."
    )
    max_decoded_bytes: int = Field(
        8_388_608, ge=1024, description="Largest ingest body after gzip decoding."
    )
    max_future_s: float = Field(
        300.0, ge=0, description="Events stamped further ahead than this are refused."
    )
    max_past_days: float = Field(
        90.0, gt=0, description="Events older than this many days are refused."
    )
    rate_per_s: float = Field(
        50.0, ge=0, description="Sustained requests per second per key; 0 turns limits off."
    )
    rate_burst: int = Field(200, ge=1, description="Requests a key may make at once.")
    key_cache_s: float = Field(
        0.5,
        ge=0,
        le=1.0,
        description="How long a process trusts a looked-up key: the revocation delay (at most 1 s).",
    )
    auth_fail_per_s: float = Field(
        1.0,
        ge=0,
        description="Failed authentications a source address may make per second, sustained; "
        "0 turns the limit off.",
    )
    auth_fail_burst: int = Field(
        30, ge=1, description="Failed authentications a source may make at once."
    )
    claim_per_s: float = Field(
        0.2,
        ge=0,
        description="Claim attempts a source address may make per second, sustained; "
        "0 turns the limit off.",
    )
    claim_burst: int = Field(10, ge=1, description="Claim attempts a source may make at once.")
    claim_fail_per_s: float = Field(
        0.05,
        ge=0,
        description="Claims with an unknown code allowed per second for codes starting with one "
        "character (32 such groups: at most 1.6 guesses a second across all sources); "
        "0 turns the limit off.",
    )
    claim_fail_burst: int = Field(
        20, ge=1, description="Unknown-code claims one group may make at once."
    )
    broker_ca_file: Path | None = Field(
        None, description="PEM file of the broker's CA, handed to units when they claim."
    )
    signing_public_key_file: Path | None = Field(
        None, description="PEM public key that model bundles are signed with, handed to units."
    )
    page_default: int = Field(100, ge=1, le=1000, description="Feed page size when not given.")
    sale_window_before_s: float = Field(
        7200.0, ge=0, description="A sale matches removals up to this long before it."
    )
    sale_window_after_s: float = Field(
        600.0, ge=0, description="A sale matches removals up to this long after it."
    )
    host: str = Field("127.0.0.1", description="Address `cloud serve` listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port `cloud serve` listens on.")
    mqtt_host: str | None = Field(None, description="Broker of the MQTT ingest worker.")
    mqtt_port: int = Field(1883, ge=1, le=65535)
    mqtt_username: str | None = Field(None, description="Broker user of the ingest worker.")
    mqtt_password: SecretStr | None = None
    mqtt_batch_max: int = Field(500, ge=1, le=5000, description="Events stored per transaction.")
    mqtt_batch_wait_s: float = Field(
        0.05, ge=0, le=5, description="How long the worker gathers messages before storing."
    )

    tuf_dir: Path = Field(
        Path("shelfsense-tuf"),
        description="The TUF repository: metadata, targets and the service's snapshot and "
        "timestamp keys (made by `fleet tuf init`).",
    )
    tuf_timestamp_expiry_s: float = Field(
        86400.0, ge=60, description="Lifetime of a signed timestamp: a frozen mirror shows by then."
    )
    tuf_snapshot_expiry_s: float = Field(
        7 * 86400.0, ge=60, description="Lifetime of a signed snapshot."
    )
    rollout_tick_s: float = Field(
        30.0, ge=0, description="How often the service advances rollouts; 0 turns the thread off."
    )

    @property
    def ingest_slots(self) -> int:
        """Ingest batches stored at once per process.

        ``ingest_concurrency`` if set; else one per ingest process (a batch admitted
        is being stored, not waiting unseen behind another); else one less than the
        write connections.
        """
        return (
            self.ingest_concurrency or self.ingest_processes or max(1, self.db_write_pool_size - 1)
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Overrides, then env, then the TOML file named in ``model_config`` (if any)."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if settings_cls.model_config.get("toml_file"):
            sources.append(TomlConfigSettingsSource(settings_cls))
        return tuple(sources)


def build_settings(config_file: Path | str | None = None, **overrides: Any) -> CloudSettings:
    """Settings from ``config_file`` (TOML), the environment and ``overrides``."""
    if config_file is None:
        return CloudSettings(**overrides)
    path = Path(config_file)
    if not path.is_file():
        raise FileNotFoundError(f"cloud settings file not found: {path}")

    class _FromFile(CloudSettings):
        model_config = SettingsConfigDict(toml_file=path)

    return _FromFile(**overrides)
