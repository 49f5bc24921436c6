"""Agent keys: RFC 7638 key ids, 0600 files, atomic no-overwrite, clear errors naming the file."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleet_errors import LocalError
from uploader.errors import KeyFileError
from uploader.keys import AgentKey, load_public_key, load_public_keys

# RFC 8037 appendix A.1 (private key) and A.3 (its RFC 7638 thumbprint).
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _rfc8037_key() -> AgentKey:
    return AgentKey(Ed25519PrivateKey.from_private_bytes(_b64d(RFC8037_D)))


def test_key_id_is_the_rfc8037_thumbprint() -> None:
    key = _rfc8037_key()
    assert key.key_id == RFC8037_THUMBPRINT
    assert key.public_jwk() == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": RFC8037_X,
        "kid": RFC8037_THUMBPRINT,
        "use": "sig",
        "alg": "EdDSA",
    }


def test_key_id_matches_an_independent_rfc7638_computation() -> None:
    key = AgentKey.generate()
    jwk = key.public_jwk()
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    assert key.key_id == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_public_jwk_and_repr_carry_no_private_material() -> None:
    key = _rfc8037_key()
    assert "d" not in key.public_jwk()
    assert RFC8037_D not in repr(key)
    assert RFC8037_D not in json.dumps(key.public_jwk())


def test_save_then_load_round_trips_with_mode_0600(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # the file must be 0600 even under a permissive umask
    try:
        key = AgentKey.generate()
        path = tmp_path / "state" / "agent.key"
        key.save(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert AgentKey.load(path).key_id == key.key_id
    assert [p.name for p in path.parent.iterdir()] == ["agent.key"]  # no temp file left


def test_save_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    first = AgentKey.generate()
    first.save(path)
    with pytest.raises(KeyFileError, match="already exists") as info:
        AgentKey.generate().save(path)
    assert info.value.path == path
    assert str(path) in str(info.value)
    assert AgentKey.load(path).key_id == first.key_id  # untouched

    second = AgentKey.generate()
    second.save(path, force=True)
    assert AgentKey.load(path).key_id == second.key_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_load_missing_file_names_it_and_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    with pytest.raises(KeyFileError, match="keys init") as info:
        AgentKey.load(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, LocalError)


def test_load_garbage_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    path.write_text("not a key\n")
    with pytest.raises(KeyFileError, match="PEM") as info:
        AgentKey.load(path)
    assert str(path) in str(info.value)


def test_load_refuses_a_non_ed25519_key(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        AgentKey.load(path)


def test_load_refuses_an_encrypted_key(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    path.write_bytes(pem)
    with pytest.raises(KeyFileError) as info:
        AgentKey.load(path)
    assert str(path) in str(info.value)


def test_load_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        AgentKey.load(tmp_path)


def _write_jwk(path: Path, key: AgentKey, **changes: object) -> None:
    jwk: dict[str, object] = dict(key.public_jwk())
    jwk.update(changes)
    path.write_text(json.dumps(jwk))


def test_load_public_keys_indexes_by_thumbprint(tmp_path: Path) -> None:
    first, second = AgentKey.generate(), AgentKey.generate()
    _write_jwk(tmp_path / "printer-room.jwk", first)
    _write_jwk(tmp_path / "branch.json", second)
    (tmp_path / "README.txt").write_text("ignored")
    keys = load_public_keys(tmp_path)
    assert set(keys) == {first.key_id, second.key_id}
    assert keys[first.key_id].as_dict(private=False)["x"] == first.public_jwk()["x"]


def test_load_public_keys_accepts_a_jwk_without_kid(tmp_path: Path) -> None:
    key = AgentKey.generate()
    jwk = key.public_jwk()
    del jwk["kid"]
    (tmp_path / "a.jwk").write_text(json.dumps(jwk))
    assert set(load_public_keys(tmp_path)) == {key.key_id}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kid": "not-the-thumbprint"}, "field 'kid'"),
        ({"crv": "X25519"}, "field 'crv'"),
        ({"kty": "EC"}, "field 'kty'"),
        ({"x": "AAAA"}, "field 'x'"),
        ({"x": 5}, "field 'x'"),
        ({"d": RFC8037_D}, "private key"),
    ],
)
def test_bad_public_key_file_names_file_and_field(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    path = tmp_path / "bad.jwk"
    _write_jwk(path, AgentKey.generate(), **changes)
    with pytest.raises(KeyFileError, match=message) as info:
        load_public_keys(tmp_path)
    assert info.value.path == path


def test_public_key_file_that_is_not_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.jwk"
    path.write_text('{\n  "kty": "OKP",\n  oops\n}')
    with pytest.raises(KeyFileError, match="line 3"):
        load_public_key(path)


def test_public_key_directory_must_exist(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        load_public_keys(tmp_path / "missing")


def test_loading_a_group_readable_key_warns_without_leaking_it(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    key = AgentKey.generate()
    key.save(path)
    with structlog.testing.capture_logs() as quiet:
        AgentKey.load(path)
    assert quiet == []
    path.chmod(0o644)
    with structlog.testing.capture_logs() as logs:
        assert AgentKey.load(path).key_id == key.key_id
    assert [entry["event"] for entry in logs] == ["keys.insecure_permissions"]
    assert logs[0]["mode"] == "0o644"
    assert logs[0]["path"] == str(path)
    pem_body = "".join(path.read_text().splitlines()[1:-1])
    assert pem_body not in repr(logs)
