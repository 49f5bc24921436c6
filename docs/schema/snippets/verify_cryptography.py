"""Verify one fleet-agent envelope with nothing but cryptography, and chain the next.

python verify_cryptography.py AGENT_JWK_FILE < TOKEN_FILE     # prints the payload JSON
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

TYPE = "fleet-agent-envelope+jws"


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify(token: str, jwk: dict) -> dict:
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(b64d(header_b64))
    if header.get("alg") not in ("EdDSA", "Ed25519") or header.get("typ") != TYPE:
        raise ValueError(f"refused header {header}")
    if header.get("kid") != jwk["kid"]:
        raise ValueError("unknown key")
    Ed25519PublicKey.from_public_bytes(b64d(jwk["x"])).verify(
        b64d(signature_b64), f"{header_b64}.{payload_b64}".encode("ascii")
    )  # raises InvalidSignature
    payload = json.loads(b64d(payload_b64))
    if payload["key_id"] != header["kid"]:
        raise ValueError("key_id differs from the header's kid")
    return payload


def envelope_hash(token: str) -> str:
    """What the next envelope of the same agent carries as prev_hash (a str, like it)."""
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def follows(previous_token: str, payload: dict) -> bool:
    return payload["prev_hash"] == envelope_hash(previous_token)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as file:
        agent_jwk = json.load(file)
    tokens = sys.stdin.read().split()
    try:
        payloads = [verify(token, agent_jwk) for token in tokens]
    except (InvalidSignature, ValueError, KeyError) as exc:
        sys.exit(f"rejected: {exc!r}")
    for previous, payload in zip(tokens, payloads[1:], strict=False):
        if not follows(previous, payload):
            sys.exit(f"chain broken before sequence {payload['sequence']}")
    for payload in payloads:
        print(json.dumps(payload, sort_keys=True))
