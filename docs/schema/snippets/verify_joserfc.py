"""Verify one fleet-agent envelope with joserfc.

python verify_joserfc.py AGENT_JWK_FILE < TOKEN_FILE     # prints the payload JSON
"""

import json
import sys
import warnings

from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import OKPKey

TYPE = "fleet-agent-envelope+jws"
ALGORITHMS = ["EdDSA", "Ed25519"]  # RFC 8037 name, and RFC 9864's fully specified one


def verify(token: str, jwk: dict) -> dict:
    key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": jwk["x"]})
    with warnings.catch_warnings():
        # joserfc flags "EdDSA" as deprecated by RFC 9864 on every call; it is still the
        # name fleet-agent signs with, for every stock library to verify.
        warnings.simplefilter("ignore", SecurityWarning)
        signed = jws.deserialize_compact(token, key, algorithms=ALGORITHMS)
    if signed.protected.get("typ") != TYPE or signed.protected.get("kid") != jwk["kid"]:
        raise ValueError(f"not a fleet-agent envelope of key {jwk['kid']}")
    payload = json.loads(signed.payload)
    if payload["key_id"] != jwk["kid"]:
        raise ValueError("key_id differs from the header's kid")
    return payload


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as file:
        agent_jwk = json.load(file)
    try:
        print(json.dumps(verify(sys.stdin.read().strip(), agent_jwk), sort_keys=True))
    except (JoseError, ValueError, KeyError) as exc:
        sys.exit(f"rejected: {exc!r}")
