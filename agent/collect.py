"""The daemon's jobs: discovery into the inventory, device reads into the signed outbox.

:class:`Collector` holds no scheduler and no signal handling (that is
:mod:`agent.daemon`), so each job can be run and tested on its own. What a
job produces for the backend goes through :class:`Sink`, which commits it to
the durable outbox before the job counts it as collected.

Messages (the ``body`` of the signed envelope, see docs/schema/) are typed:

* ``read``: :class:`mibs.messages.ReadMessage`, the read exactly as
  ``fleet-agent scan --format json`` prints it, plus ``device_id``, ``purpose``
  (``meters`` or ``supplies``) and ``eligibility`` when a policy is configured
  (a local file, or one pushed inline in a remote configuration document).
* ``event``: one model of the :data:`mibs.events.Event` union (meter anomalies:
  :func:`mibs.meter_anomalies.anomaly_event`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from agent import __version__
from agent.config import AgentConfig
from agent.eligibility.contacts import Contact, load_contacts
from agent.eligibility.models import Verdict
from agent.eligibility.policy import Policy, load_policy
from agent.eligibility.rules import evaluate_read
from agent.inventory import Inventory, InventoryDevice, out_of_space
from agent.liveness import LivenessTracker, after_read
from agent.metrics import Metrics
from agent.remote_config import PushedPolicy
from agent.supplies import SupplyTracker
from agent.supply_store import SupplyStore
from collectors.discovery import AddressResult, DiscoveryOptions, Sweep, SweepStats
from collectors.reader import ReadOutcome, read_device
from collectors.targets import validate_targets
from collectors.transport import SnmpTransport
from mibs.events import (
    DeviceFound,
    DeviceMoved,
    DuplicateSerial,
    EligibilityChanged,
    SupplyLow,
)
from mibs.messages import AgentMessage, Purpose, ReadMessage
from mibs.meter_anomalies import anomaly_event, read_anomalies
from mibs.models import PrinterRead
from mibs.plan import full_read_plan
from uploader.queue import Outbox
from uploader.spool import OutboxSpool

log = structlog.get_logger("agent.collect")

LOW_STATES = frozenset({"low", "empty", "full"})
SIGHTINGS_AT_ONCE = 500  # discovery results recorded per slice (their events share a commit)


class Sink(Protocol):
    """Where signed messages go: the durable outbox (or a test double)."""

    async def submit(self, message: AgentMessage) -> None: ...


class OutboxSink:
    """Commits messages to the durable outbox, then wakes the publisher.

    Each ``submit`` returns only once its message is durable. Submissions that
    arrive together are committed together (one ``submit_many`` transaction in a
    worker thread), because every commit waits for a disk sync: one read per
    transaction manages a few hundred a second, batches several thousand.
    """

    def __init__(
        self,
        outbox: Outbox | OutboxSpool,
        *,
        on_submit: Callable[[], None] = lambda: None,
        batch: int = 500,
    ) -> None:
        self._outbox = outbox
        self._on_submit = on_submit
        self._batch = batch
        self._waiting: list[tuple[AgentMessage, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def submit(self, message: AgentMessage) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((message, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="outbox.flush")
        await done

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._batch], self._waiting[self._batch :]
            items = [message for message, _ in batch]
            try:
                await asyncio.to_thread(self._outbox.submit_many, items)
            except Exception as exc:  # every waiter sees the failure: nothing is half-counted
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
            self._on_submit()


@dataclass
class CycleStats:
    purpose: str
    devices: int = 0
    ok: int = 0
    partial: int = 0
    silent: int = 0
    failed: int = 0
    fresh: int = 0
    elapsed: float = 0.0
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class EligibilityInputs:
    policy: Policy
    contacts: tuple[Contact, ...] | None
    #: Where the policy came from: its file, or ``remote config v7 (site lab)``.
    source: str | None = None


def load_eligibility(
    config: AgentConfig, pushed: PushedPolicy | None = None
) -> EligibilityInputs | None:
    """The policy and contacts to run with (file errors name file and line).

    The policy file named by ``eligibility.policy`` wins; else the policy pushed
    inline in the remote configuration (:func:`agent.remote_config.pushed_policy`).
    """
    path = config.eligibility.policy
    if path is not None:
        policy, source = load_policy(path), str(path)
    elif pushed is not None:
        policy, source = pushed.policy, pushed.label
    else:
        return None
    contacts = load_contacts(config.eligibility.contacts) if config.eligibility.contacts else None
    return EligibilityInputs(policy, contacts, source)


class Collector:
    def __init__(
        self,
        config: AgentConfig,
        *,
        transport: SnmpTransport,
        inventory: Inventory,
        sink: Sink,
        metrics: Metrics,
        eligibility: EligibilityInputs | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self._transport = transport
        self._inventory = inventory
        self._sink = sink
        self._metrics = metrics
        self.eligibility = eligibility
        self._clock = clock
        self._limit = asyncio.Semaphore(config.snmp.concurrency)
        # Last known per-device state, for change events (reset at restart: events are
        # at-least-once by design, a repeat after a restart is harmless).
        self._verdicts: dict[str, tuple[bool, tuple[str, ...]]] = {}
        self._low_supplies: dict[str, frozenset[int]] = {}
        # Supply history, replacements and orders persist in the state database.
        self._supplies = SupplyTracker(SupplyStore(inventory))
        # Missed scheduled reads per device (device_silent / device_back), persisted too.
        self.liveness = LivenessTracker(inventory)
        self.last_good_read: datetime | None = max(
            (d.last_read_at for d in inventory.devices() if d.last_read_at), default=None
        )
        self._snmp_counted = (transport.requests_sent, transport.timeouts, transport.retries)

    def reconfigure(self, config: AgentConfig, eligibility: EligibilityInputs | None) -> None:
        """Take a reloaded configuration (SNMP, discovery and eligibility parts)."""
        self.config = config
        self.eligibility = eligibility
        self._limit = asyncio.Semaphore(config.snmp.concurrency)

    # -- discovery ---------------------------------------------------------------------

    async def discover(self) -> SweepStats | None:
        settings = self.config.discovery
        if not settings.targets:
            log.info("discovery.skipped", reason="no discovery.targets configured")
            return None
        # Host names resolve only now, so their addresses are checked only now.
        targets = await asyncio.to_thread(
            validate_targets,
            settings.targets,
            exclude=settings.exclude,
            allow_huge=settings.allow_huge,
            allow_public=settings.allow_public,
        )
        # SNMPv3 sweeps get a transport of their own: pysnmp's engine keeps every v3 target
        # it has seen, so sweeping a range on the long-lived polling transport would grow it.
        async with SnmpTransport(self.config.snmp.transport_settings()) as transport:
            return await self._sweep(targets, transport)

    async def _sweep(self, targets: Iterable[str], transport: SnmpTransport) -> SweepStats:
        settings = self.config.discovery
        sweep = Sweep(
            targets,
            self.config.snmp.credentials,
            self.config.snmp.transport_settings(),
            options=DiscoveryOptions(
                rate=settings.rate,
                max_in_flight=min(settings.max_in_flight, self.config.snmp.concurrency),
            ),
            transport=transport,
            known_profiles=self._inventory.known_profiles(),
        )
        started = self._clock()
        found: list[AddressResult] = []  # printers only: a /16 sweep keeps no per-address list
        stats = await sweep.run(lambda r: found.append(r) if r.status == "printer" else None)
        # Inventory writes run in sweep order (each task's synchronous start); the events of
        # a slice are submitted together so the outbox commits them in one transaction
        # instead of one fsync each (10,000 new printers: 31 s before, about 2 s now).
        for first in range(0, len(found), SIGHTINGS_AT_ONCE):
            async with asyncio.TaskGroup() as group:
                for result in found[first : first + SIGHTINGS_AT_ONCE]:
                    group.create_task(self._record_sighting(result, started))
        self._metrics.devices_known.set(len(self._inventory.devices()))
        return stats

    async def _record_sighting(self, result: AddressResult, sweep_started: datetime) -> None:
        if result.status != "printer" or result.identity is None:
            return
        outcome = self._inventory.record_discovery(
            result.address,
            result.identity,
            device_key=result.device_id,
            credential_profile=result.credential,
            sweep_started=sweep_started,
        )
        identity = result.identity
        found = DeviceFound(
            device_id=outcome.device_id,
            address=result.address,
            serial=identity.serial,
            vendor=identity.vendor,
            model=identity.model,
        )
        seen = found.model_dump(exclude={"event"})
        if outcome.new:
            await self._sink.submit(found)
        if outcome.moved_from:
            await self._sink.submit(DeviceMoved(**seen, moved_from=outcome.moved_from))
        if outcome.duplicate_serial:
            await self._sink.submit(DuplicateSerial(**seen))

    # -- reads -------------------------------------------------------------------------

    def _count_snmp(self) -> None:
        """Add the transport's requests and timeouts since the last call to the metrics.

        A per-read "after minus before" would also count the requests of every other
        read in flight meanwhile (about ``snmp.concurrency`` times too many).
        """
        now = (self._transport.requests_sent, self._transport.timeouts, self._transport.retries)
        before = self._snmp_counted
        self._metrics.snmp_requests.inc(max(0, now[0] - before[0]))
        self._metrics.snmp_timeouts.inc(max(0, now[1] - before[1]))
        self._metrics.snmp_retries.inc(max(0, now[2] - before[2]))
        self._snmp_counted = now

    async def read_all(self, purpose: Purpose, *, fresh_for: float = 0.0) -> CycleStats:
        """Read every known printer once, ``snmp.concurrency`` at a time.

        A device read less than ``fresh_for`` seconds ago is skipped (a supply run right
        after a meter run would read everything twice: a meter read carries the supplies).
        """
        stats = CycleStats(purpose=purpose)
        known = [d for d in self._inventory.devices() if d.address]
        self._metrics.devices_known.set(len(known))
        cutoff = self._clock() - timedelta(seconds=fresh_for)
        devices = [
            d for d in known if not fresh_for or not d.last_read_at or d.last_read_at < cutoff
        ]
        stats.devices = len(devices)
        stats.fresh = len(known) - len(devices)
        queue = iter(devices)

        async def worker() -> None:
            for device in queue:  # one shared iterator: no task per device for 10,000 devices
                await self._read_one(device, purpose, stats)

        async with asyncio.TaskGroup() as group:
            for number in range(min(self.config.snmp.concurrency, len(devices))):
                group.create_task(worker(), name=f"read-worker-{number}")
        stats.elapsed = time.monotonic() - stats.started
        log.info(
            "reads.completed",
            purpose=purpose,
            devices=stats.devices,
            ok=stats.ok,
            partial=stats.partial,
            silent=stats.silent,
            failed=stats.failed,
            skipped_fresh=stats.fresh,
            elapsed=round(stats.elapsed, 3),
        )
        return stats

    async def _read_one(self, device: InventoryDevice, purpose: Purpose, stats: CycleStats) -> None:
        assert device.address is not None
        structlog.contextvars.bind_contextvars(device_id=device.device_id, address=device.address)
        answered = False
        try:
            async with self._limit:
                began = time.monotonic()
                try:
                    outcome = await read_device(
                        device.address,
                        self.config.snmp.credentials,
                        full_read_plan(),
                        self.config.snmp.read_deadline,
                        sessions=self._transport,
                        remembered=device.credential_profile,
                        clock=self._clock,
                    )
                    answered = outcome.read is not None
                finally:
                    self._metrics.read_duration.labels(kind=purpose).observe(
                        time.monotonic() - began
                    )
                    self._count_snmp()
                    self._metrics.device_read(
                        device.device_id,
                        answered=answered,
                        at=time.time(),
                        address=device.address,
                        vendor=device.vendor or "",
                        model=device.model or "",
                    )
            self._count_outcome(outcome, purpose, stats)
        finally:
            structlog.contextvars.unbind_contextvars("device_id", "address")
        if outcome.read is not None:
            await self._deliver(device, outcome.read, purpose, profile=outcome.profile)
            self.last_good_read = outcome.read.collected_at
        await self._liveness(device, outcome)

    async def _liveness(self, device: InventoryDevice, outcome: ReadOutcome) -> None:
        """Count a missed read, or end a run of them: ``device_silent`` / ``device_back``."""
        assert device.address is not None
        before = self.liveness.state(device.device_id)
        state, event = after_read(
            before,
            answered=outcome.read is not None,
            at=self._clock(),
            address=device.address,
            threshold=self.config.liveness.device_silent_after,
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

    def _count_outcome(self, outcome: ReadOutcome, purpose: Purpose, stats: CycleStats) -> None:
        """Stats, the reads metric and the log line of one read, in the reasons' own words."""
        read = outcome.read
        if read is None:
            if outcome.kind == "silent":
                stats.silent += 1
            else:
                stats.failed += 1
            metric = "silent" if outcome.kind == "silent" else "error"
            self._metrics.reads.labels(kind=purpose, outcome=metric).inc()
            log.warning(
                f"read.{outcome.kind}",
                reason=outcome.reason,
                profiles=[c.name for c in self.config.snmp.credentials],
                error=outcome.detail or None,
            )
            return
        if read.problems:
            stats.partial += 1
        else:
            stats.ok += 1
        self._metrics.reads.labels(kind=purpose, outcome="partial" if read.problems else "ok").inc()

    async def _deliver(
        self, device: InventoryDevice, read: PrinterRead, purpose: Purpose, *, profile: str | None
    ) -> None:
        for problem in read.problems:
            if problem.reason == "decoder_error":  # our bug, already logged with its traceback
                self._metrics.decoder_errors.labels(part=problem.field).inc()
        verdict = None
        if self.eligibility is not None:
            verdict = evaluate_read(
                read,
                self.eligibility.policy,
                device_id=device.device_id,
                contacts=self.eligibility.contacts,
                agent_version=__version__,
            )
        message = ReadMessage.of(read, device_id=device.device_id, purpose=purpose, verdict=verdict)
        await self._sink.submit(message)  # durable before the read counts as collected
        previous = self._inventory.record_read(device.device_id, read, credential_profile=profile)
        if previous is not None:
            await self._anomaly_events(device.device_id, previous, read)
        await self._change_events(device, read, verdict)
        await self._supply_events(device, read)

    async def _supply_events(self, device: InventoryDevice, read: PrinterRead) -> None:
        """``supply_replaced`` and ``supply_order_due`` (agent/supplies.py), each sent once.

        On a full volume the read (already in the outbox) keeps going: its supply levels
        are left out of the local history and the events wait for a read with space."""
        eligibility = self.eligibility
        try:
            pending = self._supplies.observe(
                device.device_id,
                read,
                policy=eligibility.policy if eligibility is not None else None,
                contacts=eligibility.contacts if eligibility is not None else None,
            )
        except sqlite3.OperationalError as exc:
            if not out_of_space(exc):
                raise
            log.warning("supplies.history_not_written", device_id=device.device_id, error=str(exc))
            return
        for item in pending:
            await self._sink.submit(item.event)  # durable before it is marked as sent
            log.info("supply.event", kind=item.event.event, supply_index=item.event.supply_index)
        try:
            self._supplies.sent(pending)
        except sqlite3.OperationalError as exc:
            if not out_of_space(exc):
                raise
            # Sent but not remembered: the next read may send them again (same order_id,
            # which the backend keeps once).
            log.warning("supplies.marks_not_written", device_id=device.device_id, error=str(exc))

    async def _anomaly_events(
        self, device_id: str, previous: PrinterRead, read: PrinterRead
    ) -> None:
        """Meter anomalies since the device's previous read, each a signed event."""
        billing = self.eligibility.policy.billing if self.eligibility is not None else None
        for anomaly in read_anomalies(previous, read, billing):
            log.warning("meter.anomaly", anomaly=anomaly.kind, detail=anomaly.describe())
            await self._sink.submit(anomaly_event(anomaly, device_id, read))

    async def _change_events(
        self, device: InventoryDevice, read: PrinterRead, verdict: Verdict | None
    ) -> None:
        device_id, address = device.device_id, read.address
        if verdict is not None:
            now = (verdict.eligible, tuple(r.code for r in verdict.reasons))
            before = self._verdicts.get(device.device_id)
            self._verdicts[device.device_id] = now
            if before is not None and before != now:
                await self._sink.submit(
                    EligibilityChanged(
                        device_id=device_id,
                        address=address,
                        eligible=verdict.eligible,
                        was_eligible=before[0],
                        reasons=verdict.codes,
                        policy_version=verdict.policy_version,
                    )
                )
        low = frozenset(s.index for s in read.supplies if s.state in LOW_STATES)
        already = self._low_supplies.get(device.device_id, frozenset())
        self._low_supplies[device.device_id] = low
        for supply in read.supplies:
            if supply.index in low - already:
                await self._sink.submit(
                    SupplyLow(
                        device_id=device_id,
                        address=address,
                        supply_index=supply.index,
                        description=supply.description,
                        type=supply.type,
                        colorant=supply.colorant,
                        state=supply.state,
                        percent=supply.percent,
                    )
                )
