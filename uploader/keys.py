"""The agent's Ed25519 identity key and the backend's view of public keys.

The private key lives in one PEM (PKCS#8) file, mode 0600, written atomically.
The key id is the RFC 7638 JWK thumbprint (base64url SHA-256 of the canonical
public JWK), so any JOSE library computes the same id from the public key.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Self, cast

import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc.jwk import OKPKey

from uploader.errors import KeyFileError

__all__ = [
    "AgentKey",
    "PublicKey",
    "RegisteredKey",
    "load_public_key",
    "load_public_keys",
    "load_registered_keys",
]

#: What :func:`load_public_keys` returns per key id; :class:`uploader.envelope.Verifier` takes it.
PublicKey = OKPKey

_log = structlog.get_logger("uploader.keys")
_PUBLIC_KEY_SUFFIXES = (".jwk", ".json")
_BINDING_TEXT = re.compile(r"^[^/#+\s]{1,128}$")


class AgentKey:
    """An Ed25519 private key with its JWK view. Never logged, never printed."""

    __slots__ = ("_jwk", "_key_id", "_private")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._jwk = OKPKey.import_key(pem)
        self._key_id = self._jwk.thumbprint()

    def __repr__(self) -> str:
        return f"AgentKey(key_id={self._key_id!r})"

    @classmethod
    def generate(cls) -> AgentKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> AgentKey:
        """Read a PEM PKCS#8 Ed25519 private key; :class:`KeyFileError` names the file."""
        try:
            info = path.stat()
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeyFileError(
                "no agent key here; create one with `fleet-agent keys init`", path=path
            ) from None
        except OSError as exc:
            raise KeyFileError(f"cannot read the agent key ({exc.strerror})", path=path) from exc
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            _log.warning(
                "keys.insecure_permissions", path=str(path), mode=oct(stat.S_IMODE(info.st_mode))
            )
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError("not an unencrypted PEM (PKCS#8) private key", path=path) from exc
        except Exception as exc:  # cryptography raises UnsupportedAlgorithm for odd keys
            raise KeyFileError(f"unreadable private key ({type(exc).__name__})", path=path) from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(
                f"holds a {type(key).__name__.removeprefix('_')}, not an Ed25519 key", path=path
            )
        return cls(key)

    def save(self, path: Path, *, force: bool = False) -> None:
        """Write the key as PEM PKCS#8, mode 0600, atomically.

        Refuses to replace an existing file unless ``force``. Creates missing
        parent directories with mode 0700.
        """
        pem = self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if path.exists() and not force:
            raise KeyFileError("an agent key already exists; pass --force to replace it", path=path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchmod(fd, 0o600)  # the umask may have removed bits, never added any
                os.write(fd, pem)
                os.fsync(fd)
            finally:
                os.close(fd)
            if force:
                tmp.replace(path)
            else:
                os.link(tmp, path)  # atomic "create only if absent"
            _fsync_directory(path.parent)
        except FileExistsError:
            raise KeyFileError(
                "an agent key already exists; pass --force to replace it", path=path
            ) from None
        except OSError as exc:
            raise KeyFileError(f"cannot write the agent key ({exc.strerror})", path=path) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    @property
    def key_id(self) -> str:
        """RFC 7638 thumbprint of the public key (base64url SHA-256, no padding)."""
        return self._key_id

    @property
    def jose_key(self) -> OKPKey:
        """The private key as a joserfc key, for signing."""
        return self._jwk

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK, with ``kid`` (the thumbprint), ``use`` and ``alg``."""
        public = cast(dict[str, str], self._jwk.as_dict(private=False))
        return {
            "kty": public["kty"],
            "crv": public["crv"],
            "x": public["x"],
            "kid": self._key_id,
            "use": "sig",
            "alg": "EdDSA",
        }


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_public_key(path: Path) -> PublicKey:
    """One public Ed25519 JWK from a file; :class:`KeyFileError` names the file and field."""
    return _load_jwk_file(path)[0]


def _load_jwk_file(path: Path) -> tuple[PublicKey, dict[str, object]]:
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read the public key ({exc})", path=path) from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise KeyFileError(
            f"not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", path=path
        ) from exc
    if not isinstance(data, dict):
        raise KeyFileError("expected a JSON object (a JWK)", path=path)
    if "d" in data:
        raise KeyFileError("holds a private key (field 'd'); register public keys only", path=path)
    for field, expected in (("kty", "OKP"), ("crv", "Ed25519")):
        if data.get(field) != expected:
            raise KeyFileError(
                f"field '{field}' is {data.get(field)!r}, expected {expected!r}", path=path
            )
    if not isinstance(data.get("x"), str):
        raise KeyFileError("field 'x' (the public key, base64url) is missing", path=path)
    try:
        key = OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": data["x"]})
        key.get_op_key("verify")  # decodes x: a bad length or encoding fails here
    except Exception as exc:  # joserfc/cryptography raise a variety of ValueErrors
        raise KeyFileError(f"field 'x' is not an Ed25519 public key ({exc})", path=path) from exc
    thumbprint = key.thumbprint()
    kid = data.get("kid")
    if kid is not None and kid != thumbprint:
        raise KeyFileError(
            f"field 'kid' is {kid!r} but the key's RFC 7638 thumbprint is {thumbprint!r}",
            path=path,
        )
    return key, data


@dataclass(frozen=True)
class RegisteredKey:
    """A public key registered by hand (a JWK file) and what it may sign for.

    ``agent_id`` (the JWK file's ``agent_id`` member) binds the key to that agent;
    ``None`` binds it to the first agent id that signs with it (trust on first use).
    ``site`` (member ``site``), when given, is the only site it may publish for.
    """

    key_id: str
    jwk: dict[str, str]
    agent_id: str | None = None
    site: str | None = None
    path: Path | None = None

    @classmethod
    def of(cls, key: AgentKey, agent_id: str | None = None, site: str | None = None) -> Self:
        return cls(key.key_id, key.public_jwk(), agent_id, site)


def _optional_text(data: dict[str, object], field: str, path: Path) -> str | None:
    value = data.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not _BINDING_TEXT.match(value):
        raise KeyFileError(
            f"field {field!r} must be a non-empty name without '/', '+', '#' or spaces", path=path
        )
    return value


def load_registered_keys(directory: Path) -> list[RegisteredKey]:
    """Every ``*.jwk`` / ``*.json`` public key in ``directory`` with its binding members."""
    if not directory.is_dir():
        raise KeyFileError("public key directory does not exist", path=directory)
    found: list[RegisteredKey] = []
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() in _PUBLIC_KEY_SUFFIXES and path.is_file():
            key, data = _load_jwk_file(path)
            kid = key.thumbprint()
            public = cast(dict[str, str], key.as_dict(private=False))
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": public["x"], "kid": kid}
            agent_id = _optional_text(data, "agent_id", path)
            site = _optional_text(data, "site", path)
            found.append(RegisteredKey(kid, jwk, agent_id, site, path))
    return found


def load_public_keys(directory: Path) -> dict[str, PublicKey]:
    """Every ``*.jwk`` / ``*.json`` public key in ``directory``, by key id (thumbprint).

    Raises :class:`KeyFileError` for a missing directory or any bad file, so a
    typo is found at start rather than as "unknown_key" rejections later.
    """
    if not directory.is_dir():
        raise KeyFileError("public key directory does not exist", path=directory)
    keys: dict[str, PublicKey] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() in _PUBLIC_KEY_SUFFIXES and path.is_file():
            key = load_public_key(path)
            keys[key.thumbprint()] = key
    return keys
