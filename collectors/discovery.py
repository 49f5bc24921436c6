"""The discovery sweep: which addresses answer SNMP, which of those are printers, who they are.

Each address is one :func:`collectors.reader.read_device` with the identity plan (and with
``read_printers`` a printer also gets a full read with the profile that worked). Addresses
are pulled lazily by ``max_in_flight`` workers, so a /16 never becomes 65,536 tasks; every
packet, retries included, first takes a token from the packets-per-second bucket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from contextlib import AsyncExitStack
from dataclasses import KW_ONLY, dataclass, field
from functools import partial
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field

from collectors.credentials import Credential, SnmpSettings
from collectors.reader import ReadOutcome, read_device
from collectors.transport import SnmpTransport
from collectors.udp import TokenBucket
from fleet_errors import leaves
from mibs.identity import stable_device_id
from mibs.models import Identity, PrinterRead
from mibs.plan import full_read_plan, identity_read_plan

#: A fresh proxy per event: logging may be reconfigured between runs (one CLI call each).
_log = partial(structlog.get_logger, "collectors.discovery")

DEFAULT_RATE = 200.0  # packets per second
DEFAULT_MAX_IN_FLIGHT = 64  # the same default as discovery.max_in_flight of the agent config
AddressStatus = Literal["printer", "other", "silent", "closed", "refused"]


class DiscoveryOptions(BaseModel):
    """How hard the sweep may push: ``rate`` packets per second over all addresses (None: no
    cap) from a token bucket ``burst`` deep, and ``max_in_flight`` addresses probed at once.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: float | None = Field(default=DEFAULT_RATE, gt=0)
    max_in_flight: int = Field(default=DEFAULT_MAX_IN_FLIGHT, ge=1, le=8192)
    burst: float | None = Field(default=None, ge=1)


class AddressResult(BaseModel):
    """What one address turned out to be.

    ``credential`` names the profile that worked, ``device_id`` is the printer's
    :func:`stable_device_id`, ``refusals`` reads "profile: reason" for each profile the
    device refused, and ``read`` is a full read of the printer when the sweep asked for one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    status: AddressStatus
    credential: str | None = None
    identity: Identity | None = None
    device_id: str | None = None
    refusals: list[str] = Field(default_factory=list)
    read: PrinterRead | None = None


#: The :class:`SweepStats` counter of each status ("closed" counts as silent).
_COUNTERS = {"printer": "printers", "other": "others", "silent": "silent", "refused": "refused"}


@dataclass
class SweepStats:
    """Live counters of a sweep (read by the progress display)."""

    total: int
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    printers: int = 0
    others: int = 0
    silent: int = 0
    refused: int = 0
    finished: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def rate(self) -> float:
        """Addresses per second so far."""
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None

    def count(self, result: AddressResult) -> None:
        self.done += 1
        counter = _COUNTERS.get(result.status, "silent")
        setattr(self, counter, getattr(self, counter) + 1)


@dataclass
class Sweep:
    """One discovery run over ``targets`` (any iterable of address strings).

    Without a ``transport`` the sweep opens an :class:`SnmpTransport` of its own for each run.
    """

    targets: Iterable[str]
    credentials: Sequence[Credential]
    settings: SnmpSettings
    _: KW_ONLY
    transport: SnmpTransport | None = None
    options: DiscoveryOptions = field(default_factory=DiscoveryOptions)
    known_profiles: Mapping[str, str] | None = None
    read_printers: bool = False

    def __post_init__(self) -> None:
        if not self.credentials:
            raise ValueError("a sweep needs at least one credential profile")
        self.stats = SweepStats(total=len(self.targets) if isinstance(self.targets, Sized) else 0)
        rate = self.options.rate
        self.bucket = TokenBucket(rate, burst=self.options.burst) if rate else None

    async def run(self, on_result: Callable[[AddressResult], None]) -> SweepStats:
        """Sweep every target; ``on_result`` is called once per address as it finishes."""
        async with AsyncExitStack() as stack:
            sessions = self.transport
            if sessions is None:
                sessions = await stack.enter_async_context(SnmpTransport(self.settings))
            addresses = iter(self.targets)
            in_flight = self.options.max_in_flight  # fewer workers for fewer addresses
            self.stats.started = time.monotonic()
            _log().info(
                "discovery.started",
                addresses=self.stats.total,
                profiles=[c.name for c in self.credentials],
                rate=self.options.rate,
                max_in_flight=in_flight,
            )

            async def worker() -> None:
                for address in addresses:  # shared iterator: each address goes to one worker
                    result = await self._probe(address, sessions)
                    self.stats.count(result)
                    on_result(result)

            try:
                async with asyncio.TaskGroup() as group:
                    for number in range(min(in_flight, self.stats.total or in_flight)):
                        group.create_task(worker(), name=f"discovery-worker-{number}")
            except BaseExceptionGroup as failure:
                raise leaves(failure)[0] from None  # the error a worker raised (output closed, ...)
            self.stats.finished = time.monotonic()
            _log().info(
                "discovery.completed",
                addresses=self.stats.done,
                **{counter: getattr(self.stats, counter) for counter in _COUNTERS.values()},
                elapsed=round(self.stats.elapsed, 3),
            )
            return self.stats

    async def _probe(self, address: str, sessions: SnmpTransport) -> AddressResult:
        """Find out what ``address`` is (never raises for what the device does)."""
        pace = self.bucket.acquire if self.bucket else None
        read = partial(read_device, sessions=sessions, settings=self.settings, pace=pace)
        deadline = self.settings.read_deadline
        remembered = (self.known_profiles or {}).get(address)
        outcome = await read(
            address, self.credentials, identity_read_plan(), deadline, remembered=remembered
        )
        result = _result(outcome)
        if result.status == "printer" and self.read_printers:
            worked = [c for c in self.credentials if c.name == outcome.profile]
            full = await read(address, worked, full_read_plan(), deadline)
            result = result.model_copy(update={"read": full.read})
        return result


def _result(outcome: ReadOutcome) -> AddressResult:
    """The sweep's view of one identity read."""
    if outcome.kind == "silent":
        status: AddressStatus = "closed" if outcome.reason == "port_closed" else "silent"
        return AddressResult(address=outcome.address, status=status)
    if outcome.read is None:  # refused by every profile, or answers nothing usable
        refusals = list(outcome.refusals) or [outcome.detail]
        return AddressResult(address=outcome.address, status="refused", refusals=refusals)
    identity = outcome.read.identity
    printer = identity.is_printer
    return AddressResult(
        address=outcome.address,
        status="printer" if printer else "other",
        credential=outcome.profile,
        identity=identity,
        device_id=stable_device_id(identity) if printer else None,
        refusals=list(outcome.refusals),
    )
