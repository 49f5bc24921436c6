"""The daemon's jobs: discovery into the inventory, device reads into the signed outbox.

No scheduler or signals here (:mod:`agent.daemon`), so each job runs and tests on its
own; what a read becomes (the read message and its events) is :mod:`agent.read_events`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import structlog

from agent.config import AgentConfig
from agent.eligibility.inputs import EligibilityInputs
from agent.inventory import Inventory, InventoryDevice
from agent.metrics import Metrics
from agent.read_events import ReadEvents, log
from collectors.discovery import AddressResult, DiscoveryOptions, Sweep, SweepStats
from collectors.reader import ReadOutcome, read_device
from collectors.targets import validate_targets
from collectors.transport import SnmpTransport
from mibs.events import DeviceFound, DeviceMoved, DuplicateSerial
from mibs.messages import Purpose
from mibs.plan import full_read_plan
from uploader.sink import OutboxSink

SIGHTINGS_AT_ONCE = 500  # discovery results recorded per slice (their events share a commit)


@dataclass
class CycleStats:
    devices: int = 0
    ok: int = 0
    partial: int = 0
    silent: int = 0
    failed: int = 0
    skipped_fresh: int = 0


class Collector:
    def __init__(
        self,
        config: AgentConfig,
        *,
        transport: SnmpTransport,
        inventory: Inventory,
        sink: OutboxSink,
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
        self.events = ReadEvents(inventory, sink, clock)
        self._snmp_counted = (transport.requests_sent, transport.timeouts, transport.retries)

    def reconfigure(self, config: AgentConfig, eligibility: EligibilityInputs | None) -> None:
        """Take a reloaded configuration (SNMP, discovery and eligibility parts)."""
        self.config = config
        self.eligibility = eligibility
        self._limit = asyncio.Semaphore(config.snmp.concurrency)

    async def discover(self) -> SweepStats | None:
        settings = self.config.discovery
        if not settings.targets:
            log.info("discovery.skipped", reason="no discovery.targets configured")
            return None
        # Host names resolve only now, so their addresses are checked only now.
        checks = settings.model_dump(include={"exclude", "allow_huge", "allow_public"})
        targets = await asyncio.to_thread(validate_targets, settings.targets, **checks)
        # SNMPv3 sweeps get a transport of their own: pysnmp's engine keeps every v3 target
        # it has seen, so sweeping a range on the long-lived polling transport would grow it.
        async with SnmpTransport(self.config.snmp.transport_settings()) as transport:
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
            found: list[AddressResult] = []  # printers only: a /16 sweep keeps no address list
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
        identity = result.identity
        assert identity is not None  # a printer's result always has one
        outcome = self._inventory.record_discovery(
            result.address,
            identity,
            device_key=result.device_id,
            credential_profile=result.credential,
            sweep_started=sweep_started,
        )
        named = identity.model_dump(include={"serial", "vendor", "model"})
        found = DeviceFound(device_id=outcome.device_id, address=result.address, **named)
        seen = found.model_dump(exclude={"event"})
        if outcome.new:
            await self._sink.submit(found)
        if outcome.moved_from:
            await self._sink.submit(DeviceMoved(**seen, moved_from=outcome.moved_from))
        if outcome.duplicate_serial:
            await self._sink.submit(DuplicateSerial(**seen))

    def _count_snmp(self) -> None:
        """Add the transport's requests, timeouts and retries since the last call to the metrics
        (a per-read "after minus before" would also count every other read in flight)."""
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
        began = time.monotonic()
        known = [d for d in self._inventory.devices() if d.address]
        self._metrics.devices_known.set(len(known))
        cutoff = self._clock() - timedelta(seconds=fresh_for)
        devices = [
            d for d in known if not fresh_for or not d.last_read_at or d.last_read_at < cutoff
        ]
        stats = CycleStats(devices=len(devices), skipped_fresh=len(known) - len(devices))
        queue = iter(devices)

        async def worker() -> None:
            for device in queue:  # one shared iterator: no task per device for 10,000 devices
                await self._read_one(device, purpose, stats)

        async with asyncio.TaskGroup() as group:
            for number in range(min(self.config.snmp.concurrency, len(devices))):
                group.create_task(worker(), name=f"read-worker-{number}")
        elapsed = round(time.monotonic() - began, 3)
        log.info("reads.completed", purpose=purpose, **asdict(stats), elapsed=elapsed)
        return stats

    async def _read_one(self, device: InventoryDevice, purpose: Purpose, stats: CycleStats) -> None:
        assert device.address is not None
        answered = False
        with structlog.contextvars.bound_contextvars(
            device_id=device.device_id, address=device.address
        ):
            async with self._limit:
                try:
                    with self._metrics.read_duration.labels(kind=purpose).time():
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
        await self.events.after_read(
            device,
            outcome,
            purpose,
            self.eligibility,
            silent_after=self.config.liveness.device_silent_after,
        )

    def _count_outcome(self, outcome: ReadOutcome, purpose: Purpose, stats: CycleStats) -> None:
        """Stats, the reads metric and the log line of one read, in the reasons' own words."""
        read = outcome.read
        if read is not None:
            for problem in read.problems:
                if problem.reason == "decoder_error":  # our bug, already logged with its traceback
                    self._metrics.decoder_errors.labels(part=problem.field).inc()
            label = "partial" if read.problems else "ok"
        else:
            label = "silent" if outcome.kind == "silent" else "error"
            log.warning(
                f"read.{outcome.kind}",
                reason=outcome.reason,
                profiles=[c.name for c in self.config.snmp.credentials],
                error=outcome.detail or None,
            )
        self._metrics.reads.labels(kind=purpose, outcome=label).inc()
        counted = "failed" if label == "error" else label  # the CycleStats field
        setattr(stats, counted, getattr(stats, counted) + 1)
