"""Value objects for the MQTT side: how to reach the broker and where to publish.

Validated once, frozen, handed to :mod:`uploader.mqtt` and :mod:`backend.ingest`.
Nothing here is broker-specific: host, port, TLS (on by default, server always
verified), optional client certificate (mTLS), optional username/password, the
transport (plain MQTT over TCP, or MQTT over WebSockets, e.g. ``wss://host:443/mqtt``
for sites that only let HTTPS out), an optional HTTP CONNECT or SOCKS5 proxy
(:class:`ProxySettings`), and the topic layout
``{topic_prefix}/{site}/{agent_id}/reads|events|status|presence``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

Kind = Literal["read", "event", "status", "enroll", "key_rotation"]

# One MQTT topic level per message kind (the last level of the topic). ``enroll`` and
# ``keys`` carry the control requests of docs/enrollment.md (signed envelopes too).
TOPIC_LEVEL_BY_KIND: dict[str, str] = {
    "read": "reads",
    "event": "events",
    "status": "status",
    "enroll": "enroll",
    "key_rotation": "keys",
}
KIND_BY_TOPIC_LEVEL: dict[str, str] = {level: kind for kind, level in TOPIC_LEVEL_BY_KIND.items()}

# Presence has a topic of its own, ``{prefix}/{site}/{agent_id}/presence``: retained plain
# ``online`` (on connect) or ``offline`` (orderly shutdown, or the broker's last will). It is
# not signed: a will is fixed when the agent connects and the broker sends it later, so it
# cannot be a fresh envelope in the agent's chain. Every message on the other three topics is
# a signed envelope (docs/schema/envelope.md, "Topics").
#
# The backend answers control requests (enrollment, key rotation) on
# ``{prefix}/{site}/{agent_id}/replies``: compact JWS signed by the backend's key.
REPLIES_LEVEL = "replies"
PRESENCE_LEVEL = "presence"
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


ProxyType = Literal["http", "socks5"]
_DEFAULT_PROXY_PORT: dict[str, int] = {"http": 3128, "socks5": 1080}


class ProxySettings(BaseModel):
    """An outbound proxy on the way to the broker: HTTP CONNECT (RFC 9110) or SOCKS5 (RFC 1928).

    The broker's host name is resolved by the proxy, not locally: at a site that
    only lets the proxy out, the agent's only connection is the one to the proxy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ProxyType = "http"
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.password is not None and self.username is None:
            raise ValueError("proxy password needs a username")
        return self

    @property
    def endpoint(self) -> str:
        return f"{self.type}://{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, *, password: SecretStr | None = None) -> ProxySettings:
        """``http://[user@]host[:port]`` or ``socks5://...``; a password in the URL is refused.

        Raises ``ValueError`` naming what is wrong (the URL itself is never echoed
        when it holds a password).
        """
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PROXY_PORT:
            raise ValueError("proxy URL must start with http:// or socks5://")
        if parts.password is not None:
            raise ValueError("put the proxy password in a file, not in the URL")
        if not parts.hostname:
            raise ValueError("proxy URL has no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("proxy URL must be scheme://[user@]host[:port] only")
        try:
            port = parts.port or _DEFAULT_PROXY_PORT[parts.scheme]
        except ValueError as exc:
            raise ValueError(f"proxy URL port: {exc}") from None
        username = unquote(parts.username) if parts.username else None
        return cls(
            type=parts.scheme,  # checked above
            host=parts.hostname,
            port=port,
            username=username,
            password=password,
        )


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
    transport: Literal["tcp", "websockets"] = "tcp"
    websocket_path: str = Field(default="/mqtt", description="HTTP path of the WebSocket")
    proxy: ProxySettings | None = None
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

    @field_validator("websocket_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or any(ch in value for ch in " \r\n\t#"):
            raise ValueError(f"websocket_path {value!r} must be an absolute URL path")
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
        if self.transport == "websockets":
            return 443 if self.tls else 80
        return 8883 if self.tls else 1883

    @property
    def endpoint(self) -> str:
        """``mqtts://host:8883`` or ``wss://host:443/mqtt``; ``via http://proxy:3128`` if any."""
        if self.transport == "websockets":
            scheme = "wss" if self.tls else "ws"
            url = f"{scheme}://{self.host}:{self.effective_port}{self.websocket_path}"
        else:
            scheme = "mqtts" if self.tls else "mqtt"
            url = f"{scheme}://{self.host}:{self.effective_port}"
        return url if self.proxy is None else f"{url} via {self.proxy.endpoint}"

    def agent_topic(self, agent_id: str, kind: str) -> str:
        """``{prefix}/{site}/{agent_id}/{reads|events|status}``."""
        check_topic_level(agent_id, field="agent_id")
        return f"{self.topic_prefix}/{self.site}/{agent_id}/{TOPIC_LEVEL_BY_KIND[kind]}"

    def status_topic(self, agent_id: str) -> str:
        return self.agent_topic(agent_id, "status")

    def replies_topic(self, agent_id: str) -> str:
        """``{prefix}/{site}/{agent_id}/replies``: the backend's signed answers to requests."""
        check_topic_level(agent_id, field="agent_id")
        return f"{self.topic_prefix}/{self.site}/{agent_id}/{REPLIES_LEVEL}"

    def presence_topic(self, agent_id: str) -> str:
        """``{prefix}/{site}/{agent_id}/presence``: retained, unsigned ``online``/``offline``."""
        check_topic_level(agent_id, field="agent_id")
        return f"{self.topic_prefix}/{self.site}/{agent_id}/{PRESENCE_LEVEL}"
