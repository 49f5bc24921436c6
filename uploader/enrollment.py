"""Enrollment and key rotation messages: pure, shared by the agent and the backend.

The flow (``docs/enrollment.md``):

* The backend issues a one-time **enrollment token** (:class:`EnrollmentToken`):
  a random secret, optionally followed by ``.`` and the thumbprint of the
  backend's public key, so the agent can tell the real backend's reply from any
  other. The backend stores only :func:`token_hash` of the secret.
* The agent sends an ``enroll`` envelope (a standalone signed envelope, sequence
  1, no ``prev_hash``) whose body (:class:`EnrollRequest`) carries the token
  secret and the agent's public JWK; the envelope's signature proves possession.
* Key rotation is a ``key_rotation`` envelope signed by the **old** key whose
  body (:class:`KeyRotationRequest`) carries the new public JWK and a proof signed
  by the **new** key (:func:`key_proof`), so both keys are held by the sender.
* The backend answers each on ``{prefix}/{site}/{agent_id}/replies`` with a
  :class:`ControlReply` signed by its own key (:func:`sign_reply`,
  :func:`open_reply`).

Nothing here does I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from typing import Annotated, Any, Literal, Self

from joserfc.jwk import OKPKey
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from uploader.envelope import public_keys, sign_json, validate_payload, verify_compact
from uploader.errors import EnvelopeRejected
from uploader.keys import AgentKey, PublicKey

__all__ = [
    "KEY_PROOF_TYPE",
    "REPLY_TYPE",
    "ControlReply",
    "EnrollRequest",
    "EnrollmentToken",
    "KeyRotationRequest",
    "Outcome",
    "PublicJwk",
    "jwk_key",
    "key_proof",
    "open_reply",
    "sign_reply",
    "token_hash",
    "verify_key_proof",
]

#: ``typ`` of the backend's signed replies and of the new key's proof of possession.
REPLY_TYPE = "fleet-agent-reply+jws"
KEY_PROOF_TYPE = "fleet-agent-key-proof+jws"
_B64URL = r"^[A-Za-z0-9_-]+$"
_KID = r"^[A-Za-z0-9_-]{43}$"
_SECRET_BYTES = 24  # 192 bits: 32 base64url characters

#: What the backend answered; every word but ``accepted`` is a refusal.
Outcome = Literal[
    "accepted",
    "unknown_token",  # no such token (mistyped, or issued by another backend)
    "token_reused",  # already used, by another agent or key
    "token_expired",
    "token_revoked",
    "site_mismatch",  # the token is for another site than the agent's configured one
    "key_in_use",  # the key is already bound to another agent id
    "key_not_active",  # rotation: the old key is revoked, retired or not this agent's
    "bad_proof",  # rotation: the new key's proof does not verify
]

_TOKEN = re.compile(r"^(?P<secret>[A-Za-z0-9_-]{32,128})(?:\.(?P<kid>[A-Za-z0-9_-]{43}))?$")


class EnrollmentToken(BaseModel):
    """``SECRET[.BACKEND_KEY_ID]`` as an admin pastes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    secret: str
    backend_key_id: str | None = None

    @classmethod
    def new(cls, backend_key_id: str | None) -> Self:
        while True:
            secret = secrets.token_urlsafe(_SECRET_BYTES)
            # One in 64 would start with '-': `enroll --token -x...` reads as an option.
            if not secret.startswith("-"):
                return cls(secret=secret, backend_key_id=backend_key_id)

    @classmethod
    def parse(cls, text: str) -> Self:
        """Raises ``ValueError`` saying what is wrong (the token itself is never echoed)."""
        match = _TOKEN.match(text.strip())
        if match is None:
            raise ValueError(
                "not an enrollment token (expected 32 or more base64url characters, "
                "optionally followed by '.' and the backend's 43-character key id)"
            )
        return cls(secret=match["secret"], backend_key_id=match["kid"])

    def __str__(self) -> str:
        return (
            self.secret if self.backend_key_id is None else f"{self.secret}.{self.backend_key_id}"
        )

    @property
    def hash(self) -> str:
        return token_hash(self.secret)


def token_hash(secret: str) -> str:
    """Hex SHA-256 of the token's secret: what the backend stores (never the secret)."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


class PublicJwk(BaseModel):
    """An Ed25519 public JWK as ``fleet-agent keys show --format jwk`` prints it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: Annotated[str, Field(pattern=_B64URL, min_length=43, max_length=43)]
    kid: Annotated[str, Field(pattern=_KID)] | None = None

    def as_dict(self) -> dict[str, str]:
        key = jwk_key(self)
        return {"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": key.thumbprint()}


def jwk_key(jwk: PublicJwk) -> PublicKey:
    """The joserfc key of ``jwk``; ``ValueError`` if ``x`` is not an Ed25519 key or
    ``kid`` is not its thumbprint."""
    try:
        key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": jwk.x})
        key.get_op_key("verify")
    except Exception as exc:  # joserfc/cryptography raise a variety of ValueErrors
        raise ValueError(f"x is not an Ed25519 public key ({type(exc).__name__})") from exc
    if jwk.kid is not None and jwk.kid != key.thumbprint():
        raise ValueError("kid is not the key's RFC 7638 thumbprint")
    return key


class EnrollRequest(BaseModel):
    """Body of an ``enroll`` envelope (signed by the key being enrolled)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{32,128}$")]
    public_jwk: PublicJwk
    agent_version: Annotated[str, Field(min_length=1, max_length=64)]
    site: Annotated[str, Field(min_length=1, max_length=128)]


class KeyRotationRequest(BaseModel):
    """Body of a ``key_rotation`` envelope (signed by the old key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    new_jwk: PublicJwk
    new_key_proof: Annotated[str, Field(min_length=1, max_length=4096)]
    agent_version: Annotated[str, Field(min_length=1, max_length=64)]


def _verified(token: str | bytes, key: PublicKey, token_type: str) -> bytes:
    """The payload of ``token`` if ``key`` signed it; another key's is ``unknown_key``."""
    payload, _kid = verify_compact(
        token, public_keys({key.thumbprint(): key}), token_type=token_type
    )
    return payload


def key_proof(new_key: AgentKey, *, agent_id: str, old_key_id: str) -> str:
    """The new key's signature over the rotation it asks for (proof of possession)."""
    return sign_json(
        new_key,
        {"agent_id": agent_id, "old_key_id": old_key_id, "new_key_id": new_key.key_id},
        token_type=KEY_PROOF_TYPE,
    )


def verify_key_proof(request: KeyRotationRequest, *, agent_id: str, old_key_id: str) -> bool:
    """Whether ``request.new_key_proof`` is the new key's signature over this rotation."""
    try:
        key = jwk_key(request.new_jwk)
        payload = json.loads(_verified(request.new_key_proof, key, KEY_PROOF_TYPE))
    except (ValueError, RecursionError, EnvelopeRejected):
        return False
    expected = {"agent_id": agent_id, "old_key_id": old_key_id, "new_key_id": key.thumbprint()}
    return bool(payload == expected)


class ControlReply(BaseModel):
    """The backend's signed answer to an ``enroll`` or ``key_rotation`` request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Annotated[str, Field(pattern=r"^1\.[0-9]+$")] = "1.0"
    kind: Literal["enroll_reply", "key_rotation_reply"]
    request_id: str  # the request envelope's message_id
    agent_id: str
    key_id: str  # the key enrolled, or the new key of a rotation
    outcome: Outcome
    site: str | None = None
    detail: str = ""
    backend_jwk: PublicJwk
    created_at: AwareDatetime

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"


def sign_reply(backend_key: AgentKey, reply: ControlReply) -> str:
    return sign_json(backend_key, reply.model_dump(mode="json"), token_type=REPLY_TYPE)


def open_reply(
    token: str | bytes, *, backend_key_id: str | None, pinned: PublicKey | None
) -> ControlReply:
    """Verify a reply: with the ``pinned`` backend key, else with the key it carries,
    which must then have the thumbprint ``backend_key_id`` (from the token) unless that is
    ``None`` (trust on first use).

    Raises :class:`EnvelopeRejected` for anything that is not such a reply.
    """
    key = pinned
    if key is None:
        carried = _carried_jwk(token)
        key = carried
        if backend_key_id is not None and carried.thumbprint() != backend_key_id:
            raise EnvelopeRejected(
                "unknown_key", "signed by another backend key than the token names"
            )
    reply = validate_payload(_verified(token, key, REPLY_TYPE), ControlReply)
    if jwk_key(reply.backend_jwk).thumbprint() != key.thumbprint():
        raise EnvelopeRejected("bad_schema", "reply names another backend key than its signer")
    return reply


def _carried_jwk(token: str | bytes) -> PublicKey:
    """The backend JWK inside an (unverified) reply: checked against its signature next."""
    text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
    parts = text.split(".")
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        data: Any = json.loads(raw)
        return jwk_key(PublicJwk.model_validate(data["backend_jwk"]))
    except (IndexError, ValueError, KeyError, TypeError) as exc:
        raise EnvelopeRejected("malformed", "not a backend reply") from exc
