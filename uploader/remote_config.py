"""Configuration documents from the backend: signed, verified, and the agent's report on them.

Pure functions and value objects, no I/O. A document is a compact JWS (RFC 7515,
EdDSA over Ed25519, ``typ`` :data:`CONFIG_TOKEN_TYPE`) signed with the backend's
key, whose public JWK the agent pinned at enrollment. Its payload
(:class:`ConfigDocument`)::

    {"schema_version": "1.0", "version": 7, "site": "lab", "agent_id": null,
     "issued_at": "2026-11-30T00:00:00.000000Z",
     "settings": {"discovery": {"targets": ["10.20.0.0/24"]}, "schedule": {"meters": "1h"}}}

It is published retained on :func:`config_topic` (one per site, one per agent), so
an agent that connects later still gets it. What ``settings`` may hold and how it
merges with the local file is the agent's business (``agent.remote_config``); the
wire format is documented in ``docs/remote-config.md``.

The agent reports what it did with a document as a signed ``status`` envelope
whose body is a :class:`ConfigStatus` (``docs/schema/config-status.schema.json``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, field_serializer

from uploader.config import check_topic_level
from uploader.envelope import (
    MessageKind,
    public_keys,
    sign_json,
    validate_payload,
    verify_compact,
)
from uploader.errors import DocumentRejected, EnvelopeRejected
from uploader.keys import AgentKey, PublicKey

__all__ = [
    "CONFIG_SCHEMA_VERSION",
    "CONFIG_TOKEN_TYPE",
    "CONFIG_TOPIC_LEVEL",
    "ConfigDocument",
    "ConfigOutcome",
    "ConfigStatus",
    "config_topic",
    "sign_document",
    "verify_document",
]

CONFIG_SCHEMA_VERSION = "1.0"
#: The ``typ`` header: a configuration document is never mistaken for an envelope.
CONFIG_TOKEN_TYPE = "fleet-agent-config+jws"  # noqa: S105 - a media type, not a secret
CONFIG_TOPIC_LEVEL = "config"
_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


def config_topic(topic_prefix: str, site: str, agent_id: str | None = None) -> str:
    """``{prefix}/{site}/config`` (the whole site) or ``{prefix}/{site}/{agent}/config``."""
    check_topic_level(site, field="site")
    if agent_id is None:
        return f"{topic_prefix}/{site}/{CONFIG_TOPIC_LEVEL}"
    check_topic_level(agent_id, field="agent_id")
    return f"{topic_prefix}/{site}/{agent_id}/{CONFIG_TOPIC_LEVEL}"


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class ConfigDocument(BaseModel):
    """The signed payload of a configuration document (schema version 1.x)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Annotated[str, Field(pattern=r"^1\.[0-9]+$")] = CONFIG_SCHEMA_VERSION
    version: Annotated[int, Field(ge=1, le=2**53 - 1, strict=True)]
    site: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^/#+\s]+$")]
    agent_id: Annotated[str, Field(min_length=1, max_length=128, pattern=_ID)] | None = None
    issued_at: AwareDatetime
    settings: dict[str, JsonValue]

    @field_serializer("issued_at")
    def _serialize_issued_at(self, value: datetime) -> str:
        return _utc_text(value)

    @property
    def scope(self) -> str:
        """``site lab`` or ``agent a1 at site lab``, for messages."""
        if self.agent_id is None:
            return f"site {self.site}"
        return f"agent {self.agent_id} at site {self.site}"

    @property
    def label(self) -> str:
        """``remote config v7 (site lab)``: how errors name a value that came from it."""
        return f"remote config v{self.version} ({self.scope})"

    def addressed_to(self, *, site: str, agent_id: str) -> bool:
        return self.site == site and self.agent_id in (None, agent_id)


def sign_document(key: AgentKey, document: ConfigDocument) -> str:
    """The document as a compact JWS signed with the backend's ``key``."""
    return sign_json(key, document.model_dump(mode="json"), token_type=CONFIG_TOKEN_TYPE)


def verify_document(token: str | bytes, key: PublicKey) -> ConfigDocument:
    """The verified document, or :class:`DocumentRejected` with a stable ``reason``.

    ``key`` is the backend's pinned public key: a document signed by any other key
    is ``unknown_key`` (another kid) or ``bad_signature`` (same kid, wrong signature).
    """
    keys = public_keys({key.thumbprint(): key})
    try:
        payload, _kid = verify_compact(token, keys, token_type=CONFIG_TOKEN_TYPE)
        return validate_payload(payload, ConfigDocument)
    except EnvelopeRejected as exc:
        raise DocumentRejected(exc.reason, exc.detail) from None


ConfigOutcome = Literal["applied", "refused", "rolled_back"]
#: Why a document was not applied (``reason`` of a refused or rolled-back report).
ConfigRefusal = Literal[
    "no_pinned_key",  # the agent has no backend key pinned: remote configuration is off
    "rejected",  # the signature or the JWS did not verify (detail: the verifier's reason)
    "wrong_scope",  # addressed to another site or agent
    "replay",  # a version not newer than the applied one
    "invalid",  # validation failed, exactly as ``config check`` would (detail names the field)
    "cannot_start",  # valid, but applying it failed; the previous configuration runs again
]


class ConfigStatus(BaseModel):
    """Body of the signed ``status`` envelope an agent sends about a configuration document."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ClassVar[MessageKind] = "status"

    report: Literal["config_status"] = "config_status"
    outcome: ConfigOutcome
    version: int | None = Field(description="The document's version (null when unreadable).")
    applied_version: int | None = Field(
        description="The remote version running now (null: the local configuration alone)."
    )
    reason: ConfigRefusal | None = None
    detail: str | None = Field(default=None, max_length=4000)

    def to_body(self) -> dict[str, JsonValue]:
        body: dict[str, JsonValue] = self.model_dump(mode="json")
        return body
