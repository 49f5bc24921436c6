"""Signed envelopes: compact JWS (RFC 7515), EdDSA over Ed25519, with a hash chain.

Pure functions and small value objects, no I/O. The wire format is documented
in ``docs/schema/envelope.md`` and ``docs/schema/envelope.schema.json``.

* :class:`Signer` turns a body into a :class:`SignedMessage` whose ``token`` is
  the MQTT payload.
* :func:`envelope_hash` is what the next envelope's ``prev_hash`` holds.
* :class:`Verifier` checks a token against registered public keys and returns
  the decoded :class:`Envelope`, or raises :class:`EnvelopeRejected`.
* :func:`link_status` and :class:`ChainTracker` classify an envelope against
  the previous one of the same agent: next, duplicate, gap, broken, restart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar, cast

from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError, UnsupportedAlgorithmError
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import OKPKey
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_serializer,
    model_validator,
)

from uploader.errors import EnvelopeRejected
from uploader.keys import AgentKey, PublicKey

__all__ = [
    "ALGORITHM",
    "CONTROL_KINDS",
    "MAX_PAYLOAD_BYTES",
    "MESSAGE_KINDS",
    "SCHEMA_VERSION",
    "TOKEN_TYPE",
    "ChainPosition",
    "ChainStatus",
    "ChainTracker",
    "Envelope",
    "KeyLookup",
    "MessageKind",
    "SignedMessage",
    "Signer",
    "Verifier",
    "envelope_hash",
    "link_status",
    "new_message_id",
    "public_keys",
    "sign_compact",
    "validate_payload",
    "verify_compact",
    "verify_envelope",
]

SCHEMA_VERSION = "1.0"
#: "EdDSA" (RFC 8037) is what every stock JOSE library verifies today. RFC 9864
#: deprecates it in favour of the fully specified "Ed25519"; the verifier accepts both.
ALGORITHM = "EdDSA"
ACCEPTED_ALGORITHMS = ("EdDSA", "Ed25519")
#: The ``typ`` header (RFC 8725 section 3.11: explicit typing).
TOKEN_TYPE = "fleet-agent-envelope+jws"  # noqa: S105 - a media type, not a secret
#: joserfc's default payload bound; larger envelopes would be refused by consumers.
MAX_PAYLOAD_BYTES = 128_000
_MAX_TOKEN_CHARS = 4 * MAX_PAYLOAD_BYTES // 3 + 2_048
_MAX_HEADER_CHARS = 1_024


class _Registry(jws.JWSRegistry):
    """joserfc's registry limited to ``allowed``, without the per-call RFC 9864 warning.

    joserfc warns on every use of "EdDSA" (deprecated by RFC 9864). We choose it on
    purpose for interoperability; the warning would otherwise fire per message.
    """

    def get_alg(self, name: str) -> JWSAlgModel:
        if not self.allowed or name not in self.allowed or name not in self.algorithms:
            raise UnsupportedAlgorithmError(f"Algorithm of '{name}' is not allowed")
        return self.algorithms[name]


_SIGN_REGISTRY = _Registry(algorithms=[ALGORITHM])
_VERIFY_REGISTRY = _Registry(algorithms=list(ACCEPTED_ALGORITHMS))

MessageKind = Literal["read", "event", "status", "enroll", "key_rotation"]
MESSAGE_KINDS: tuple[MessageKind, ...] = ("read", "event", "status", "enroll", "key_rotation")
#: Control requests (``docs/enrollment.md``): standalone envelopes, never part of the chain
#: (always sequence 1 with no ``prev_hash``); the backend answers each with a signed reply.
CONTROL_KINDS: tuple[MessageKind, ...] = ("enroll", "key_rotation")

_B64URL_SHA256 = r"^[A-Za-z0-9_-]{43}$"
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class SignedMessage(BaseModel):
    """One signed envelope as queued and published; ``token`` is the MQTT payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str
    sequence: int = Field(ge=1)
    kind: MessageKind
    created_at: AwareDatetime
    token: str


class Envelope(BaseModel):
    """The decoded, verified payload of a token (schema version 1.x)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    schema_version: Annotated[str, Field(pattern=r"^1\.[0-9]+$")]
    agent_id: Annotated[str, Field(min_length=1, max_length=128)]
    key_id: Annotated[str, Field(pattern=_B64URL_SHA256)]
    sequence: Annotated[int, Field(ge=1, le=2**53 - 1)]
    message_id: Annotated[str, Field(pattern=_UUID)]
    created_at: AwareDatetime
    kind: MessageKind
    prev_hash: Annotated[str, Field(pattern=_B64URL_SHA256)] | None
    body: dict[str, JsonValue]

    @model_validator(mode="after")
    def _first_has_no_predecessor(self) -> Envelope:
        if (self.sequence == 1) != (self.prev_hash is None):
            raise ValueError("prev_hash must be null exactly when sequence is 1")
        return self

    @field_serializer("created_at")
    def _serialize_created_at(self, value: datetime) -> str:
        return _utc_text(value)


def new_message_id(now: datetime | None = None) -> str:
    """A UUID version 7 (RFC 9562): 48-bit Unix milliseconds, then 74 random bits.

    Time-ordered ids keep the outbox's message-id index append-mostly (random
    version 4 ids rewrite most of the index on every batch) and let a backend
    sort by id; the random bits keep them unique across agents.
    """
    moment = now if now is not None else datetime.now(UTC)
    millis = int(moment.timestamp() * 1000) & ((1 << 48) - 1)
    random_bits = int.from_bytes(os.urandom(10), "big")  # 80 bits, 74 used
    value = (millis << 80) | (0x7 << 76) | ((random_bits >> 62) & 0xFFF) << 64
    value |= (0b10 << 62) | (random_bits & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def envelope_hash(token: str | bytes) -> str:
    """base64url (no padding) SHA-256 of the token's ASCII bytes: the next ``prev_hash``."""
    data = token.encode("ascii") if isinstance(token, str) else token
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")


class Signer:
    """Signs bodies as this agent. Pure: sequence and chain state come from the caller."""

    def __init__(self, key: AgentKey, agent_id: str) -> None:
        if not agent_id or len(agent_id) > 128:
            raise ValueError("agent_id must be 1 to 128 characters")
        self._key = key
        self._agent_id = agent_id

    @property
    def agent_id(self) -> str:
        return self._agent_id

    @property
    def key_id(self) -> str:
        return self._key.key_id

    def sign(
        self,
        *,
        kind: MessageKind,
        body: Mapping[str, JsonValue],
        sequence: int,
        prev_hash: str | None,
        message_id: str | None = None,
        now: datetime | None = None,
    ) -> SignedMessage:
        """Sign one envelope. ``prev_hash`` is ``None`` only for sequence 1.

        Raises ``ValueError`` for a programming error: a body that is not JSON
        (NaN, non-string keys, objects), an inconsistent chain, or a payload
        above :data:`MAX_PAYLOAD_BYTES`.
        """
        if kind not in MESSAGE_KINDS:
            raise ValueError(f"kind must be one of {MESSAGE_KINDS}, not {kind!r}")
        if sequence < 1 or (sequence == 1) != (prev_hash is None):
            raise ValueError(f"sequence {sequence} with prev_hash {prev_hash!r} breaks the chain")
        moment = now if now is not None else datetime.now(UTC)
        if moment.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        message_id = message_id if message_id is not None else new_message_id(moment)
        payload_obj = {
            "schema_version": SCHEMA_VERSION,
            "agent_id": self._agent_id,
            "key_id": self._key.key_id,
            "sequence": sequence,
            "message_id": message_id,
            "created_at": _utc_text(moment),
            "kind": kind,
            "prev_hash": prev_hash,
            "body": body,
        }
        try:
            payload = canonical_json(payload_obj)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{kind} body is not JSON-serialisable: {exc}") from exc
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ValueError(
                f"{kind} envelope is {len(payload)} bytes, above the {MAX_PAYLOAD_BYTES} bound"
            )
        token = sign_compact(self._key, payload, token_type=TOKEN_TYPE)
        return SignedMessage(
            message_id=message_id,
            sequence=sequence,
            kind=kind,
            created_at=moment.astimezone(UTC),
            token=token,
        )


def sign_compact(key: AgentKey, payload: bytes, *, token_type: str) -> str:
    """``payload`` as a compact JWS (EdDSA) of type ``token_type``, ``kid`` the key id."""
    header = {"alg": ALGORITHM, "kid": key.key_id, "typ": token_type}
    return jws.serialize_compact(header, payload, key.jose_key, registry=_SIGN_REGISTRY)


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The bytes every signed payload carries: sorted keys, no whitespace, UTF-8, no NaN.

    Raises ``TypeError`` or ``ValueError`` for what JSON cannot hold.
    """
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def sign_json(key: AgentKey, value: Mapping[str, Any], *, token_type: str) -> str:
    """``value`` as canonical JSON in a compact JWS of type ``token_type``.

    The one signer of everything but envelopes: the backend's documents (its replies
    to enrollment and rotation, configuration documents) and a new key's proof.
    """
    return sign_compact(key, canonical_json(value), token_type=token_type)


def _b64url_json(segment: str, what: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise EnvelopeRejected("malformed", f"{what} is not base64url JSON") from exc
    if not isinstance(value, dict):
        raise EnvelopeRejected("malformed", f"{what} is not a JSON object")
    return cast(dict[str, Any], value)


class Verifier:
    """Verifies tokens against registered public keys (key id -> key)."""

    def __init__(self, keys: Mapping[str, PublicKey]) -> None:
        self._keys = public_keys(keys)

    def verify(self, token: str | bytes) -> Envelope:
        """The verified envelope, or :class:`EnvelopeRejected` with a stable ``reason``."""
        return verify_envelope(token, self._keys)


class KeyLookup(Protocol):
    """Where a verifier finds the public key of a ``kid``: a mapping made by
    :func:`public_keys`, or a lookup in the backend's store of enrolled keys."""

    def get(self, kid: str, /) -> OKPKey | None: ...


def verify_envelope(token: str | bytes, keys: KeyLookup) -> Envelope:
    """The verified envelope signed by one of ``keys``, or :class:`EnvelopeRejected`.

    :class:`Verifier` passes a fixed mapping; the reference backend looks keys up in
    its store (and checks, afterwards, what the key is allowed to sign for).
    """
    payload, kid = verify_compact(token, keys, token_type=TOKEN_TYPE)
    envelope = validate_payload(payload, Envelope)
    if envelope.key_id != kid:
        raise EnvelopeRejected("bad_schema", "key_id in the payload differs from kid")
    return envelope


def public_keys(keys: Mapping[str, PublicKey]) -> dict[str, OKPKey]:
    """``keys`` re-imported with only their public members (key id -> key).

    A JWK's own "alg"/"use" would make joserfc refuse the key for the RFC 9864
    "Ed25519" algorithm name.
    """
    out: dict[str, OKPKey] = {}
    for kid, key in keys.items():
        public = key.as_dict(private=False)
        if public.get("crv") != "Ed25519":
            raise ValueError(f"key {kid!r} is not an Ed25519 key")
        out[kid] = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": public["x"]})
    return out


def verify_compact(token: str | bytes, keys: KeyLookup, *, token_type: str) -> tuple[bytes, str]:
    """The signed payload and the key id of a compact JWS of type ``token_type``.

    The one place that checks a received JWS (envelopes, the backend's configuration
    documents): size bounds, EdDSA/Ed25519 only, explicit ``typ``, a ``kid`` among
    ``keys`` (made by :func:`public_keys`). Raises :class:`EnvelopeRejected`.
    """
    if isinstance(token, bytes):
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise EnvelopeRejected("malformed", "token is not ASCII") from None
    if not token.isascii():
        raise EnvelopeRejected("malformed", "token is not ASCII")
    if len(token) > _MAX_TOKEN_CHARS:
        raise EnvelopeRejected("malformed", f"token is longer than {_MAX_TOKEN_CHARS} chars")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0]:
        raise EnvelopeRejected("malformed", "not a compact JWS (three dot-separated parts)")
    if len(parts[0]) > _MAX_HEADER_CHARS:
        raise EnvelopeRejected("malformed", f"protected header above {_MAX_HEADER_CHARS} chars")
    header = _b64url_json(parts[0], "protected header")
    alg = header.get("alg")
    if alg not in ACCEPTED_ALGORITHMS:
        raise EnvelopeRejected("wrong_algorithm", f"alg {alg!r} is not EdDSA/Ed25519")
    if not parts[1] or not parts[2]:
        raise EnvelopeRejected("malformed", "empty payload or signature")
    if header.get("typ") != token_type:
        raise EnvelopeRejected("wrong_type", f"typ {header.get('typ')!r} is not {token_type}")
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None or not isinstance(kid, str):
        raise EnvelopeRejected("unknown_key", f"kid {kid!r} is not registered")
    try:
        signature = jws.deserialize_compact(token, key, registry=_VERIFY_REGISTRY)
    except BadSignatureError:
        raise EnvelopeRejected("bad_signature", f"signature does not verify (kid {kid})") from None
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise EnvelopeRejected("malformed", f"JWS rejected: {type(exc).__name__}") from exc
    return signature.payload, kid


_Model = TypeVar("_Model", bound=BaseModel)


def validate_payload(payload: bytes, model: type[_Model]) -> _Model:
    """A verified ``payload`` as ``model``: a JSON object with a 1.x ``schema_version``.

    Raises :class:`EnvelopeRejected` (``bad_schema``, ``unsupported_version``).
    """
    try:
        decoded = json.loads(payload)
    except (ValueError, RecursionError):
        raise EnvelopeRejected("bad_schema", "signed payload is not UTF-8 JSON") from None
    if not isinstance(decoded, dict):
        raise EnvelopeRejected("bad_schema", "signed payload is not a JSON object")
    version = decoded.get("schema_version")
    if not isinstance(version, str) or not version.startswith("1."):
        raise EnvelopeRejected("unsupported_version", f"schema_version {version!r}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise EnvelopeRejected("bad_schema", f"{where}: {first['msg']}") from None


# -- chain checks (the consumer decides what to do with each status) -----------

ChainStatus = Literal["start", "next", "duplicate", "gap", "broken", "restart"]


class ChainPosition(BaseModel):
    """The last envelope seen from one agent: its sequence and :func:`envelope_hash`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence: int = Field(ge=1)
    hash: str
    created_at: AwareDatetime | None = None


def link_status(last: ChainPosition | None, envelope: Envelope) -> ChainStatus:
    """How ``envelope`` follows ``last`` (the agent's previous envelope, if known).

    * ``start``: sequence 1 and nothing seen before.
    * ``next``: sequence is last + 1 and ``prev_hash`` is last's hash.
    * ``broken``: sequence is last + 1 but ``prev_hash`` differs (tampering, or a
      forked chain such as an outbox restored from a backup).
    * ``gap``: sequence skips ahead; envelopes in between are missing so far.
    * ``duplicate``: sequence already seen (MQTT redelivery, or a replay).
    * ``restart``: sequence 1 again, created after ``last`` (the agent lost its
      outbox and started a new chain). Needs ``last.created_at``; without it a
      sequence 1 after later ones counts as a duplicate.
    """
    if last is None:
        return "start" if envelope.sequence == 1 else "gap"
    if envelope.sequence == last.sequence + 1:
        return "next" if envelope.prev_hash == last.hash else "broken"
    if envelope.sequence > last.sequence:
        return "gap"
    if (
        envelope.sequence == 1
        and last.sequence > 1
        and last.created_at is not None
        and envelope.created_at > last.created_at
    ):
        return "restart"
    return "duplicate"


class ChainTracker:
    """In-memory last position per agent; a consumer persists it as it likes."""

    def __init__(self, positions: Mapping[str, ChainPosition] | None = None) -> None:
        self._last: dict[str, ChainPosition] = dict(positions or {})

    def position(self, agent_id: str) -> ChainPosition | None:
        return self._last.get(agent_id)

    def observe(self, token: str | bytes, envelope: Envelope) -> ChainStatus:
        """Classify ``envelope`` (verified from ``token``) and advance unless it is a duplicate."""
        status = link_status(self._last.get(envelope.agent_id), envelope)
        if status != "duplicate":
            self._last[envelope.agent_id] = ChainPosition(
                sequence=envelope.sequence,
                hash=envelope_hash(token),
                created_at=envelope.created_at,
            )
        return status
