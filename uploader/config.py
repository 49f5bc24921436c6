"""Value objects for the MQTT side: how to reach the broker and where to publish.

Validated once, frozen, handed to :mod:`uploader.mqtt` and :mod:`backend.ingest`.
Nothing here is broker-specific: host, port, TLS (on by default, server always
verified), optional client certificate (mTLS), optional username/password, and
the topic layout ``{topic_prefix}/{site}/{agent_id}/reads|events|status``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Kind = Literal["read", "event", "status"]

# One MQTT topic level per message kind (the last level of the topic).
TOPIC_LEVEL_BY_KIND: dict[str, str] = {"read": "reads", "event": "events", "status": "status"}
KIND_BY_TOPIC_LEVEL: dict[str, str] = {level: kind for kind, level in TOPIC_LEVEL_BY_KIND.items()}

# Retained presence payloads on the status topic (``online`` on connect, ``offline`` by will).
PRESENCE_ONLINE = b"online"
PRESENCE_OFFLINE = b"offline"


def check_topic_level(value: str, *, field: str) -> str:
    """One topic level: non-empty, no ``/`` and no MQTT wildcard or ``$`` prefix."""
    if not value:
        raise ValueError(f"{field} must not be empty")
    bad = {"/", "+", "#", "\x00"} & set(value)
    if bad:
        raise ValueError(f"{field} {value!r} must not contain {''.join(sorted(bad))!r}")
    if value.startswith("$"):
        raise ValueError(f"{field} {value!r} must not start with '$' (reserved by brokers)")
    return value


class MqttSettings(BaseModel):
    """Broker connection and topic layout of one agent (or of one ``ingest`` consumer)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535, description="default 8883 / 1883")
    tls: bool = True
    ca_file: Path | None = Field(default=None, description="None: the system trust store")
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    protocol: Literal["5", "3.1.1"] = "5"
    topic_prefix: str = "fleet"
    site: str = "default"
    client_id: str | None = None
    keepalive: int = Field(default=60, ge=5, le=65535)
    max_inflight: int = Field(default=100, ge=1, le=65535)
    backoff_min: float = Field(default=0.5, gt=0)
    backoff_max: float = Field(default=60.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    ack_timeout: float = Field(default=30.0, gt=0)

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        levels = value.split("/")
        for level in levels:
            check_topic_level(level, field="topic_prefix")
        return value

    @field_validator("site")
    @classmethod
    def _site(cls, value: str) -> str:
        return check_topic_level(value, field="site")

    @model_validator(mode="after")
    def _combinations(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (client certificate for mTLS)")
        if not self.tls and (self.cert_file or self.ca_file):
            raise ValueError("ca_file/cert_file/key_file need tls: true")
        if self.password is not None and self.username is None:
            raise ValueError("password needs a username")
        if self.backoff_min > self.backoff_max:
            raise ValueError("backoff_min must not exceed backoff_max")
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 8883 if self.tls else 1883

    @property
    def endpoint(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.effective_port}"

    def agent_topic(self, agent_id: str, kind: str) -> str:
        """``{prefix}/{site}/{agent_id}/{reads|events|status}``."""
        check_topic_level(agent_id, field="agent_id")
        return f"{self.topic_prefix}/{self.site}/{agent_id}/{TOPIC_LEVEL_BY_KIND[kind]}"

    def status_topic(self, agent_id: str) -> str:
        return self.agent_topic(agent_id, "status")
