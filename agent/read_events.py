"""What the daemon does with one scheduled read's outcome: the read message, then its events.

:meth:`ReadEvents.after_read` is the entry point. A read is committed to the outbox before
it is recorded in the inventory, and every event before the state saying it was sent: a
crash in between sends it again, never not at all. The messages:
:class:`mibs.messages.ReadMessage` and :data:`mibs.events.Event` (``docs/schema/``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TypeVar

import structlog

from agent import __version__
from agent.eligibility.inputs import EligibilityInputs
from agent.eligibility.models import Verdict
from agent.eligibility.rules import evaluate_read
from agent.inventory import Inventory, InventoryDevice, out_of_space
from agent.liveness import LivenessTracker, after_read
from agent.supplies import SupplyTracker
from agent.supply_store import SupplyStore
from collectors.reader import ReadOutcome
from mibs.events import EligibilityChanged, SupplyLow
from mibs.messages import Purpose, ReadMessage
from mibs.meter_anomalies import anomaly_event, read_anomalies
from mibs.models import PrinterRead
from uploader.sink import OutboxSink

log = structlog.get_logger("agent.collect")  # the collector's log lines, as before

LOW_STATES = frozenset({"low", "empty", "full"})
#: The supply's own fields a ``supply_low`` event carries.
_SUPPLY_LOW_FIELDS = {"description", "type", "colorant", "state", "percent"}
T = TypeVar("T")


class ReadEvents:
    """The per-device state behind the events, and the order they are sent in."""

    def __init__(
        self, inventory: Inventory, sink: OutboxSink, clock: Callable[[], datetime]
    ) -> None:
        self._inventory = inventory
        self._sink = sink
        self._clock = clock
        # Last known per-device state, for change events (reset at restart: events are
        # at-least-once by design, a repeat after a restart is harmless).
        self._verdicts: dict[str, tuple[bool, tuple[str, ...]]] = {}
        self._low_supplies: dict[str, frozenset[int]] = {}
        self._supplies = SupplyTracker(SupplyStore(inventory))  # persisted, as liveness is
        self.liveness = LivenessTracker(inventory)
        self.last_good_read: datetime | None = max(
            (d.last_read_at for d in inventory.devices() if d.last_read_at), default=None
        )

    async def after_read(
        self,
        device: InventoryDevice,
        outcome: ReadOutcome,
        purpose: Purpose,
        eligibility: EligibilityInputs | None,
        *,
        silent_after: int,
    ) -> None:
        """Send the read and the events it causes; ``silent_after``: missed reads to silence."""
        read, device_id = outcome.read, device.device_id
        if read is not None:
            verdict = None
            if eligibility is not None:
                verdict = evaluate_read(
                    read,
                    eligibility.policy,
                    device_id=device_id,
                    contacts=eligibility.contacts,
                    agent_version=__version__,
                )
            message = ReadMessage.of(read, device_id=device_id, purpose=purpose, verdict=verdict)
            await self._sink.submit(message)  # durable before the read counts as collected
            previous = self._inventory.record_read(
                device_id, read, credential_profile=outcome.profile
            )
            if previous is not None:
                billing = eligibility.policy.billing if eligibility is not None else None
                for anomaly in read_anomalies(previous, read, billing):
                    log.warning("meter.anomaly", anomaly=anomaly.kind, detail=anomaly.describe())
                    await self._sink.submit(anomaly_event(anomaly, device_id, read))
            await self._change_events(device_id, read, verdict)
            await self._supply_events(device_id, read, eligibility)
            self.last_good_read = read.collected_at
        await self._liveness(device, outcome, silent_after)

    async def _liveness(
        self, device: InventoryDevice, outcome: ReadOutcome, threshold: int
    ) -> None:
        """Count a missed read, or end a run of them: ``device_silent`` / ``device_back``."""
        assert device.address is not None
        before = self.liveness.state(device.device_id)
        state, event = after_read(
            before,
            answered=outcome.read is not None,
            at=self._clock(),
            address=device.address,
            threshold=threshold,
            last_answered_at=device.last_read_at,
            reason=outcome.reason,
        )
        self.liveness.update(state, event=event is not None)  # an overlapping read sees it
        if event is None:
            return
        try:
            await self._sink.submit(event)  # durable before the state says it was sent
        except BaseException:
            self.liveness.failed(before)
            raise
        self.liveness.sent(device.device_id)
        emit = log.warning if event.event == "device_silent" else log.info
        emit(
            event.event.replace("_", "."),  # device.silent, device.back
            device_id=device.device_id,
            address=device.address,
            since=event.since.isoformat(),
            missed_reads=event.missed_reads,
        )

    async def _supply_events(
        self, device_id: str, read: PrinterRead, eligibility: EligibilityInputs | None
    ) -> None:
        """``supply_replaced`` and ``supply_order_due`` (agent/supplies.py), each sent once.

        On a full volume the read (already in the outbox) keeps going: its supply levels are
        left out of the local history and the events wait for a read with space; events sent
        but not remembered may go again (same order_id, which the backend keeps once)."""
        policy = eligibility.policy if eligibility is not None else None
        contacts = eligibility.contacts if eligibility is not None else None
        observe = partial(self._supplies.observe, device_id, read, policy=policy, contacts=contacts)
        pending = _unless_full(observe, "supplies.history_not_written", device_id)
        if pending is None:
            return
        for item in pending:
            await self._sink.submit(item.event)  # durable before it is marked as sent
            log.info("supply.event", kind=item.event.event, supply_index=item.event.supply_index)
        _unless_full(partial(self._supplies.sent, pending), "supplies.marks_not_written", device_id)

    async def _change_events(
        self, device_id: str, read: PrinterRead, verdict: Verdict | None
    ) -> None:
        address = read.address
        if verdict is not None:
            now = (verdict.eligible, verdict.codes)
            before = self._verdicts.get(device_id)
            self._verdicts[device_id] = now
            if before is not None and before != now:
                changed = EligibilityChanged(
                    device_id=device_id,
                    address=address,
                    was_eligible=before[0],
                    reasons=verdict.codes,
                    **verdict.model_dump(include={"eligible", "policy_version"}),
                )
                await self._sink.submit(changed)
        low = frozenset(s.index for s in read.supplies if s.state in LOW_STATES)
        already = self._low_supplies.get(device_id, frozenset())
        self._low_supplies[device_id] = low
        for supply in (s for s in read.supplies if s.index in low - already):
            shown = supply.model_dump(include=_SUPPLY_LOW_FIELDS)
            low_event = SupplyLow(
                device_id=device_id, address=address, supply_index=supply.index, **shown
            )
            await self._sink.submit(low_event)


def _unless_full(write: Callable[[], T], event: str, device_id: str) -> T | None:
    """``write()``; on a full state volume None, after a warning ``event``."""
    try:
        return write()
    except sqlite3.OperationalError as exc:
        if not out_of_space(exc):
            raise
        log.warning(event, device_id=device_id, error=str(exc))
        return None
