"""The device inventory: one SQLite file (WAL mode) under the state directory.

What the agent knows about its fleet between runs, and what the daemon polls
from: devices (by stable device id), the addresses they answer on, the
credential profile that works for each, first and last seen, and a summary of
the last read (lifetime pages). Non-printer SNMP devices are counted by the
sweep, never stored.

Identity across IP churn (glpi-agent #71, #192): a device is found by its
stable id (serial, else MAC, else sysObjectID + sysName + 1284 id, from
:func:`mibs.identity.stable_device_id`), else by a known MAC. A printer that
answers on a new address is the same device (the outcome names the address it
moved from); two addresses answering for one device in the same sweep become
one device with two current addresses. Two *different* devices reporting the
same serial (different MACs: glpi-agent #652) are kept apart, the second under
``<id>~<mac>``, and both are flagged ``duplicate_serial`` because that breaks
billing imports.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog
from pydantic import BaseModel, ConfigDict, Field

from agent.errors import LocalError
from agent.state import STATE_DIR_ENV
from mibs.models import Identity, PrinterRead
from uploader.diskspace import private_file

log = structlog.get_logger("agent.inventory")
_NO_SPACE = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR})

SCHEMA_VERSION = 2


def out_of_space(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite failed because the volume is full (SQLITE_FULL)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL


_SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    serial TEXT,
    vendor TEXT,
    model TEXT,
    mac TEXT,
    sys_object_id TEXT,
    sys_name TEXT,
    location TEXT,
    firmware TEXT,
    credential_profile TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    duplicate_serial INTEGER NOT NULL DEFAULT 0,
    last_read_at TEXT,
    lifetime_pages INTEGER,
    last_read TEXT,
    first_read TEXT
);
CREATE INDEX IF NOT EXISTS devices_serial ON devices(serial);
CREATE INDEX IF NOT EXISTS devices_mac ON devices(mac);
CREATE TABLE IF NOT EXISTS addresses (
    address TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(device_id) ON DELETE CASCADE,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    current INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS addresses_device ON addresses(device_id);
"""


class InventoryError(LocalError):
    """The inventory file cannot be opened or is not ours; the message names the file."""


class InventoryFull(InventoryError):
    """A sighting cannot be written: no room on the inventory's disk (earlier ones are kept)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InventoryDevice(_Frozen):
    device_id: str
    serial: str | None
    vendor: str | None
    model: str | None
    mac: str | None
    sys_object_id: str | None
    sys_name: str | None
    location: str | None = Field(description="sysLocation, as the device reported it.")
    firmware: str | None
    address: str | None
    addresses: list[str]
    credential_profile: str | None
    first_seen: datetime
    last_seen: datetime
    duplicate_serial: bool
    last_read_at: datetime | None
    lifetime_pages: int | None
    start_page_count: int | None = Field(
        description="Lifetime pages of the first read kept: where the contract starts counting."
    )


class DiscoveryOutcome(_Frozen):
    """What recording one sighting did."""

    device_id: str
    new: bool
    moved_from: str | None = None
    duplicate_serial: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _mac_tag(mac: str | None, taken: int) -> str:
    return mac.replace(":", "") if mac else f"n{taken + 1}"


class Inventory:
    """The inventory file. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            private_file(self.path)  # and so its -wal and -shm files: 0600
            self._db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise InventoryError(
                f"inventory {self.path}: cannot open ({exc}); choose another --state-dir "
                f"or set {STATE_DIR_ENV}"
            ) from exc
        self._db.row_factory = sqlite3.Row
        try:
            try:
                self._prepare()
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in _NO_SPACE:
                    raise
                # A full disk: no room for the WAL's -shm file. Exclusive locking keeps
                # that index in memory, so the daemon starts (other commands cannot
                # read the inventory while it runs).
                log.warning("inventory.exclusive", path=str(self.path), error=str(exc))
                self._db.close()
                self._db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
                self._db.row_factory = sqlite3.Row
                self._db.execute("PRAGMA locking_mode = EXCLUSIVE")
                self._prepare()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise InventoryError(f"inventory {self.path}: not a usable database ({exc})") from exc
        self._closed = False

    def _prepare(self) -> None:
        db = self._db
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise InventoryError(
                f"inventory {self.path}: schema version {version} is newer than this agent "
                f"({SCHEMA_VERSION}); upgrade fleet-agent"
            )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(devices)")}
        if "first_read" not in columns:  # version 1 kept only a summary of the last read
            db.execute("ALTER TABLE devices ADD COLUMN first_read TEXT")
            db.execute("UPDATE devices SET last_read = NULL")
        if "location" not in columns:  # sysLocation, for the onboarding spreadsheet
            db.execute("ALTER TABLE devices ADD COLUMN location TEXT")
        if version != SCHEMA_VERSION:  # no write when current: it opens on a full disk
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._db.close()
            self._closed = True

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("inventory is closed")
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the state database, for the tables other modules keep
        beside the inventory's (the supply history: :mod:`agent.supply_store`)."""
        db = self._conn()
        with _transaction(db):
            yield db

    def connection(self) -> sqlite3.Connection:
        """The state database, for reads by modules that keep tables beside the inventory's."""
        return self._conn()

    # --- identity ------------------------------------------------------------------

    def _resolve(self, key: str | None, identity: Identity, address: str) -> tuple[str, bool]:
        """(device id to use, whether that id is a duplicate-serial sibling)."""
        db = self._conn()
        if key is None:
            row = db.execute(
                "SELECT device_id FROM devices WHERE mac = ? LIMIT 1", (identity.mac,)
            ).fetchone()
            return (row["device_id"] if row else f"ip:{address}"), False
        if not key.startswith("sn:"):
            return key, False
        family = db.execute(
            "SELECT device_id, mac FROM devices WHERE device_id = ? "
            "OR device_id LIKE ? ESCAPE '\\' ORDER BY device_id",
            (key, key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "~%"),
        ).fetchall()
        if not family:
            # Known by MAC before its serial was readable? Same device, keep its id.
            if identity.mac:
                row = db.execute(
                    "SELECT device_id FROM devices WHERE mac = ? AND serial IS NULL LIMIT 1",
                    (identity.mac,),
                ).fetchone()
                if row:
                    return row["device_id"], False
            return key, False
        for row in family:
            if row["mac"] is None or identity.mac is None or row["mac"] == identity.mac:
                return row["device_id"], len(family) > 1
        return f"{key}~{_mac_tag(identity.mac, len(family))}", True

    def record_discovery(
        self,
        address: str,
        identity: Identity,
        *,
        device_key: str | None,
        credential_profile: str | None,
        seen_at: datetime | None = None,
        sweep_started: datetime | None = None,
    ) -> DiscoveryOutcome:
        """Record that the printer ``identity`` answered on ``address``.

        ``device_key`` is :func:`mibs.identity.stable_device_id` of the identity
        (None when the device gives nothing stable; it is then known by address).
        ``sweep_started``: sightings of one device since then are extra
        addresses of the same sweep, not moves.
        """
        seen = seen_at or _now()
        sweep = _text(sweep_started) if sweep_started else _text(seen)
        stamp = _text(seen)
        try:
            return self._record_sighting(
                address, identity, device_key, credential_profile, stamp=stamp, sweep=sweep
            )
        except sqlite3.OperationalError as exc:
            if not out_of_space(exc):
                raise
            raise InventoryFull(
                f"inventory {self.path}: cannot record printer {address}, the disk is full "
                f"({exc}); printers recorded before are kept; free space in {self.path.parent} "
                "and discover again"
            ) from exc

    def _record_sighting(
        self,
        address: str,
        identity: Identity,
        device_key: str | None,
        credential_profile: str | None,
        *,
        stamp: str,
        sweep: str,
    ) -> DiscoveryOutcome:
        db = self._conn()
        with _transaction(db):
            device_id, duplicate = self._resolve(device_key, identity, address)
            existing = db.execute(
                "SELECT last_seen FROM devices WHERE device_id = ?", (device_id,)
            ).fetchone()
            moved_from = None
            if existing is None:
                db.execute(
                    "INSERT INTO devices (device_id, first_seen, last_seen) VALUES (?, ?, ?)",
                    (device_id, stamp, stamp),
                )
            elif existing["last_seen"] < sweep:
                previous = db.execute(
                    "SELECT address FROM addresses WHERE device_id = ? AND current = 1 "
                    "ORDER BY last_seen DESC LIMIT 1",
                    (device_id,),
                ).fetchone()
                if previous and previous["address"] != address:
                    moved_from = previous["address"]
                db.execute("UPDATE addresses SET current = 0 WHERE device_id = ?", (device_id,))
            db.execute(
                "UPDATE devices SET serial = ?, vendor = ?, model = ?, mac = ?, "
                "sys_object_id = ?, sys_name = ?, location = ?, firmware = ?, "
                "credential_profile = COALESCE(?, credential_profile), last_seen = ? "
                "WHERE device_id = ?",
                (
                    identity.serial,
                    identity.vendor,
                    identity.model,
                    identity.mac,
                    identity.sys_object_id,
                    identity.sys_name,
                    identity.location,
                    identity.firmware,
                    credential_profile,
                    stamp,
                    device_id,
                ),
            )
            db.execute(
                "INSERT INTO addresses (address, device_id, first_seen, last_seen, current) "
                "VALUES (?, ?, ?, ?, 1) ON CONFLICT(address) DO UPDATE SET "
                "first_seen = CASE WHEN device_id = excluded.device_id THEN first_seen "
                "ELSE excluded.first_seen END, "
                "device_id = excluded.device_id, last_seen = excluded.last_seen, current = 1",
                (address, device_id, stamp, stamp),
            )
            if duplicate and identity.serial:
                db.execute(
                    "UPDATE devices SET duplicate_serial = 1 WHERE serial = ?", (identity.serial,)
                )
        return DiscoveryOutcome(
            device_id=device_id,
            new=existing is None,
            moved_from=moved_from,
            duplicate_serial=duplicate,
        )

    # --- reads ---------------------------------------------------------------------

    def record_read(
        self, device_id: str, read: PrinterRead, *, credential_profile: str | None = None
    ) -> PrinterRead | None:
        """Keep the last read of ``device_id``, and its first one (the start page count).

        ``credential_profile``, the profile that answered, is remembered for the next read.
        Returns the last read kept before this one (None for the first read, or one that
        no longer validates): what meter anomalies are detected against. On a full disk
        the read is not kept here (it is in the outbox already): logged, not raised.
        """
        text = read.model_dump_json()
        db = self._conn()
        select = "SELECT last_read FROM devices WHERE device_id = ?"
        updated: int | None = None
        try:
            with _transaction(db):
                row = db.execute(select, (device_id,)).fetchone()
                updated = db.execute(
                    "UPDATE devices SET last_read_at = ?, last_read = ?, "
                    "first_read = COALESCE(first_read, ?), "
                    "lifetime_pages = COALESCE(?, lifetime_pages), "
                    "credential_profile = COALESCE(?, credential_profile) WHERE device_id = ?",
                    (
                        _text(read.collected_at),
                        text,
                        text,
                        read.counters.total,
                        credential_profile,
                        device_id,
                    ),
                ).rowcount
        except sqlite3.OperationalError as exc:
            if not out_of_space(exc):
                raise
            log.warning("inventory.write_failed", device_id=device_id, error=str(exc))
            row = db.execute(select, (device_id,)).fetchone()
        if updated == 0:
            raise InventoryError(f"inventory {self.path}: no device {device_id!r}")
        return _parsed(row["last_read"] if row else None)

    def last_read(self, device_id: str) -> PrinterRead | None:
        """The last read kept of ``device_id`` (None: none, or one that no longer validates)."""
        row = (
            self._conn()
            .execute("SELECT last_read FROM devices WHERE device_id = ?", (device_id,))
            .fetchone()
        )
        return _parsed(row["last_read"] if row else None)

    def stored_reads(self) -> list[PrinterRead]:
        """The first and the last read of every device that was read (oldest first).

        What ``fleet-agent eligibility --state-dir`` judges: the last read for the
        verdict, the first for the start page count.
        """
        reads: list[PrinterRead] = []
        rows = self._conn().execute(
            "SELECT first_read, last_read FROM devices WHERE last_read IS NOT NULL "
            "ORDER BY device_id"
        )
        for row in rows:
            texts = [row["first_read"], row["last_read"]]
            if texts[0] == texts[1] or texts[0] is None:
                texts = texts[1:]
            for text in texts:
                try:
                    reads.append(PrinterRead.model_validate_json(text))
                except ValueError as exc:
                    raise InventoryError(
                        f"inventory {self.path}: a stored read no longer validates ({exc}); "
                        "run the daemon or `fleet-agent discover --read` to refresh it"
                    ) from exc
        return reads

    # --- queries -------------------------------------------------------------------

    def devices(self) -> list[InventoryDevice]:
        db = self._conn()
        addresses: dict[str, list[str]] = {}
        for row in db.execute(
            "SELECT address, device_id FROM addresses WHERE current = 1 "
            "ORDER BY last_seen DESC, address"
        ):
            addresses.setdefault(row["device_id"], []).append(row["address"])
        result = []
        for row in db.execute(
            "SELECT *, json_extract(first_read, '$.counters.total') AS start_page_count "
            "FROM devices ORDER BY device_id"
        ):
            current = addresses.get(row["device_id"], [])
            result.append(
                InventoryDevice(
                    device_id=row["device_id"],
                    serial=row["serial"],
                    vendor=row["vendor"],
                    model=row["model"],
                    mac=row["mac"],
                    sys_object_id=row["sys_object_id"],
                    sys_name=row["sys_name"],
                    location=row["location"],
                    firmware=row["firmware"],
                    address=current[0] if current else None,
                    addresses=current,
                    credential_profile=row["credential_profile"],
                    first_seen=datetime.fromisoformat(row["first_seen"]),
                    last_seen=datetime.fromisoformat(row["last_seen"]),
                    duplicate_serial=bool(row["duplicate_serial"]),
                    last_read_at=(
                        datetime.fromisoformat(row["last_read_at"]) if row["last_read_at"] else None
                    ),
                    lifetime_pages=row["lifetime_pages"],
                    start_page_count=row["start_page_count"],
                )
            )
        return result

    def known_profiles(self) -> dict[str, str]:
        """Address -> the credential profile that last worked there (tried first next time)."""
        db = self._conn()
        rows = db.execute(
            "SELECT a.address, d.credential_profile FROM addresses a "
            "JOIN devices d USING (device_id) WHERE d.credential_profile IS NOT NULL"
        )
        return {row["address"]: row["credential_profile"] for row in rows}


def _parsed(text: str | None) -> PrinterRead | None:
    if text is None:
        return None
    try:
        return PrinterRead.model_validate_json(text)
    except ValueError:  # kept by an older agent: nothing to compare with
        return None


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")  # may fail too (a full disk): then rolled back like the rest
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
