"""Supply history in the agent's state database (beside the inventory, same SQLite file).

Tables:

* ``supplies(device_id, supply_index, description, type, supply_class, colorant,
  address)``: what each tracked supply is, as last read;
* ``supply_points(device_id, supply_index, seq, at, point)``: the compact history
  (:func:`mibs.supply_history.add_point`: a point per day or per change, at most
  :data:`mibs.supply_history.MAX_POINTS` per supply), ``point`` a JSON
  :class:`~mibs.supply_history.SupplyPoint`;
* ``supply_marks(key, kind, at)``: what was already sent (``replaced`` and
  ``order`` events), so that a restart or another read sends nothing twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime

import structlog
from pydantic import BaseModel, ConfigDict

from agent.inventory import Inventory, InventoryError, out_of_space
from mibs.models import PrinterRead, Supply
from mibs.supply_history import MAX_POINTS, SupplyPoint, add_point, point_from_supply
from mibs.supply_report import History, tracked

_DDL = """
CREATE TABLE IF NOT EXISTS supplies (
    device_id TEXT NOT NULL, supply_index INTEGER NOT NULL, description TEXT,
    type TEXT NOT NULL, supply_class TEXT NOT NULL, colorant TEXT, address TEXT,
    PRIMARY KEY (device_id, supply_index));
CREATE TABLE IF NOT EXISTS supply_points (
    device_id TEXT NOT NULL, supply_index INTEGER NOT NULL, seq INTEGER NOT NULL,
    at TEXT NOT NULL, point TEXT NOT NULL, PRIMARY KEY (device_id, supply_index, seq));
CREATE TABLE IF NOT EXISTS supply_marks (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, at TEXT NOT NULL);
"""

_log = structlog.get_logger("agent.supply_store")


class TrackedSupply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: str
    supply_index: int
    description: str | None
    type: str
    supply_class: str
    colorant: str | None
    address: str | None


class SupplyStore:
    """The supply tables of one inventory file."""

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory
        self._ready = False
        try:
            self._create()
        except sqlite3.OperationalError as exc:
            if not out_of_space(exc):
                raise
            # A full volume at start-up: the tables are made by the first write with space.
            _log.warning("supplies.tables_not_created", path=str(inventory.path), error=str(exc))

    def _create(self) -> None:
        """Create the tables once; raises SQLite's SQLITE_FULL error on a full volume."""
        if not self._ready:
            self._inventory.connection().executescript(_DDL)
            self._ready = True

    def _readable(self) -> bool:
        """Whether the tables exist (an empty history until the volume has room for them)."""
        try:
            self._create()
        except sqlite3.OperationalError as exc:
            if not out_of_space(exc):
                raise
        return self._ready

    def record(self, device_id: str, read: PrinterRead) -> list[Supply]:
        """Add the read's consumables to their histories; returns the supplies recorded."""
        recorded = [s for s in read.supplies if tracked(s)]
        self._create()
        with self._inventory.transaction() as db:
            for supply in recorded:
                db.execute(
                    "INSERT INTO supplies VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(device_id, supply_index) DO UPDATE SET "
                    "description = excluded.description, type = excluded.type, "
                    "supply_class = excluded.supply_class, colorant = excluded.colorant, "
                    "address = excluded.address",
                    (
                        device_id,
                        supply.index,
                        supply.description,
                        supply.type,
                        supply.supply_class,
                        supply.colorant,
                        read.address,
                    ),
                )
                new = point_from_supply(supply, read.collected_at, read.counters.total)
                row = db.execute(
                    "SELECT seq, point FROM supply_points WHERE device_id = ? AND "
                    "supply_index = ? ORDER BY seq DESC LIMIT 1",
                    (device_id, supply.index),
                ).fetchone()
                if row is None:
                    seq, merged = 0, [new]
                else:
                    last = SupplyPoint.model_validate_json(row["point"])
                    seq, merged = row["seq"], add_point([last], new)
                if row is not None and merged == [last]:
                    continue  # an older read arriving late
                if row is not None and len(merged) == 1:
                    db.execute(
                        "UPDATE supply_points SET at = ?, point = ? WHERE device_id = ? "
                        "AND supply_index = ? AND seq = ?",
                        (_text(new.at), new.model_dump_json(), device_id, supply.index, seq),
                    )
                    continue
                seq = seq + 1 if row is not None else 0
                db.execute(
                    "INSERT INTO supply_points VALUES (?, ?, ?, ?, ?)",
                    (device_id, supply.index, seq, _text(new.at), new.model_dump_json()),
                )
                db.execute(
                    "DELETE FROM supply_points WHERE device_id = ? AND supply_index = ? "
                    "AND seq <= ?",
                    (device_id, supply.index, seq - MAX_POINTS),
                )
        return recorded

    def points(self, device_id: str, supply_index: int) -> list[SupplyPoint]:
        if not self._readable():
            return []
        rows = self._inventory.connection().execute(
            "SELECT point FROM supply_points WHERE device_id = ? AND supply_index = ? ORDER BY seq",
            (device_id, supply_index),
        )
        try:
            return [SupplyPoint.model_validate_json(row["point"]) for row in rows]
        except ValueError as exc:
            raise InventoryError(
                f"inventory {self._inventory.path}: a stored supply point no longer "
                f"validates ({exc})"
            ) from exc

    def supplies(self) -> list[TrackedSupply]:
        if not self._readable():
            return []
        rows = self._inventory.connection().execute(
            "SELECT * FROM supplies ORDER BY device_id, supply_index"
        )
        return [TrackedSupply.model_validate(dict(row)) for row in rows]

    def histories(self) -> list[History]:
        """Every tracked supply with its points (what ``fleet-agent supplies`` reports)."""
        found = []
        for row in self.supplies():
            points = self.points(row.device_id, row.supply_index)
            if not points:
                continue
            last = points[-1]
            supply = Supply(
                index=row.supply_index,
                description=row.description,
                type=row.type,
                supply_class="consumed",
                colorant=row.colorant,
                max_capacity=None,
                level=None,
                percent=last.percent,
                state=last.state,
                part_number=last.part_number,
                cartridge_serial=last.cartridge_serial,
            )
            found.append(History(row.device_id, row.address, supply, points))
        return found

    def orders(self) -> list[str]:
        """The order ids already sent."""
        if not self._readable():
            return []
        rows = self._inventory.connection().execute(
            "SELECT key FROM supply_marks WHERE kind = 'order' ORDER BY key"
        )
        return [row["key"].removeprefix("order/") for row in rows]

    def marked(self, key: str) -> bool:
        if not self._readable():
            return False
        row = (
            self._inventory.connection()
            .execute("SELECT 1 FROM supply_marks WHERE key = ?", (key,))
            .fetchone()
        )
        return row is not None

    def mark(self, keys: Iterable[tuple[str, str]]) -> None:
        """Remember ``(key, kind)`` pairs as sent."""
        now = _text(datetime.now(UTC))
        self._create()
        with self._inventory.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO supply_marks VALUES (?, ?, ?)",
                [(key, kind, now) for key, kind in keys],
            )


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
