"""Which key may sign for which agent: enrollment tokens and key bindings in the store.

Tables (SQLite and PostgreSQL, created with the store's others):

* ``enrollment_tokens(token_hash PK, site, created_at, expires_at, used_at, used_by,
  used_key_id, revoked_at, backend_key_id)``: one-time tokens; only the SHA-256 of
  the secret is kept (:func:`uploader.enrollment.token_hash`).
* ``agent_keys(key_id PK, agent_id, site, jwk, status, source, created_at,
  changed_at, replaced_by)``: one row per public key. ``status`` is ``active``,
  ``retired`` (replaced by a rotation: still accepted for envelopes created
  before ``changed_at`` plus :data:`RETIRED_GRACE`, the outbox's backlog) or
  ``revoked`` (refused from then on). ``source`` is ``enrollment``,
  ``rotation`` or ``file`` (registered by hand with ``ingest --keys-dir``; such
  a key without ``agent_id`` is bound to the first agent id that signs with it).
* ``control_requests(message_id PK, agent_id, kind, received_at, reply)``: the
  enrollment and rotation requests answered, with the signed reply, so a request
  delivered again is answered the same way and never applied twice.

:func:`key_refusal` is the pure rule the consumer applies to every envelope.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from fleet_errors import LocalError

if TYPE_CHECKING:
    from backend.store import SqlStore

__all__ = [
    "KEYRING_POSTGRES_DDL",
    "KEYRING_SQLITE_DDL",
    "RETIRED_GRACE",
    "KeyBinding",
    "KeyRing",
    "KeyringError",
    "TokenInfo",
    "key_refusal",
]

#: A retired key's envelopes created up to this long after its rotation are still
#: accepted (clock skew, and the daemon switching keys a moment after the CLI).
RETIRED_GRACE = timedelta(minutes=5)

KeyStatus = Literal["active", "retired", "revoked"]
KeySource = Literal["enrollment", "rotation", "file"]

KEYRING_SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS enrollment_tokens (
    token_hash TEXT PRIMARY KEY, site TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, used_at TEXT, used_by TEXT, used_key_id TEXT, revoked_at TEXT,
    backend_key_id TEXT);
CREATE TABLE IF NOT EXISTS agent_keys (
    key_id TEXT PRIMARY KEY, agent_id TEXT, site TEXT, jwk TEXT NOT NULL, status TEXT NOT NULL,
    source TEXT NOT NULL, created_at TEXT NOT NULL, changed_at TEXT NOT NULL, replaced_by TEXT);
CREATE INDEX IF NOT EXISTS agent_keys_agent ON agent_keys (agent_id);
CREATE TABLE IF NOT EXISTS control_requests (
    message_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, kind TEXT NOT NULL,
    received_at TEXT NOT NULL, reply TEXT NOT NULL);
"""

KEYRING_POSTGRES_DDL = """
CREATE TABLE IF NOT EXISTS enrollment_tokens (
    token_hash TEXT PRIMARY KEY, site TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL, used_at TIMESTAMPTZ, used_by TEXT, used_key_id TEXT,
    revoked_at TIMESTAMPTZ, backend_key_id TEXT);
CREATE TABLE IF NOT EXISTS agent_keys (
    key_id TEXT PRIMARY KEY, agent_id TEXT, site TEXT, jwk TEXT NOT NULL, status TEXT NOT NULL,
    source TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL, changed_at TIMESTAMPTZ NOT NULL,
    replaced_by TEXT);
CREATE INDEX IF NOT EXISTS agent_keys_agent ON agent_keys (agent_id);
CREATE TABLE IF NOT EXISTS control_requests (
    message_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, kind TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL, reply TEXT NOT NULL);
"""


class KeyringError(LocalError):
    """A token or key named on the command line is not in the store (or is ambiguous)."""


class KeyBinding(BaseModel):
    """One registered public key and what it may sign for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str
    agent_id: str | None
    site: str | None
    jwk: dict[str, str]
    status: KeyStatus
    source: KeySource
    created_at: datetime
    changed_at: datetime
    replaced_by: str | None = None


class TokenInfo(BaseModel):
    """An enrollment token as listed (never its secret)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token_id: str  # the first 12 hex digits of the hash: what `enroll-token revoke` takes
    site: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    used_by: str | None = None
    used_key_id: str | None = None
    revoked_at: datetime | None = None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.used_at is not None:
            return "used"
        return "expired" if self.expires_at <= now else "unused"


def key_refusal(
    binding: KeyBinding, *, agent_id: str, site: str, created_at: datetime
) -> str | None:
    """Why an envelope of ``agent_id`` on ``site``'s topic, verified with ``binding``'s key,
    is refused (a reason word), or ``None`` when the key may sign it.

    A key without an agent id (hand-registered, not yet used) is bound by the caller.
    """
    if binding.status == "revoked":
        return "key_revoked"
    if binding.status == "retired" and created_at > binding.changed_at + RETIRED_GRACE:
        return "key_retired"
    if binding.agent_id is not None and binding.agent_id != agent_id:
        return "key_not_enrolled_for_agent"
    if binding.site is not None and binding.site != site:
        return "key_not_enrolled_for_site"
    return None


def _time(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _maybe_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)


_SELECT_BINDINGS = (
    "SELECT key_id, agent_id, site, jwk, status, source, created_at, changed_at, replaced_by "
    "FROM agent_keys"
)
_SELECT_TOKENS = (
    "SELECT token_hash, site, created_at, expires_at, used_at, used_by, used_key_id, "
    "revoked_at FROM enrollment_tokens"
)


def _binding(row: Sequence[Any]) -> KeyBinding:
    return KeyBinding(
        key_id=row[0],
        agent_id=row[1],
        site=row[2],
        jwk=json.loads(row[3]),
        status=row[4],
        source=row[5],
        created_at=_time(row[6]),
        changed_at=_time(row[7]),
        replaced_by=row[8],
    )


def _token(row: Sequence[Any]) -> TokenInfo:
    return TokenInfo(
        token_id=str(row[0])[:12],
        site=row[1],
        created_at=_time(row[2]),
        expires_at=_time(row[3]),
        used_at=_maybe_time(row[4]),
        used_by=row[5],
        used_key_id=row[6],
        revoked_at=_maybe_time(row[7]),
    )


class KeyRing:
    """Queries on the key tables of one store. Inside ``store.batch()`` they share its
    transaction (the consumer); outside, each statement commits on its own (the CLI)."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def _q(self, sql: str, params: Sequence[object] = ()) -> Any:
        return self._store.execute(sql, params)

    def _ts(self, moment: datetime) -> object:
        return self._store.timestamp(moment)

    # -- bindings -----------------------------------------------------------------------

    def binding(self, key_id: str) -> KeyBinding | None:
        row = self._q(_SELECT_BINDINGS + " WHERE key_id = ?", (key_id,)).fetchone()
        return None if row is None else _binding(row)

    def bindings(self, agent_id: str | None = None) -> list[KeyBinding]:
        sql = _SELECT_BINDINGS
        params: tuple[object, ...] = ()
        if agent_id is not None:
            sql, params = sql + " WHERE agent_id = ?", (agent_id,)
        rows = self._q(sql + " ORDER BY agent_id, created_at, key_id", params).fetchall()
        return [_binding(row) for row in rows]

    def add(
        self,
        *,
        jwk: dict[str, str],
        agent_id: str | None,
        site: str | None,
        source: KeySource,
        now: datetime,
    ) -> None:
        self._q(
            "INSERT INTO agent_keys (key_id, agent_id, site, jwk, status, source, created_at, "
            "changed_at, replaced_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                jwk["kid"],
                agent_id,
                site,
                json.dumps(jwk, sort_keys=True),
                "active",
                source,
                self._ts(now),
                self._ts(now),
                None,
            ),
        )

    def register_file_key(
        self, *, jwk: dict[str, str], agent_id: str | None, site: str | None, now: datetime
    ) -> str:
        """Register a hand-copied key; what happened: ``added``, ``kept`` or ``rebound``.

        A key already enrolled, or revoked, keeps its row: a file never re-activates a
        revoked key nor moves an enrolled one. A file key's binding follows its file.
        """
        known = self.binding(jwk["kid"])
        if known is None:
            self.add(jwk=jwk, agent_id=agent_id, site=site, source="file", now=now)
            return "added"
        if known.source != "file" or known.status != "active" or agent_id is None:
            return "kept"
        if (known.agent_id, known.site) == (agent_id, site):
            return "kept"
        self._q(
            "UPDATE agent_keys SET agent_id = ?, site = ?, changed_at = ? WHERE key_id = ?",
            (agent_id, site, self._ts(now), jwk["kid"]),
        )
        return "rebound"

    def bind(self, key_id: str, agent_id: str, site: str | None, *, source: KeySource) -> None:
        self._q(
            "UPDATE agent_keys SET agent_id = ?, site = ?, source = ? WHERE key_id = ?",
            (agent_id, site, source, key_id),
        )

    def bind_first_use(self, key_id: str, agent_id: str, now: datetime) -> None:
        self._q(
            "UPDATE agent_keys SET agent_id = ?, changed_at = ? "
            "WHERE key_id = ? AND agent_id IS NULL",
            (agent_id, self._ts(now), key_id),
        )

    def set_status(
        self, key_id: str, status: KeyStatus, now: datetime, *, replaced_by: str | None = None
    ) -> None:
        self._q(
            "UPDATE agent_keys SET status = ?, changed_at = ?, replaced_by = ? WHERE key_id = ?",
            (status, self._ts(now), replaced_by, key_id),
        )

    def retire_active(self, agent_id: str, now: datetime, *, except_key: str) -> None:
        self._q(
            "UPDATE agent_keys SET status = 'retired', changed_at = ?, replaced_by = ? "
            "WHERE agent_id = ? AND status = 'active' AND key_id <> ?",
            (self._ts(now), except_key, agent_id, except_key),
        )

    def revoke(
        self, *, key_ids: Sequence[str] = (), agent_id: str | None = None, now: datetime
    ) -> list[KeyBinding]:
        """Revoke the keys named (by key id, or every key of ``agent_id``); returns them.

        Raises :class:`KeyringError` naming a key id or agent that is not registered.
        """
        targets: list[KeyBinding] = []
        for key_id in key_ids:
            found = self.binding(key_id)
            if found is None:
                raise KeyringError(f"key {key_id}: not registered in {self._store.url}")
            targets.append(found)
        if agent_id is not None:
            mine = self.bindings(agent_id)
            if not mine:
                raise KeyringError(f"agent {agent_id}: no key registered in {self._store.url}")
            targets.extend(mine)
        revoked = []
        for binding in {b.key_id: b for b in targets}.values():
            if binding.status != "revoked":
                self.set_status(binding.key_id, "revoked", now, replaced_by=binding.replaced_by)
            revoked.append(self.binding(binding.key_id))
        return [b for b in revoked if b is not None]

    # -- tokens -------------------------------------------------------------------------

    def add_token(
        self,
        *,
        token_hash: str,
        site: str,
        expires_at: datetime,
        backend_key_id: str | None,
        now: datetime,
    ) -> TokenInfo:
        self._q(
            "INSERT INTO enrollment_tokens (token_hash, site, created_at, expires_at, "
            "backend_key_id) VALUES (?, ?, ?, ?, ?)",
            (token_hash, site, self._ts(now), self._ts(expires_at), backend_key_id),
        )
        info = self.token(token_hash)
        assert info is not None
        return info

    def token(self, token_hash: str) -> TokenInfo | None:
        row = self._q(_SELECT_TOKENS + " WHERE token_hash = ?", (token_hash,)).fetchone()
        return None if row is None else _token(row)

    def tokens(self) -> list[TokenInfo]:
        rows = self._q(_SELECT_TOKENS + " ORDER BY created_at, token_hash").fetchall()
        return [_token(row) for row in rows]

    def use_token(self, token_hash: str, *, agent_id: str, key_id: str, now: datetime) -> None:
        self._q(
            "UPDATE enrollment_tokens SET used_at = ?, used_by = ?, used_key_id = ? "
            "WHERE token_hash = ?",
            (self._ts(now), agent_id, key_id, token_hash),
        )

    def revoke_token(self, token_id: str, now: datetime) -> TokenInfo:
        """Revoke the token whose id (hash prefix, at least 8 hex digits) is ``token_id``."""
        if len(token_id) < 8 or any(ch not in "0123456789abcdef" for ch in token_id):
            raise KeyringError(f"token id {token_id!r}: expected 8 to 64 hex digits (see list)")
        rows = self._q(
            "SELECT token_hash FROM enrollment_tokens WHERE token_hash LIKE ?", (token_id + "%",)
        ).fetchall()
        if not rows:
            raise KeyringError(f"token id {token_id}: no such token in {self._store.url}")
        if len(rows) > 1:
            raise KeyringError(f"token id {token_id}: matches {len(rows)} tokens; give more digits")
        full = str(rows[0][0])
        self._q(
            "UPDATE enrollment_tokens SET revoked_at = ? WHERE token_hash = ? "
            "AND revoked_at IS NULL",
            (self._ts(now), full),
        )
        info = self.token(full)
        assert info is not None
        return info

    # -- answered requests --------------------------------------------------------------

    def answered(self, message_id: str) -> str | None:
        row = self._q(
            "SELECT reply FROM control_requests WHERE message_id = ?", (message_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def remember(
        self, *, message_id: str, agent_id: str, kind: str, reply: str, now: datetime
    ) -> None:
        self._q(
            "INSERT INTO control_requests (message_id, agent_id, kind, received_at, reply) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
            (message_id, agent_id, kind, self._ts(now), reply),
        )
