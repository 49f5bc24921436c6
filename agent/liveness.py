"""Device liveness: ``device_silent`` after N missed scheduled reads, ``device_back`` after.

The core is one pure function, :func:`after_read`: a device's
:class:`DeviceLiveness` and the outcome of one scheduled read in, the next
state and the event to send (if any) out. A device becomes silent when it
misses ``liveness.device_silent_after`` reads in a row (one ``device_silent``),
and is back at its first answered read after that (one ``device_back``). A
device that misses fewer reads and answers again sends nothing.

:class:`LivenessTracker` keeps the states in the agent's state database (table
``device_liveness`` beside the inventory's), so a restarted daemon goes on
counting and never reports one outage twice. The collector submits the event
to the durable outbox first and only then is the state saved
(:meth:`~LivenessTracker.sent`): a crash in between sends the event again after
the restart, with the same ``since`` (the outage's identity), which the backend
stores once.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import structlog

from agent.inventory import Inventory, InventoryError, out_of_space
from mibs.events import DeviceBack, DeviceSilent
from mibs.reasons import Reason

log = structlog.get_logger("agent.liveness")

_DDL = """
CREATE TABLE IF NOT EXISTS device_liveness (
    device_id TEXT PRIMARY KEY, misses INTEGER NOT NULL, since TEXT, silent INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class DeviceLiveness:
    """One device's run of missed scheduled reads."""

    device_id: str
    misses: int = 0  # missed reads in a row (0: the last read answered)
    since: datetime | None = None  # the first miss of the current run
    silent: bool = False  # device_silent was sent for this run


LivenessEvent = DeviceSilent | DeviceBack


def after_read(
    state: DeviceLiveness,
    *,
    answered: bool,
    at: datetime,
    address: str,
    threshold: int,
    last_answered_at: datetime | None,
    reason: Reason | None = None,
) -> tuple[DeviceLiveness, LivenessEvent | None]:
    """The device's state after one scheduled read at ``at``, and the event it causes.

    ``last_answered_at`` is the device's last answered read before this one (the
    inventory's), reported in the events.
    """
    if answered:
        after = DeviceLiveness(state.device_id)
        if not state.silent or state.since is None:
            return after, None
        return after, DeviceBack(
            device_id=state.device_id,
            address=address,
            since=state.since,
            missed_reads=state.misses,
            last_answered_at=last_answered_at,
            back_at=at,
        )
    missed = replace(state, misses=state.misses + 1, since=state.since or at)
    if state.silent or missed.misses < threshold:
        return missed, None
    assert missed.since is not None
    return replace(missed, silent=True), DeviceSilent(
        device_id=state.device_id,
        address=address,
        since=missed.since,
        missed_reads=missed.misses,
        last_answered_at=last_answered_at,
        reason=reason,
    )


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="microseconds")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class LivenessTracker:
    """The liveness state of every device: in memory, and in the state database.

    Two reads of one device may overlap (a meter run and a supply run), so a
    state changes in memory at once (:meth:`update`: the second read sees the
    first one's outcome and no event is sent twice), and reaches the disk only
    once no event of that device is still on its way to the outbox
    (:meth:`sent`): the database never says an event was sent before it is
    durable. A state is written only when it changed (a fleet that answers
    costs no writes).
    """

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory
        self._ready = False
        rows = []
        try:
            self._create()
            rows = (
                inventory.connection()
                .execute("SELECT device_id, misses, since, silent FROM device_liveness")
                .fetchall()
            )
        except sqlite3.OperationalError as exc:
            if not out_of_space(exc):
                raise InventoryError(f"inventory {inventory.path}: liveness ({exc})") from exc
            # A full volume at start-up: the table is made by the first write with room.
            log.warning("liveness.table_not_created", path=str(inventory.path), error=str(exc))
        except sqlite3.Error as exc:
            raise InventoryError(f"inventory {inventory.path}: liveness ({exc})") from exc
        self._saved = {
            row[0]: DeviceLiveness(row[0], row[1], _time(row[2]), bool(row[3])) for row in rows
        }
        self._states = dict(self._saved)
        self._pending: dict[str, int] = {}

    def _create(self) -> None:
        """Create the table once; raises SQLite's SQLITE_FULL error on a full volume."""
        if not self._ready:
            self._inventory.connection().executescript(_DDL)
            self._ready = True

    def state(self, device_id: str) -> DeviceLiveness:
        return self._states.get(device_id) or DeviceLiveness(device_id)

    def silent(self) -> list[str]:
        """Device ids currently reported silent."""
        return sorted(d for d, state in self._states.items() if state.silent)

    def update(self, state: DeviceLiveness, *, event: bool) -> None:
        """Take ``state`` now; with ``event``, its event is being submitted (call
        :meth:`sent` or :meth:`failed` once it is durable or lost). Without, it is saved."""
        self._states[state.device_id] = state
        if event:
            self._pending[state.device_id] = self._pending.get(state.device_id, 0) + 1
        else:
            self._save(state.device_id)

    def sent(self, device_id: str) -> None:
        """The event of an :meth:`update` is in the outbox: the state may reach the disk."""
        self._done(device_id)
        self._save(device_id)

    def failed(self, before: DeviceLiveness) -> None:
        """The event could not be queued: back to ``before``, so a later read sends it."""
        self._done(before.device_id)
        self._states[before.device_id] = before

    def _done(self, device_id: str) -> None:
        left = self._pending.get(device_id, 0) - 1
        if left > 0:
            self._pending[device_id] = left
        else:
            self._pending.pop(device_id, None)

    def _save(self, device_id: str) -> None:
        """Write the device's state unless an event of it is pending or nothing changed.

        On a full disk it is kept in memory only (logged): after a restart an event of
        this outage may be sent again, with the same ``since``, which the backend
        stores once.
        """
        if device_id in self._pending:
            return
        state = self.state(device_id)
        if (self._saved.get(device_id) or DeviceLiveness(device_id)) == state:
            return
        healthy = state == DeviceLiveness(device_id)
        try:
            self._create()
            with self._inventory.transaction() as db:
                if healthy:  # answering: nothing to remember
                    db.execute("DELETE FROM device_liveness WHERE device_id = ?", (device_id,))
                else:
                    db.execute(
                        "INSERT INTO device_liveness (device_id, misses, since, silent) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET "
                        "misses = excluded.misses, since = excluded.since, "
                        "silent = excluded.silent",
                        (device_id, state.misses, _text(state.since), int(state.silent)),
                    )
        except sqlite3.OperationalError as exc:
            if not out_of_space(exc):
                raise
            log.warning("liveness.write_failed", device_id=device_id, error=str(exc))
            return
        if healthy:
            self._saved.pop(device_id, None)
            self._states.pop(device_id, None)
        else:
            self._saved[device_id] = state
