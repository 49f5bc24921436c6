"""The durable outbox: signed envelopes wait here until the broker acknowledged them.

SQLite in WAL mode with ``synchronous=FULL``: :meth:`Outbox.submit` returns only
after the envelope (and the advanced chain state) is committed and fsynced, so
a read counts as collected only once it survives a crash. The sequence number
and the previous envelope's hash live in the same database and change in the
same transaction as the insert, so a crash can never fork or skip the chain.

Bound and policy (see docs/schema/envelope.md, "Durable outbox"):

* Nothing already queued is ever dropped: dropping would lose signed data and
  punch a hole in the hash chain that the backend would report as loss.
* Non-billing kinds (``event``, ``status``) are refused with :class:`QueueFull`
  once the outbox is within the billing reserve (5 %, at least one slot) of
  ``max_messages``; billing ``read`` messages may use the reserve and are
  refused only at ``max_messages``. A refused read stays the collector's to
  retry (page counters are cumulative, so the next read carries the pages).
* From ``warn_ratio * max_messages`` on, ``outbox.nearly_full`` is logged (once
  per crossing) and :attr:`Outbox.nearly_full` is true for health reports.

A full disk (see docs/operations.md, "A full disk"):

* ``reserve_bytes``: a preallocated file (``outbox.db.reserve``) the outbox deletes
  the first time a write fails for lack of space, and writes again; so acks and
  some hours of billing reads fit after the disk filled. While it is released,
  only billing reads are queued. :meth:`maintain` puts it back once there is room.
* An ack that cannot be written is remembered: those messages count as gone
  (:meth:`pending` skips them, :meth:`depth` excludes them) and their deletion is
  retried by every later ack and by :meth:`maintain`.
* Opening an existing outbox on a full disk works (read-only until space
  returns), so the queue can still be drained.
* The WAL is bounded (``journal_size_limit``, a checkpoint every 256 pages) and
  :meth:`maintain` returns the pages of a drained queue to the file system
  (incremental vacuum, a little at a time). :meth:`size_bytes` is the database
  plus its WAL, for a metric.
* Files are created ``0600`` (the database, its WAL and shared-memory files).

Threads: every method takes an internal lock, so the outbox may be called from
any thread (for example via ``asyncio.to_thread``), one call at a time. One
process owns a file: a second :class:`Outbox` on the same file raises
:class:`QueueLocked`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import structlog

from uploader.diskspace import DiskReserve, private_file
from uploader.envelope import SignedMessage, Signer, envelope_hash
from uploader.errors import (
    QueueClosed,
    QueueCorrupt,
    QueueDiskFull,
    QueueError,
    QueueFull,
    QueueLocked,
)
from uploader.outgoing import Outgoing

__all__ = ["Outbox"]

_T = TypeVar("_T")

_log = structlog.get_logger("uploader.queue")

#: PRAGMA application_id of an outbox ("FAOB"), so a foreign SQLite file is refused.
APPLICATION_ID = 0x46414F42
SCHEMA_USER_VERSION = 1
_BILLING_KINDS: frozenset[str] = frozenset({"read"})
_ACK_CHUNK = 500
#: Bound of the WAL after a checkpoint, and the checkpoint interval in pages.
JOURNAL_SIZE_LIMIT = 1024 * 1024
_AUTOCHECKPOINT_PAGES = 256
#: Pages returned to the file system per :meth:`Outbox.maintain` call (4 MiB).
_VACUUM_PAGES = 1024
RESERVE_SUFFIX = ".reserve"
#: Free space from which a disk that was full counts as usable again.
_SPACE_AGAIN = 256 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chain (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    agent_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    last_hash TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    sequence INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL,
    token TEXT NOT NULL
);
"""


class Outbox:
    """Durable, bounded, signed-envelope queue in one SQLite file."""

    def __init__(
        self,
        path: Path,
        signer: Signer,
        *,
        max_messages: int = 100_000,
        warn_ratio: float = 0.8,
        reserve_bytes: int = 0,
    ) -> None:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        if not 0.0 < warn_ratio <= 1.0:
            raise ValueError("warn_ratio must be in (0, 1]")
        self._path = path
        self._signer = signer
        self._max = max_messages
        self._warn_at = max(1, int(max_messages * warn_ratio))
        self._nonbilling_max = max_messages - max(1, max_messages // 20)
        self._lock = threading.Lock()
        self._closed = False
        self._reserve = DiskReserve(path.with_name(path.name + RESERVE_SUFFIX), reserve_bytes)
        self._deferred_acks: set[str] = set()
        self.disk_full = False  # the last write failed for lack of space
        self._lock_fd = self._acquire_file_lock()
        try:
            self._db = self._open()
            self._sequence, self._last_hash, self._depth = self._load_state()
        except BaseException:
            os.close(self._lock_fd)
            raise
        self._warned = self._depth >= self._warn_at
        if not self.disk_full:
            self._reserve.restore()
        _log.info("outbox.opened", path=str(path), depth=self._depth, sequence=self._sequence)

    # -- opening ------------------------------------------------------------

    def _acquire_file_lock(self) -> int:
        lock_path = self._path.with_name(self._path.name + ".lock")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise QueueError(f"cannot create the outbox ({exc.strerror})", path=self._path) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise QueueLocked("the outbox is in use by another process", path=self._path) from None
        return fd

    def _open(self) -> sqlite3.Connection:
        if self._path.exists() and not os.access(self._path, os.R_OK | os.W_OK):
            # Said here: with exclusive locking SQLite reports it only as an I/O error.
            raise QueueError(
                "cannot write the outbox: the file is readonly for this user", path=self._path
            )
        try:
            private_file(self._path)
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except OSError as exc:
            raise QueueError(f"cannot create the outbox ({exc.strerror})", path=self._path) from exc
        except sqlite3.Error as exc:
            raise QueueError(f"cannot open the outbox ({exc})", path=self._path) from exc
        try:
            self._prepare(db)
        except BaseException:
            db.close()
            raise
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        try:
            db.execute("PRAGMA busy_timeout = 5000")
            # One process owns the outbox (the flock above). Exclusive locking keeps the
            # WAL index in memory instead of a -shm file, so an outbox still opens, and
            # can be read and drained, on a disk with no byte left.
            db.execute("PRAGMA locking_mode = EXCLUSIVE")
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            app_id, version = (
                db.execute("PRAGMA application_id").fetchone()[0],
                db.execute("PRAGMA user_version").fetchone()[0],
            )
        except sqlite3.DatabaseError as exc:
            raise QueueCorrupt(f"not a usable SQLite outbox ({exc})", path=self._path) from exc
        if check != "ok":
            raise QueueCorrupt(f"fails the SQLite integrity check ({check})", path=self._path)
        is_new = app_id == 0 and version == 0 and not _has_tables(db)
        if not is_new and (app_id, version) != (APPLICATION_ID, SCHEMA_USER_VERSION):
            raise QueueCorrupt(
                f"not a fleet-agent outbox (application_id {app_id:#x}, user_version {version})",
                path=self._path,
            )
        try:
            if is_new:
                db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before any table exists
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            db.execute("PRAGMA synchronous = FULL")
            db.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            db.execute(f"PRAGMA wal_autocheckpoint = {_AUTOCHECKPOINT_PAGES}")
            private_file(self._path.with_name(self._path.name + "-wal"))
            if is_new:
                with _transaction(db):
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    db.execute(f"PRAGMA user_version = {SCHEMA_USER_VERSION}")
            else:
                # Prove the file is writable now, not at the first read of the day.
                self._retry_on_full(lambda: _touch(db))
        except QueueDiskFull:
            if is_new:
                raise
            # What is queued can still be sent (and what was sent, remembered): start.
            self.disk_full = True
            _log.error("outbox.disk_full", path=str(self._path), at="open")
            mode = "wal"
        except sqlite3.Error as exc:
            raise _translate(exc, self._path, "cannot write the outbox") from exc
        except OSError as exc:
            raise QueueError(f"cannot create the outbox ({exc.strerror})", path=self._path) from exc
        if mode != "wal":
            raise QueueError(f"cannot switch the outbox to WAL (got {mode!r})", path=self._path)

    def _load_state(self) -> tuple[int, str | None, int]:
        db = self._db
        try:
            row = db.execute(
                "SELECT agent_id, sequence, last_hash FROM chain WHERE id = 1"
            ).fetchone()
            depth = db.execute("SELECT count(*) FROM messages").fetchone()[0]
            newest = db.execute(
                "SELECT sequence, token FROM messages ORDER BY sequence DESC LIMIT 1"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise QueueCorrupt(f"unreadable outbox tables ({exc})", path=self._path) from exc
        if row is None:
            if newest is not None:
                raise QueueCorrupt("messages without chain state", path=self._path)
            return 0, None, 0
        agent_id, sequence, last_hash = row
        if agent_id != self._signer.agent_id:
            raise QueueError(
                f"belongs to agent {agent_id!r}, not {self._signer.agent_id!r}; "
                "each agent id keeps its own outbox",
                path=self._path,
            )
        if newest is not None and (
            newest[0] > sequence
            or (newest[0] == sequence and envelope_hash(newest[1]) != last_hash)
        ):
            raise QueueCorrupt(
                f"chain state (sequence {sequence}) disagrees with the newest message "
                f"(sequence {newest[0]})",
                path=self._path,
            )
        return int(sequence), last_hash, int(depth)

    # -- public API ---------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def max_messages(self) -> int:
        return self._max

    @property
    def nearly_full(self) -> bool:
        """True from ``warn_ratio * max_messages`` on; for health reports."""
        return self._depth >= self._warn_at

    def use_signer(self, signer: Signer) -> None:
        """Sign what is submitted from now on with ``signer``: the agent's key was rotated.

        The chain goes on (sequence and ``prev_hash`` do not restart); what is already
        queued keeps the old key's signature. The agent id must stay the same.
        """
        if signer.agent_id != self._signer.agent_id:
            raise ValueError(
                f"outbox of agent {self._signer.agent_id!r} cannot sign as {signer.agent_id!r}"
            )
        with self._lock:
            self._signer = signer

    def submit(self, message: Outgoing) -> SignedMessage:
        """Sign and durably queue one message; it is on disk when this returns."""
        return self.submit_many([message])[0]

    def submit_many(self, items: Sequence[Outgoing]) -> list[SignedMessage]:
        """Sign and queue a batch in one transaction (one fsync): all or nothing.

        Raises :class:`QueueFull` (nothing written) if any item would exceed its
        kind's bound, :class:`QueueDiskFull` if the disk is full.
        """
        with self._lock:
            self._check_open()
            self._admit(items)
            now = datetime.now(UTC)
            sequence, last_hash = self._sequence, self._last_hash
            signed: list[SignedMessage] = []
            for item in items:
                sequence += 1
                message = self._signer.sign(
                    kind=item.kind,
                    body=item.to_body(),
                    sequence=sequence,
                    prev_hash=last_hash,
                    now=now,
                )
                last_hash = envelope_hash(message.token)
                signed.append(message)
            if not signed:
                return signed
            rows = [
                (m.sequence, m.message_id, m.kind, m.created_at.isoformat(), m.token)
                for m in signed
            ]
            if self._reserve.released and any(i.kind not in _BILLING_KINDS for i in items):
                raise QueueDiskFull(
                    "the disk is nearly full: its reserve holds billing reads only; "
                    "nothing was written",
                    path=self._path,
                )

            def insert() -> None:
                with _transaction(self._db):
                    self._db.executemany(
                        "INSERT INTO messages (sequence, message_id, kind, created_at, token) "
                        "VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
                    self._db.execute(
                        "INSERT INTO chain (id, agent_id, sequence, last_hash) VALUES (1, ?, ?, ?) "
                        "ON CONFLICT (id) DO UPDATE SET sequence = excluded.sequence, "
                        "last_hash = excluded.last_hash",
                        (self._signer.agent_id, sequence, last_hash),
                    )

            try:
                self._retry_on_full(insert, doing="cannot queue the message")
            except QueueError as exc:
                _log.error("outbox.write_failed", path=str(self._path), error=str(exc))
                raise
            self._sequence, self._last_hash = sequence, last_hash
            self._depth += len(signed)
            self._note_depth()
            return signed

    def pending(self, limit: int) -> list[SignedMessage]:
        """Up to ``limit`` unacknowledged messages, oldest (lowest sequence) first."""
        with self._lock:
            self._check_open()
            try:
                rows = self._db.execute(
                    "SELECT sequence, message_id, kind, created_at, token FROM messages "
                    "ORDER BY sequence LIMIT ?",
                    (max(0, limit) + len(self._deferred_acks),),
                ).fetchall()
            except sqlite3.Error as exc:
                raise _translate(exc, self._path, "cannot read the outbox") from exc
            if self._deferred_acks:
                rows = [row for row in rows if row[1] not in self._deferred_acks]
            rows = rows[: max(0, limit)]
        return [
            SignedMessage(
                sequence=seq,
                message_id=mid,
                kind=kind,
                created_at=datetime.fromisoformat(created),
                token=token,
            )
            for seq, mid, kind, created, token in rows
        ]

    def ack(self, message_ids: Sequence[str]) -> None:
        """Remove acknowledged messages (one transaction). Unknown ids are ignored.

        On a full disk the removal is remembered and retried (by later acks and
        :meth:`maintain`): the messages count as gone at once and are not sent again.
        """
        with self._lock:
            self._check_open()
            new = [mid for mid in dict.fromkeys(message_ids) if mid not in self._deferred_acks]
            try:
                removed = self._retry_on_full(
                    lambda: self._delete(sorted(self._deferred_acks), new),
                    doing="cannot remove acknowledged messages",
                )
            except QueueDiskFull:
                waiting = self._count_present(new)
                self._deferred_acks.update(new)
                self._depth -= waiting
                _log.warning(
                    "outbox.ack_deferred",
                    path=str(self._path),
                    deferred=len(self._deferred_acks),
                    detail="the disk is full; the acknowledged messages are removed later",
                )
                return
            self._depth -= removed
            if self._deferred_acks:
                _log.info(
                    "outbox.acks_written", path=str(self._path), count=len(self._deferred_acks)
                )
                self._deferred_acks.clear()
            if self._warned and self._depth < self._warn_at:
                self._warned = False
                _log.info("outbox.recovered", path=str(self._path), depth=self._depth)

    def maintain(self) -> None:
        """Housekeeping, from a worker thread every few seconds; never raises for a full disk.

        Retries remembered acks; once the queue is drained, returns free pages to
        the file system (a little at a time) and truncates the WAL; puts the
        reserve back when there is room for it.
        """
        with self._lock:
            self._check_open()
            if self._deferred_acks:
                try:
                    self._retry_on_full(
                        lambda: self._delete(sorted(self._deferred_acks), []),
                        doing="cannot remove acknowledged messages",
                    )
                except QueueDiskFull:
                    return
                written = len(self._deferred_acks)
                _log.info("outbox.acks_written", path=str(self._path), count=written)
                self._deferred_acks.clear()
            if self._depth == 0:
                try:
                    self._vacuum_step()
                except sqlite3.Error as exc:
                    error = _translate(exc, self._path, "cannot return free pages")
                    if isinstance(error, QueueDiskFull):
                        return
                    raise error from exc
            if self.disk_full and _free_bytes(self._path.parent) > _SPACE_AGAIN:
                self.disk_full = False
            if self._reserve.released:
                self._reserve.restore()

    def _vacuum_step(self) -> None:
        db = self._db
        free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
        if int(db.execute("PRAGMA auto_vacuum").fetchone()[0]) != 2:
            # An outbox made before incremental vacuum: convert it while it is empty.
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")
            db.execute("VACUUM")
            _log.info("outbox.vacuumed", path=str(self._path), mode="converted")
        elif free:
            # executescript steps the pragma to its end; execute() would free one page
            db.executescript(f"PRAGMA incremental_vacuum({_VACUUM_PAGES});")
            _log.info("outbox.vacuumed", path=str(self._path), pages=min(free, _VACUUM_PAGES))
        else:
            return
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()

    def size_bytes(self) -> int:
        """The database file plus its WAL, in bytes (the reserve not included)."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += self._path.with_name(self._path.name + suffix).stat().st_size
        return total

    @property
    def deferred_acks(self) -> int:
        """Acknowledged messages whose removal waits for disk space."""
        return len(self._deferred_acks)

    @property
    def reserve_released(self) -> bool:
        return self._reserve.released

    def accepts(self, kind: str) -> bool:
        """False for a non-billing kind while the reserve is released (billing reads only)."""
        return kind in _BILLING_KINDS or not self._reserve.released

    # -- full disk ----------------------------------------------------------------

    def _retry_on_full(
        self, write: Callable[[], _T], *, doing: str = "cannot write the outbox"
    ) -> _T:
        """Run ``write``; on a full disk release the reserve once and run it again."""
        for attempt in range(2):
            try:
                result = write()
            except sqlite3.Error as exc:
                error = _translate(exc, self._path, doing)
                if isinstance(error, QueueDiskFull) and attempt == 0 and self._reserve.release():
                    continue
                if isinstance(error, QueueDiskFull):
                    self.disk_full = True
                raise error from exc
            self.disk_full = False
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _delete(self, already_counted: Sequence[str], new: Sequence[str]) -> int:
        """Delete both lists in one transaction; the number of ``new`` rows removed."""
        removed = 0
        with _transaction(self._db):
            for ids, count in ((already_counted, False), (new, True)):
                for start in range(0, len(ids), _ACK_CHUNK):
                    chunk = list(ids[start : start + _ACK_CHUNK])
                    marks = ",".join("?" * len(chunk))
                    cursor = self._db.execute(
                        f"DELETE FROM messages WHERE message_id IN ({marks})",  # noqa: S608 - only placeholders
                        chunk,
                    )
                    if count:
                        removed += cursor.rowcount
        return removed

    def _count_present(self, ids: Sequence[str]) -> int:
        present = 0
        for start in range(0, len(ids), _ACK_CHUNK):
            chunk = list(ids[start : start + _ACK_CHUNK])
            marks = ",".join("?" * len(chunk))
            present += self._db.execute(
                f"SELECT count(*) FROM messages WHERE message_id IN ({marks})",  # noqa: S608 - only placeholders
                chunk,
            ).fetchone()[0]
        return present

    def depth(self) -> int:
        """Messages waiting for a broker acknowledgement."""
        with self._lock:
            self._check_open()
            return self._depth

    def oldest_age(self, now: datetime | None = None) -> float | None:
        """Seconds since the oldest waiting message was created; ``None`` when empty."""
        with self._lock:
            self._check_open()
            try:
                row = self._db.execute(
                    "SELECT created_at FROM messages ORDER BY sequence LIMIT 1"
                ).fetchone()
            except sqlite3.Error as exc:
                raise _translate(exc, self._path, "cannot read the outbox") from exc
        if row is None:
            return None
        moment = now if now is not None else datetime.now(UTC)
        return (moment - datetime.fromisoformat(row[0])).total_seconds()

    def close(self) -> None:
        """Close the database and release the file lock; later calls raise QueueClosed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._db.close()
            finally:
                os.close(self._lock_fd)
            _log.info("outbox.closed", path=str(self._path), depth=self._depth)

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise QueueClosed("the outbox is closed", path=self._path)

    def _admit(self, items: Sequence[Outgoing]) -> None:
        depth = self._depth
        for kind in (item.kind for item in items):
            bound = self._max if kind in _BILLING_KINDS else self._nonbilling_max
            if depth >= bound:
                _log.error(
                    "outbox.full",
                    path=str(self._path),
                    kind=kind,
                    depth=self._depth,
                    max_messages=self._max,
                )
                what = "billing reads" if kind in _BILLING_KINDS else f"{kind} messages"
                raise QueueFull(
                    f"outbox full for {what} ({self._depth} of {self._max} waiting); "
                    "is the broker reachable?",
                    path=self._path,
                    depth=self._depth,
                    max_messages=self._max,
                )
            depth += 1

    def _note_depth(self) -> None:
        if not self._warned and self._depth >= self._warn_at:
            self._warned = True
            _log.warning(
                "outbox.nearly_full",
                path=str(self._path),
                depth=self._depth,
                max_messages=self._max,
            )


def _free_bytes(directory: Path) -> int:
    try:
        stats = os.statvfs(directory)
    except OSError:
        return 0
    return stats.f_bavail * stats.f_frsize


def _touch(db: sqlite3.Connection) -> None:
    with _transaction(db):
        db.execute("UPDATE chain SET id = id WHERE id = 1")


def _has_tables(db: sqlite3.Connection) -> bool:
    count: int = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return count > 0


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def _translate(exc: sqlite3.Error, path: Path, doing: str) -> QueueError:
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if code is not None else None  # extended codes keep it in the low byte
    if primary == sqlite3.SQLITE_FULL:
        return QueueDiskFull(f"{doing}: the disk is full; nothing was written", path=path)
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return QueueCorrupt(f"{doing}: the file is damaged ({exc})", path=path)
    if primary == sqlite3.SQLITE_IOERR:
        return QueueError(f"{doing}: a disk write failed ({exc}); nothing was written", path=path)
    return QueueError(f"{doing} ({exc})", path=path)
