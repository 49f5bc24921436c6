"""Signed envelopes: stock verification, tampering, wrong keys/algorithms, the hash chain."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import uuid
import warnings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import OKPKey

from uploader.envelope import (
    MESSAGE_KINDS,
    SCHEMA_VERSION,
    TOKEN_TYPE,
    ChainPosition,
    ChainTracker,
    Envelope,
    Signer,
    Verifier,
    envelope_hash,
    link_status,
    new_message_id,
)
from uploader.errors import REJECT_REASONS, EnvelopeRejected
from uploader.keys import AgentKey

# Forged tokens in these tests use "EdDSA" through joserfc's default registry, which warns.
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

KEY = AgentKey.generate()
OTHER_KEY = AgentKey.generate()
SIGNER = Signer(KEY, "agent-7")
VERIFIER = Verifier({KEY.key_id: OKPKey.import_key(KEY.public_jwk())})
NOW = datetime(2026, 11, 22, 10, 0, 0, 123456, tzinfo=UTC)
READ_BODY: dict[str, Any] = {
    "device": {"serial": "CNB1234567", "model": "HP LaserJet M507"},
    "counters": {"lifetime_page_count": 123456},
    "note": "Grüße ✓",
}


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign_raw(header: dict[str, Any], payload: bytes, key: AgentKey = KEY) -> str:
    """A token signed with the agent key but with arbitrary header and payload."""
    return jws.serialize_compact(header, payload, key.jose_key, algorithms=["EdDSA"])


def _payload(**changes: Any) -> bytes:
    token = SIGNER.sign(kind="read", body=READ_BODY, sequence=1, prev_hash=None, now=NOW).token
    data = json.loads(_b64d(token.split(".")[1]))
    data.update(changes)
    return json.dumps(data).encode()


HEADER = {"alg": "EdDSA", "kid": KEY.key_id, "typ": TOKEN_TYPE}


def test_sign_then_verify_round_trips_every_field() -> None:
    message = SIGNER.sign(
        kind="read", body=READ_BODY, sequence=1, prev_hash=None, now=NOW, message_id=None
    )
    assert message.token.isascii()
    envelope = VERIFIER.verify(message.token)
    assert envelope.agent_id == "agent-7"
    assert envelope.key_id == KEY.key_id
    assert envelope.sequence == message.sequence == 1
    assert envelope.message_id == message.message_id
    assert envelope.created_at == message.created_at == NOW
    assert envelope.schema_version == SCHEMA_VERSION
    assert envelope.prev_hash is None
    assert envelope.kind == "read"
    assert envelope.body == READ_BODY
    assert VERIFIER.verify(message.token.encode("ascii")) == envelope


def test_created_at_is_normalised_to_utc() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=2)))
    message = SIGNER.sign(kind="event", body={}, sequence=1, prev_hash=None, now=local)
    payload = json.loads(_b64d(message.token.split(".")[1]))
    assert payload["created_at"] == "2026-11-22T10:00:00.123456Z"
    assert message.created_at.utcoffset() == timedelta(0)


def test_message_ids_are_unique() -> None:
    ids = {
        SIGNER.sign(kind="status", body={}, sequence=1, prev_hash=None).message_id
        for _ in range(200)
    }
    assert len(ids) == 200


def test_message_ids_are_uuid7_ordered_by_time() -> None:
    earlier = new_message_id(NOW)
    later = new_message_id(NOW + timedelta(milliseconds=2))
    assert uuid.UUID(earlier).version == uuid.UUID(later).version == 7
    assert uuid.UUID(earlier).variant == uuid.RFC_4122
    assert earlier < later
    assert int(earlier.replace("-", "")[:12], 16) == int(NOW.timestamp() * 1000)
    assert len({new_message_id(NOW) for _ in range(1_000)}) == 1_000


def test_a_stock_ed25519_implementation_verifies_the_token() -> None:
    """No joserfc: RFC 7515 signing input and the raw Ed25519 key from the JWK."""
    token = SIGNER.sign(kind="read", body=READ_BODY, sequence=1, prev_hash=None).token
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(_b64d(header_b64))
    assert header == {"alg": "EdDSA", "kid": KEY.key_id, "typ": TOKEN_TYPE}
    public = Ed25519PublicKey.from_public_bytes(_b64d(KEY.public_jwk()["x"]))
    public.verify(_b64d(signature_b64), f"{header_b64}.{payload_b64}".encode())  # raises if bad
    assert json.loads(_b64d(payload_b64))["body"] == READ_BODY


def test_envelope_hash_is_base64url_sha256_of_the_token() -> None:
    token = SIGNER.sign(kind="read", body={}, sequence=1, prev_hash=None).token
    expected = _b64e(hashlib.sha256(token.encode()).digest())
    assert envelope_hash(token) == expected == envelope_hash(token.encode())
    assert len(expected) == 43


def test_one_changed_payload_byte_is_rejected() -> None:
    token = SIGNER.sign(kind="read", body=READ_BODY, sequence=1, prev_hash=None).token
    header_b64, payload_b64, signature_b64 = token.split(".")
    payload = _b64d(payload_b64)
    for index in range(len(payload)):
        tampered = bytearray(payload)
        tampered[index] ^= 0x01
        forged = f"{header_b64}.{_b64e(bytes(tampered))}.{signature_b64}"
        with pytest.raises(EnvelopeRejected) as info:
            VERIFIER.verify(forged)
        assert info.value.reason == "bad_signature", index


def test_one_changed_signature_byte_is_rejected() -> None:
    token = SIGNER.sign(kind="read", body=READ_BODY, sequence=1, prev_hash=None).token
    header_b64, payload_b64, signature_b64 = token.split(".")
    signature = _b64d(signature_b64)
    for index in range(len(signature)):
        tampered = bytearray(signature)
        tampered[index] ^= 0x80
        with pytest.raises(EnvelopeRejected, match="bad_signature"):
            VERIFIER.verify(f"{header_b64}.{payload_b64}.{_b64e(bytes(tampered))}")


def test_every_single_character_change_is_rejected_or_harmless() -> None:
    """Flipping a base64url character either fails or decodes to the same signed bytes."""
    token = SIGNER.sign(kind="event", body={"found": "10.0.0.5"}, sequence=1, prev_hash=None).token
    original = VERIFIER.verify(token)
    for index, char in enumerate(token):
        if char == ".":
            continue
        replacement = "B" if char != "B" else "C"
        forged = token[:index] + replacement + token[index + 1 :]
        try:
            envelope = VERIFIER.verify(forged)
        except EnvelopeRejected:
            continue
        assert envelope == original, index  # only non-canonical base64url padding bits


def test_unknown_key_is_rejected() -> None:
    token = Signer(OTHER_KEY, "agent-7").sign(kind="read", body={}, sequence=1, prev_hash=None)
    with pytest.raises(EnvelopeRejected) as info:
        VERIFIER.verify(token.token)
    assert info.value.reason == "unknown_key"


def test_signature_by_another_key_under_a_known_kid_is_rejected() -> None:
    forged = _sign_raw(HEADER, _payload(), key=OTHER_KEY)
    with pytest.raises(EnvelopeRejected, match="bad_signature"):
        VERIFIER.verify(forged)


def test_alg_none_is_rejected() -> None:
    header = _b64e(json.dumps({"alg": "none", "kid": KEY.key_id, "typ": TOKEN_TYPE}).encode())
    with pytest.raises(EnvelopeRejected) as info:
        VERIFIER.verify(f"{header}.{_b64e(_payload())}.")
    assert info.value.reason == "wrong_algorithm"


def test_hmac_with_the_public_key_as_secret_is_rejected() -> None:
    """The classic algorithm-confusion forgery."""
    header = _b64e(json.dumps({"alg": "HS256", "kid": KEY.key_id, "typ": TOKEN_TYPE}).encode())
    payload = _b64e(_payload())
    secret = json.dumps(KEY.public_jwk()).encode()
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    with pytest.raises(EnvelopeRejected) as info:
        VERIFIER.verify(f"{header}.{payload}.{_b64e(mac)}")
    assert info.value.reason == "wrong_algorithm"


def test_the_rfc9864_ed25519_algorithm_name_is_accepted() -> None:
    header = {"alg": "Ed25519", "kid": KEY.key_id, "typ": TOKEN_TYPE}
    token = jws.serialize_compact(header, _payload(), KEY.jose_key, algorithms=["Ed25519"])
    assert VERIFIER.verify(token).body == READ_BODY


def test_the_agent_signs_and_the_backend_verifies_without_a_deprecation_warning() -> None:
    """joserfc warns on every use of "EdDSA" through its default registry; ours does not."""
    with warnings.catch_warnings():
        # Over the module's ignore; only joserfc's category, so that an unrelated warning
        # (a ResourceWarning from another test's garbage) cannot fail this test.
        warnings.simplefilter("error", SecurityWarning)
        message = SIGNER.sign(kind="read", body=READ_BODY, sequence=1, prev_hash=None, now=NOW)
        assert VERIFIER.verify(message.token).body == READ_BODY
    with pytest.warns(SecurityWarning, match="EdDSA is deprecated"):  # what would fail above
        jws.serialize_compact(HEADER, _payload(), KEY.jose_key, algorithms=["EdDSA"])


def test_wrong_type_is_rejected() -> None:
    with pytest.raises(EnvelopeRejected) as info:
        VERIFIER.verify(_sign_raw({"alg": "EdDSA", "kid": KEY.key_id, "typ": "JWT"}, _payload()))
    assert info.value.reason == "wrong_type"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        _payload(sequence="1"),
        _payload(sequence=0),
        _payload(sequence=2),  # sequence 2 needs a prev_hash
        _payload(prev_hash="A" * 43),  # sequence 1 must not have one
        _payload(kind="invoice"),
        _payload(created_at="2026-11-22T10:00:00"),  # no timezone
        _payload(message_id="not-a-uuid"),
        _payload(extra_field=1),
        _payload(body=[1]),
        _payload(key_id=OTHER_KEY.key_id),  # disagrees with the kid that verified it
    ],
)
def test_signed_but_invalid_payload_is_bad_schema(payload: bytes) -> None:
    with pytest.raises(EnvelopeRejected) as info:
        VERIFIER.verify(_sign_raw(HEADER, payload))
    assert info.value.reason == "bad_schema"


def test_unsupported_major_version_is_rejected() -> None:
    with pytest.raises(EnvelopeRejected) as info:
        VERIFIER.verify(_sign_raw(HEADER, _payload(schema_version="2.0")))
    assert info.value.reason == "unsupported_version"


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", "!!!.b.c", "e30.e30.e30", "W10.e30.e30", "é.b.c", "x" * 200_000],
)
def test_malformed_tokens_are_rejected_cleanly(token: str) -> None:
    with pytest.raises(EnvelopeRejected) as info:
        VERIFIER.verify(token)
    assert info.value.reason in ("malformed", "wrong_algorithm")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash_verify(data: bytes) -> None:
    with pytest.raises(EnvelopeRejected) as info:
        VERIFIER.verify(data)
    assert info.value.reason in REJECT_REASONS


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jwk"]), _json_values, max_size=4
    ),
    payload=st.binary(max_size=256),
    signature=st.binary(max_size=96),
)
def test_structured_garbage_never_crashes_verify(
    header: dict[str, Any], payload: bytes, signature: bytes
) -> None:
    token = ".".join((_b64e(json.dumps(header).encode()), _b64e(payload), _b64e(signature)))
    with pytest.raises(EnvelopeRejected) as info:
        VERIFIER.verify(token)
    assert info.value.reason in REJECT_REASONS


@settings(max_examples=100, deadline=None)
@given(body=st.dictionaries(st.text(max_size=10), _json_values, max_size=5))
def test_any_json_body_round_trips(body: dict[str, Any]) -> None:
    message = SIGNER.sign(kind="event", body=body, sequence=1, prev_hash=None)
    assert VERIFIER.verify(message.token).body == body


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"body": {"x": float("nan")}}, "not JSON"),
        ({"body": {"x": object()}}, "not JSON"),
        ({"sequence": 2, "prev_hash": None}, "breaks the chain"),
        ({"sequence": 1, "prev_hash": "A" * 43}, "breaks the chain"),
        ({"sequence": 0}, "breaks the chain"),
        ({"now": datetime(2026, 1, 1)}, "timezone"),  # naive on purpose
        ({"body": {"x": "y" * 130_000}}, "bound"),
        ({"kind": "invoice"}, "kind"),
    ],
)
def test_signer_refuses_programming_errors(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"kind": "read", "body": {}, "sequence": 1, "prev_hash": None}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        SIGNER.sign(**arguments)


# -- the chain -------------------------------------------------------------


def _chain(count: int, signer: Signer = SIGNER) -> list[str]:
    tokens: list[str] = []
    prev: str | None = None
    for sequence in range(1, count + 1):
        token = signer.sign(kind="read", body={"n": sequence}, sequence=sequence, prev_hash=prev)
        tokens.append(token.token)
        prev = envelope_hash(token.token)
    return tokens


def _observe_all(tokens: list[str]) -> list[str]:
    tracker = ChainTracker()
    return [tracker.observe(token, VERIFIER.verify(token)) for token in tokens]


def test_an_intact_chain_links() -> None:
    assert _observe_all(_chain(5)) == ["start", "next", "next", "next", "next"]


def test_a_missing_envelope_is_a_gap() -> None:
    tokens = _chain(5)
    assert _observe_all(tokens[:2] + tokens[3:]) == ["start", "next", "gap", "next"]


def test_redelivery_is_a_duplicate_and_does_not_advance() -> None:
    tokens = _chain(3)
    assert _observe_all([tokens[0], tokens[1], tokens[1], tokens[0], tokens[2]]) == [
        "start",
        "next",
        "duplicate",
        "duplicate",
        "next",
    ]


def test_a_replaced_envelope_breaks_the_chain() -> None:
    """An envelope re-signed in place (a fork) is detected by the following one."""
    tokens = _chain(3)
    forged_second = SIGNER.sign(
        kind="read", body={"n": 999}, sequence=2, prev_hash=envelope_hash(tokens[0])
    ).token
    assert _observe_all([tokens[0], forged_second, tokens[2]]) == ["start", "next", "broken"]


def test_a_lost_outbox_shows_as_restart() -> None:
    tokens = _chain(3)
    assert _observe_all(tokens + _chain(1)) == ["start", "next", "next", "restart"]


def test_link_status_without_history() -> None:
    second = VERIFIER.verify(_chain(2)[1])
    assert link_status(None, second) == "gap"
    assert link_status(ChainPosition(sequence=1, hash=second.prev_hash or ""), second) == "next"


def test_envelope_model_is_frozen_and_strict() -> None:
    envelope = VERIFIER.verify(_chain(1)[0])
    with pytest.raises(ValueError, match="frozen"):
        envelope.sequence = 5  # type: ignore[misc]
    assert isinstance(envelope, Envelope)


# -- the documented schema and examples ----------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schema"
RFC8037_PUBLIC_JWK = {
    "kty": "OKP",
    "crv": "Ed25519",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}
RFC8037_KID = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def _schema_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((DOCS / "envelope.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_the_json_schema_lists_every_message_kind() -> None:
    assert _schema_validator().schema["properties"]["kind"]["enum"] == list(MESSAGE_KINDS)


def test_signed_payloads_match_the_published_json_schema() -> None:
    validator = _schema_validator()
    for token in _chain(3):
        validator.validate(json.loads(_b64d(token.split(".")[1])))
    for example in validator.schema["examples"]:
        validator.validate(example)


@pytest.mark.parametrize(
    "changes",
    [
        {"sequence": "1"},
        {"sequence": 0},
        {"sequence": 2},
        {"prev_hash": "A" * 43},
        {"kind": "invoice"},
        {"message_id": "not-a-uuid"},
        {"extra_field": 1},
        {"body": [1]},
        {"schema_version": "2.0"},
        {"created_at": "yesterday"},
    ],
)
def test_the_json_schema_refuses_what_the_verifier_refuses(changes: dict[str, Any]) -> None:
    payload = json.loads(_payload(**changes))
    assert not _schema_validator().is_valid(payload)
    with pytest.raises(EnvelopeRejected):
        VERIFIER.verify(_sign_raw(HEADER, json.dumps(payload).encode()))


def test_the_documented_examples_verify_and_chain() -> None:
    text = (DOCS / "envelope.md").read_text()
    tokens = re.findall(r"^(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$", text, re.M)
    assert len(tokens) == 2
    verifier = Verifier({RFC8037_KID: OKPKey.import_key(RFC8037_PUBLIC_JWK)})
    first, second = (verifier.verify(token) for token in tokens)
    assert (first.sequence, second.sequence) == (41, 42)
    assert second.prev_hash == envelope_hash(tokens[0])
    assert envelope_hash(tokens[0]) in text
    tracker = ChainTracker()
    assert [tracker.observe(t, e) for t, e in zip(tokens, (first, second), strict=True)] == [
        "gap",
        "next",
    ]
