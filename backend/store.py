"""Where the reference consumer keeps what it accepted: SQLite by default, PostgreSQL by DSN.

Tables (same shape on both):

* ``messages(message_id PK, agent_id, sequence, kind, created_at, received_at,
  body JSON, token, hash, prev_hash)``: one row per accepted envelope; ``hash``
  is :func:`uploader.envelope.envelope_hash` of the token (the next ``prev_hash``).
* ``rejections(reason PK, count, last_at, last_detail)``.
* ``agent_state(agent_id PK, last_sequence, last_hash, gaps, chain_breaks,
  restarts, updated_at)``: ``gaps`` is the number of sequences still missing.
* ``missing_sequences(agent_id, sequence)``: the open gaps themselves.
* ``meter_reads(message_id PK, device_id, collected_at, serial, vendor, model,
  location, source, meters JSON)``: what billing needs of each stored read,
  written with the message (:func:`backend.billing.read_meter_row`), indexed by time
  and by device, so a month of 300,000 reads streams without parsing bodies.
* ``agent_heartbeats`` and ``device_outages``: agent and device liveness, kept
  and queried by :mod:`backend.agents`.
* enrollment tokens, key bindings and answered control requests: see
  :mod:`backend.keyring` (its DDL is run with these).

All work for a batch of messages happens in one transaction
(:meth:`SqlStore.batch`). Several consumers may share one store: SQLite
serialises writers (``BEGIN IMMEDIATE``), PostgreSQL takes a transaction-level
advisory lock per agent, in sorted order, so the per-agent state stays exact.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from backend import agents
from backend.billing import BillingRead, MeterRow, meter_row, read_meter_row
from backend.keyring import KEYRING_POSTGRES_DDL, KEYRING_SQLITE_DDL
from fleet_errors import LocalError, translate
from mibs.messages import ReadMessage

__all__ = ["DEFAULT_STORE", "AgentState", "SqlStore", "StoreError", "StoredMessage", "open_store"]

#: The store of ``fleet-agent ingest`` and of the backend commands unless ``--store`` says.
DEFAULT_STORE = "sqlite:///fleet-ingest.db"


class StoreError(LocalError):
    """The consumer's store cannot be opened or written; names the store."""


def _failing(url: str, doing: str, *kinds: type[Exception]) -> AbstractContextManager[None]:
    """sqlite3/psycopg/OS errors while ``doing`` become a :class:`StoreError` naming the store."""

    def build(exc: BaseException) -> StoreError:
        return StoreError(f"store {url}: {doing} ({exc})")

    return translate(dict.fromkeys(kinds, build))


class StoredMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str
    agent_id: str
    sequence: int
    kind: str
    created_at: datetime
    received_at: datetime
    body: str  # JSON text of the envelope body
    token: str
    hash: str
    prev_hash: str | None


class AgentState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    agent_id: str
    last_sequence: int
    last_hash: str
    gaps: int = 0
    chain_breaks: int = 0
    restarts: int = 0


class _Cursor(Protocol):
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


_SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, sequence INTEGER NOT NULL,
    kind TEXT NOT NULL, created_at TEXT NOT NULL, received_at TEXT NOT NULL,
    body TEXT NOT NULL, token TEXT NOT NULL, hash TEXT NOT NULL, prev_hash TEXT);
CREATE INDEX IF NOT EXISTS messages_agent_sequence ON messages (agent_id, sequence);
CREATE TABLE IF NOT EXISTS rejections (
    reason TEXT PRIMARY KEY, count INTEGER NOT NULL, last_at TEXT NOT NULL,
    last_detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agent_state (
    agent_id TEXT PRIMARY KEY, last_sequence INTEGER NOT NULL, last_hash TEXT NOT NULL,
    gaps INTEGER NOT NULL, chain_breaks INTEGER NOT NULL, restarts INTEGER NOT NULL,
    updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS missing_sequences (
    agent_id TEXT NOT NULL, sequence INTEGER NOT NULL, detected_at TEXT NOT NULL,
    PRIMARY KEY (agent_id, sequence));
CREATE TABLE IF NOT EXISTS meter_reads (
    message_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, collected_at TEXT NOT NULL,
    serial TEXT, vendor TEXT, model TEXT, location TEXT, source TEXT NOT NULL,
    meters TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS meter_reads_time ON meter_reads (collected_at);
CREATE INDEX IF NOT EXISTS meter_reads_device ON meter_reads (device_id, collected_at);
"""

_POSTGRES_DDL = """
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, sequence BIGINT NOT NULL,
    kind TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL, received_at TIMESTAMPTZ NOT NULL,
    body JSONB NOT NULL, token TEXT NOT NULL, hash TEXT NOT NULL, prev_hash TEXT);
CREATE INDEX IF NOT EXISTS messages_agent_sequence ON messages (agent_id, sequence);
CREATE TABLE IF NOT EXISTS rejections (
    reason TEXT PRIMARY KEY, count BIGINT NOT NULL, last_at TIMESTAMPTZ NOT NULL,
    last_detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agent_state (
    agent_id TEXT PRIMARY KEY, last_sequence BIGINT NOT NULL, last_hash TEXT NOT NULL,
    gaps BIGINT NOT NULL, chain_breaks BIGINT NOT NULL, restarts BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL);
CREATE TABLE IF NOT EXISTS missing_sequences (
    agent_id TEXT NOT NULL, sequence BIGINT NOT NULL, detected_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agent_id, sequence));
CREATE TABLE IF NOT EXISTS meter_reads (
    message_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, collected_at TIMESTAMPTZ NOT NULL,
    serial TEXT, vendor TEXT, model TEXT, location TEXT, source TEXT NOT NULL,
    meters TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS meter_reads_time ON meter_reads (collected_at);
CREATE INDEX IF NOT EXISTS meter_reads_device ON meter_reads (device_id, collected_at);
"""


#: Rows fetched at a time when billing streams ``meter_reads``.
_SLICE = 5000
_BILLING_SQL = (
    "SELECT device_id, collected_at, serial, vendor, model, location, source, meters "
    "FROM meter_reads WHERE collected_at >= ? AND collected_at < ? "
    "ORDER BY device_id, collected_at"
)
#: SQLite picks the time index for the range and then sorts a month of rows (300,000,
#: with their meters) in a temporary B-tree; the device index gives the order itself and
#: its ``collected_at`` column filters the range before a row is read.
_SQLITE_BILLING_SQL = _BILLING_SQL.replace(
    "FROM meter_reads", "FROM meter_reads INDEXED BY meter_reads_device"
)


class StoreBatch:
    """The operations of one transaction; obtained from :meth:`SqlStore.batch`."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self.now = datetime.now(UTC)
        # Agent states are read once per batch and written once, at commit (flush()).
        self._states: dict[str, AgentState | None] = {}
        self._dirty: set[str] = set()

    def _q(self, sql: str, params: Sequence[object] = ()) -> _Cursor:
        return self._store.execute(sql, params)

    @property
    def store(self) -> SqlStore:
        return self._store

    def execute(self, sql: str, params: Sequence[object] = ()) -> _Cursor:
        """One statement inside this transaction (``?`` placeholders), for table modules."""
        return self._q(sql, params)

    def message_hash(self, message_id: str) -> str | None:
        row = self._q("SELECT hash FROM messages WHERE message_id = ?", (message_id,)).fetchone()
        return None if row is None else str(row[0])

    def hash_at(self, agent_id: str, sequence: int) -> str | None:
        row = self._q(
            "SELECT hash FROM messages WHERE agent_id = ? AND sequence = ? "
            "ORDER BY received_at DESC LIMIT 1",
            (agent_id, sequence),
        ).fetchone()
        return None if row is None else str(row[0])

    def prev_hash_at(self, agent_id: str, sequence: int) -> tuple[bool, str | None]:
        """(stored?, its prev_hash) of the newest stored message with that sequence."""
        row = self._q(
            "SELECT prev_hash FROM messages WHERE agent_id = ? AND sequence = ? "
            "ORDER BY received_at DESC LIMIT 1",
            (agent_id, sequence),
        ).fetchone()
        return (False, None) if row is None else (True, row[0])

    def agent_state(self, agent_id: str) -> AgentState | None:
        if agent_id in self._states:
            return self._states[agent_id]
        state = self._load_agent_state(agent_id)
        self._states[agent_id] = state
        return state

    def put_agent_state(self, state: AgentState) -> None:
        self._states[state.agent_id] = state
        self._dirty.add(state.agent_id)

    def flush(self) -> None:
        """Write the changed agent states; the store calls this just before COMMIT."""
        for agent_id in sorted(self._dirty):
            state = self._states[agent_id]
            if state is not None:
                self._write_agent_state(state)
        self._dirty.clear()

    def _load_agent_state(self, agent_id: str) -> AgentState | None:
        row = self._q(
            "SELECT last_sequence, last_hash, gaps, chain_breaks, restarts "
            "FROM agent_state WHERE agent_id = ?",
            (agent_id,),
        ).fetchone()
        if row is None:
            return None
        return AgentState(
            agent_id=agent_id,
            last_sequence=row[0],
            last_hash=row[1],
            gaps=row[2],
            chain_breaks=row[3],
            restarts=row[4],
        )

    def _write_agent_state(self, state: AgentState) -> None:
        self._q(
            "INSERT INTO agent_state (agent_id, last_sequence, last_hash, gaps, chain_breaks, "
            "restarts, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE "
            "SET last_sequence = excluded.last_sequence, last_hash = excluded.last_hash, "
            "gaps = excluded.gaps, chain_breaks = excluded.chain_breaks, "
            "restarts = excluded.restarts, updated_at = excluded.updated_at",
            (
                state.agent_id,
                state.last_sequence,
                state.last_hash,
                state.gaps,
                state.chain_breaks,
                state.restarts,
                self._store.timestamp(self.now),
            ),
        )

    def is_missing(self, agent_id: str, sequence: int) -> bool:
        row = self._q(
            "SELECT 1 FROM missing_sequences WHERE agent_id = ? AND sequence = ?",
            (agent_id, sequence),
        ).fetchone()
        return row is not None

    def add_missing(self, agent_id: str, sequences: Iterable[int]) -> int:
        rows = [(agent_id, seq, self._store.timestamp(self.now)) for seq in sequences]
        self._store.executemany(
            "INSERT INTO missing_sequences (agent_id, sequence, detected_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            rows,
        )
        return len(rows)

    def remove_missing(self, agent_id: str, sequence: int) -> None:
        self._q(
            "DELETE FROM missing_sequences WHERE agent_id = ? AND sequence = ?",
            (agent_id, sequence),
        )

    def clear_missing(self, agent_id: str) -> None:
        self._q("DELETE FROM missing_sequences WHERE agent_id = ?", (agent_id,))

    def insert_message(self, message: StoredMessage, read: ReadMessage | None = None) -> None:
        """Store an accepted envelope; a ``read`` is indexed for billing too.

        ``read``: the body already parsed (the consumer validates each body once); without
        it a read body is parsed here (a body off the read schema: :func:`meter_row`).
        """
        ts = self._store.timestamp
        self._q(
            self._store.insert_message_sql,
            (
                message.message_id,
                message.agent_id,
                message.sequence,
                message.kind,
                ts(message.created_at),
                ts(message.received_at),
                message.body,
                message.token,
                message.hash,
                message.prev_hash,
            ),
        )
        if message.kind == "read":
            if read is not None:
                row = read_meter_row(read, read.device_id)
                self._insert_meter_rows([(message.message_id, row)])
                return
            body = json.loads(message.body)
            if isinstance(body, dict):
                self.insert_meter_read(message.message_id, body)

    def insert_meter_read(self, message_id: str, body: Mapping[str, Any]) -> None:
        """Index a stored read for billing (a body billing cannot use is left out)."""
        self.insert_meter_reads([(message_id, body)])

    def insert_meter_reads(self, reads: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Index many stored reads at once (one ``executemany``: PostgreSQL pipelines it)."""
        rows = ((message_id, meter_row(body)) for message_id, body in reads)
        self._insert_meter_rows([(message_id, row) for message_id, row in rows if row is not None])

    def _insert_meter_rows(self, rows: Sequence[tuple[str, MeterRow]]) -> None:
        read_time = self._store.read_time
        self._store.executemany(
            "INSERT INTO meter_reads (message_id, device_id, collected_at, serial, vendor, "
            "model, location, source, meters) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (message_id) DO NOTHING",
            [
                (
                    message_id,
                    device_id,
                    read_time(collected_at),
                    columns["serial"],
                    columns["vendor"],
                    columns["model"],
                    columns["location"],
                    columns["source"],
                    columns["meters"],
                )
                for message_id, (device_id, collected_at, columns) in rows
            ],
        )

    def count_rejection(self, reason: str, detail: str) -> None:
        self._q(
            "INSERT INTO rejections (reason, count, last_at, last_detail) VALUES (?, 1, ?, ?) "
            "ON CONFLICT (reason) DO UPDATE SET count = rejections.count + 1, "
            "last_at = excluded.last_at, last_detail = excluded.last_detail",
            (reason, self._store.timestamp(self.now), detail[:500]),
        )


_INSERT_MESSAGE = (
    "INSERT INTO messages (message_id, agent_id, sequence, kind, created_at, received_at, "
    "body, token, hash, prev_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_MESSAGE_JSONB = (
    "INSERT INTO messages (message_id, agent_id, sequence, kind, created_at, received_at, "
    "body, token, hash, prev_hash) VALUES (?, ?, ?, ?, ?, ?, CAST(? AS jsonb), ?, ?, ?)"
)


class SqlStore:
    """Base of the two stores; subclasses connect and say how to lock."""

    insert_message_sql = _INSERT_MESSAGE
    url: str

    def execute(self, sql: str, params: Sequence[object] = ()) -> _Cursor:
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        raise NotImplementedError

    def timestamp(self, moment: datetime) -> object:
        return moment.astimezone(UTC).isoformat()

    def read_time(self, moment: datetime) -> object:
        """A read's time as stored: fixed-width text in SQLite, so text order is time order."""
        return moment.astimezone(UTC).isoformat(timespec="microseconds")

    @contextlib.contextmanager
    def batch(self, agent_ids: Iterable[str] = ()) -> Iterator[StoreBatch]:
        raise NotImplementedError
        yield  # pragma: no cover

    def close(self) -> None:
        raise NotImplementedError

    # -- read side (summaries, tests) ---------------------------------------

    def message_count(self, agent_id: str | None = None) -> int:
        if agent_id is None:
            row = self.execute("SELECT count(*) FROM messages").fetchone()
        else:
            row = self.execute(
                "SELECT count(*) FROM messages WHERE agent_id = ?", (agent_id,)
            ).fetchone()
        return int(row[0])

    def sequences(self, agent_id: str) -> list[int]:
        """Stored sequences of one agent in arrival order (``received_at``, then insert)."""
        rows = self.execute(
            "SELECT sequence FROM messages WHERE agent_id = ? ORDER BY received_at, sequence",
            (agent_id,),
        ).fetchall()
        return [int(row[0]) for row in rows]

    def tokens(self, agent_id: str) -> list[str]:
        rows = self.execute(
            "SELECT token FROM messages WHERE agent_id = ? ORDER BY sequence", (agent_id,)
        ).fetchall()
        return [str(row[0]) for row in rows]

    def bodies(self, kind: str) -> Iterator[tuple[str, object]]:
        """(agent id, parsed JSON body) of every stored message of ``kind``, oldest first
        (by the agent's ``created_at``, then sequence)."""
        rows = self.execute(
            "SELECT agent_id, body FROM messages WHERE kind = ? "
            "ORDER BY created_at, agent_id, sequence",
            (kind,),
        ).fetchall()
        for agent_id, body in rows:
            yield str(agent_id), json.loads(body) if isinstance(body, str | bytes) else body

    def rejections(self) -> dict[str, int]:
        rows = self.execute("SELECT reason, count FROM rejections ORDER BY reason").fetchall()
        return {str(reason): int(count) for reason, count in rows}

    def agent_states(self) -> list[AgentState]:
        rows = self.execute(
            "SELECT agent_id, last_sequence, last_hash, gaps, chain_breaks, restarts "
            "FROM agent_state ORDER BY agent_id"
        ).fetchall()
        return [
            AgentState(
                agent_id=r[0],
                last_sequence=r[1],
                last_hash=r[2],
                gaps=r[3],
                chain_breaks=r[4],
                restarts=r[5],
            )
            for r in rows
        ]

    #: ``billing_reads``: the rows come in (device, time) order straight from the device
    #: index (see :data:`_SQLITE_BILLING_SQL`).
    billing_sql = _BILLING_SQL

    def billing_reads(self, since: datetime, until: datetime) -> Iterator[BillingRead]:
        """Reads collected in ``[since, until)``, by device id then time, streamed."""
        sql = self.billing_sql
        loads = json.loads
        parse_time = datetime.fromisoformat
        params = (self.read_time(since), self.read_time(until))
        for rows in self._slices(sql, params):
            # One parse per slice of rows, not one per read (the per-call cost dominated).
            # (Indexed, not zip(): CPython 3.11.2 crashed in a garbage collection during
            # this loop with zip(strict=True) under cProfile.)
            meters = loads("[" + ",".join([row[7] for row in rows]) + "]")
            for index, (device_id, at, serial, vendor, model, location, source, _) in enumerate(
                rows
            ):
                yield BillingRead(
                    device_id,
                    at if isinstance(at, datetime) else parse_time(at),
                    serial,
                    vendor,
                    model,
                    location,
                    source,
                    meters[index],
                )

    def _slices(self, sql: str, params: Sequence[object]) -> Iterator[list[Any]]:
        """The rows of ``sql`` in slices of a few thousand, never all at once."""
        raise NotImplementedError
        yield  # pragma: no cover

    def backfill_meter_reads(self) -> int:
        """Index reads stored before the ``meter_reads`` table existed; returns how many."""
        rows = self.execute(
            "SELECT message_id, body FROM messages WHERE kind = 'read' AND message_id NOT IN "
            "(SELECT message_id FROM meter_reads)"
        ).fetchall()
        with self.batch() as batch:
            for message_id, body in rows:
                parsed = json.loads(body) if isinstance(body, str) else body
                if isinstance(parsed, dict):
                    batch.insert_meter_read(message_id, parsed)
        return len(rows)

    def missing(self, agent_id: str) -> list[int]:
        rows = self.execute(
            "SELECT sequence FROM missing_sequences WHERE agent_id = ? ORDER BY sequence",
            (agent_id,),
        ).fetchall()
        return [int(row[0]) for row in rows]


class SqliteStore(SqlStore):
    """SQLite in WAL mode; ``synchronous=NORMAL`` (durable at checkpoints, never corrupt)."""

    billing_sql = _SQLITE_BILLING_SQL

    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path}"
        self.path = path
        with _failing(self.url, "cannot open", OSError, sqlite3.Error):
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            fresh = not _has_table(self._db, "meter_reads")
            self._db.executescript(_SQLITE_DDL + KEYRING_SQLITE_DDL)
            self._db.executescript(agents.SQLITE_DDL)
        if fresh:
            self.backfill_meter_reads()

    def _slices(self, sql: str, params: Sequence[object]) -> Iterator[list[Any]]:
        cursor = self._db.execute(sql, tuple(params))
        return iter(lambda: cursor.fetchmany(_SLICE), [])

    def execute(self, sql: str, params: Sequence[object] = ()) -> _Cursor:
        return self._db.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._db.executemany(sql, [tuple(row) for row in rows])

    @contextlib.contextmanager
    def batch(self, agent_ids: Iterable[str] = ()) -> Iterator[StoreBatch]:
        with _failing(self.url, "cannot begin a transaction", sqlite3.Error):
            self._db.execute("BEGIN IMMEDIATE")
        try:
            batch = StoreBatch(self)
            yield batch
            batch.flush()
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        with _failing(self.url, "cannot commit", sqlite3.Error):
            self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


class PostgresStore(SqlStore):
    """PostgreSQL through psycopg 3 (``pip install 'fleet-agent[postgres]'``)."""

    insert_message_sql = _INSERT_MESSAGE_JSONB

    def __init__(self, dsn: str) -> None:
        self.url = _redact(dsn)
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError(
                "--store postgresql://... needs psycopg: pip install 'fleet-agent[postgres]'"
            ) from exc
        self._errors = psycopg.Error
        with _failing(self.url, "cannot open", psycopg.Error):
            self._db = psycopg.connect(dsn, autocommit=True)
            fresh = self._db.execute("SELECT to_regclass('meter_reads')").fetchone() == (None,)
            for statement in (_POSTGRES_DDL + agents.POSTGRES_DDL + KEYRING_POSTGRES_DDL).split(
                ";"
            ):
                if statement.strip():
                    self._db.execute(statement)
        if fresh:
            self.backfill_meter_reads()

    def _slices(self, sql: str, params: Sequence[object]) -> Iterator[list[Any]]:
        """A server-side cursor: rows arrive in slices, never all at once."""
        try:
            with self._db.transaction(), self._db.cursor(name="billing_reads") as cursor:
                cursor.itersize = _SLICE
                cursor.execute(sql.replace("?", "%s"), tuple(params))
                while rows := cursor.fetchmany(_SLICE):
                    yield rows
        except self._errors as exc:
            raise StoreError(f"store {self.url}: query failed ({exc})") from exc

    def execute(self, sql: str, params: Sequence[object] = ()) -> _Cursor:
        cursor: _Cursor = self._db.execute(sql.replace("?", "%s"), tuple(params))
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            with self._db.cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), [tuple(row) for row in rows])

    def timestamp(self, moment: datetime) -> object:
        return moment.astimezone(UTC)

    def read_time(self, moment: datetime) -> object:
        return moment.astimezone(UTC)

    @contextlib.contextmanager
    def batch(self, agent_ids: Iterable[str] = ()) -> Iterator[StoreBatch]:
        try:
            with self._db.transaction():
                for agent_id in sorted(set(agent_ids)):
                    self._db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (agent_id,))
                batch = StoreBatch(self)
                yield batch
                batch.flush()
        except self._errors as exc:
            raise StoreError(f"store {self.url}: transaction failed ({exc})") from exc

    def close(self) -> None:
        self._db.close()


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return row.fetchone() is not None


def _redact(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    if "@" in dsn and "://" in dsn:
        scheme, rest = dsn.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else dsn
    return dsn


def open_store(url: str) -> SqlStore:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``postgresql://...``."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url)
    if url.startswith("sqlite://"):
        rest = url.removeprefix("sqlite://")
        if not rest.startswith("/") or rest == "/":
            raise StoreError(f"--store {url!r}: expected sqlite:///path/to/file.db")
        return SqliteStore(Path(rest[1:]))
    raise StoreError(
        f"--store {url!r}: expected sqlite:///path/to/file.db or postgresql://user@host/db"
    )
