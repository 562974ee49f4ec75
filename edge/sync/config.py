"""The ``[sync]`` section of the unit config: how events reach the cloud.

Kept free of imports from :mod:`edge.config` so that module can import it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.wire import MAX_BATCH_EVENTS

SyncMode = Literal["http", "mqtt", "both", "off"]


class SyncConfig(BaseModel):
    """Transports, batching, backoff and where the unit's identity (credentials) lives."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    mode: SyncMode = Field(
        default="http", description="http | mqtt | both (MQTT while connected, else HTTP) | off"
    )
    base_url: str = Field(
        default="http://127.0.0.1:8000", min_length=1, description="Cloud HTTP base URL (no /v1)."
    )
    mqtt_host: str = Field(default="127.0.0.1", min_length=1, description="MQTT broker host.")
    mqtt_port: int = Field(
        default=1883, ge=1, le=65535, description="MQTT broker port (8883 for TLS)."
    )
    tls: bool = Field(default=False, description="Use TLS (CA file from the identity file).")
    identity_file: str = Field(
        default="identity.json",
        min_length=1,
        description="Device identity (JSON or TOML), relative to unit.data_dir.",
    )
    batch_size: int = Field(
        default=200,
        ge=1,
        le=MAX_BATCH_EVENTS,
        description="Most events per HTTP batch / MQTT burst.",
    )
    live_age_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="Events older than this when sent are 'historical'.",
    )
    idle_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="Wait this long for new events when the outbox is empty.",
    )
    backoff_initial_s: float = Field(default=1.0, gt=0, le=600, description="First retry delay.")
    backoff_max_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Longest retry delay (jittered); a probe or the broker link coming "
        "back ends it early.",
    )
    probe_s: float = Field(
        default=2.0,
        gt=0,
        le=600,
        description="While backing off from an unreachable cloud, probe it this often "
        "(GET /v1/health; MQTT: the link) and retry as soon as it answers.",
    )
    http_timeout_s: float = Field(default=15.0, gt=0, le=300, description="HTTP request timeout.")
    ack_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="MQTT: resend events the cloud has not acked by then.",
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive.")
    desired_poll_s: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="Poll desired state over HTTP this often (no broker).",
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> SyncConfig:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        return self
