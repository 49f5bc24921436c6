"""The discovery sweep: which addresses answer SNMP, which of those are printers, who they are.

Each address is one :func:`collectors.reader.read_device` with the identity plan (and with
``read_printers`` a printer also gets a full read with the profile that worked). Addresses
are pulled lazily by ``max_in_flight`` workers, so a /16 never becomes 65,536 tasks; every
packet, retries included, first takes a token from the packets-per-second bucket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field

from collectors.credentials import Credential, SnmpSettings
from collectors.reader import ReadOutcome, read_device
from collectors.transport import SnmpTransport
from collectors.udp import Pace, TokenBucket
from fleet_errors import leaves
from mibs.identity import stable_device_id
from mibs.models import Identity, PrinterRead
from mibs.plan import full_read_plan, identity_read_plan


def _log() -> structlog.typing.FilteringBoundLogger:
    """A fresh proxy per event: logging may be reconfigured between runs (one CLI call each)."""
    return structlog.get_logger("collectors.discovery")  # type: ignore[no-any-return]


DEFAULT_RATE = 200.0  # packets per second
DEFAULT_MAX_IN_FLIGHT = 64  # the same default as discovery.max_in_flight of the agent config
AddressStatus = Literal["printer", "other", "silent", "closed", "refused"]


class DiscoveryOptions(BaseModel):
    """How hard the sweep may push: a packet budget and a cap on requests in flight."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: float | None = Field(
        default=DEFAULT_RATE, gt=0, description="Packets per second, all addresses; None: no cap."
    )
    max_in_flight: int = Field(
        default=DEFAULT_MAX_IN_FLIGHT, ge=1, le=8192, description="Addresses probed at once."
    )
    burst: float | None = Field(default=None, ge=1, description="Token bucket depth.")


class AddressResult(BaseModel):
    """What one address turned out to be."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str
    status: AddressStatus
    credential: str | None = Field(default=None, description="Name of the profile that worked.")
    identity: Identity | None = None
    device_id: str | None = Field(default=None, description="stable_device_id of the identity.")
    refusals: list[str] = Field(
        default_factory=list, description="'profile: reason' for each profile the device refused."
    )
    read: PrinterRead | None = Field(
        default=None, description="A full read of the printer, when the sweep was asked for one."
    )


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
        if result.status == "printer":
            self.printers += 1
        elif result.status == "other":
            self.others += 1
        elif result.status == "refused":
            self.refused += 1
        else:
            self.silent += 1


class Sweep:
    """One discovery run over ``targets`` (any iterable of address strings)."""

    def __init__(
        self,
        targets: Iterable[str],
        credentials: Sequence[Credential],
        settings: SnmpSettings,
        *,
        transport: SnmpTransport | None = None,
        options: DiscoveryOptions | None = None,
        known_profiles: Mapping[str, str] | None = None,
        read_printers: bool = False,
    ) -> None:
        if not credentials:
            raise ValueError("a sweep needs at least one credential profile")
        self._transport = transport
        self._read_printers = read_printers
        self._targets = targets
        self._credentials = list(credentials)
        self._settings = settings
        self._options = options or DiscoveryOptions()
        self._known = dict(known_profiles or {})
        self.stats = SweepStats(total=len(targets) if isinstance(targets, Sized) else 0)
        rate = self._options.rate
        self.bucket = TokenBucket(rate, burst=self._options.burst) if rate else None
        self._pace: Pace | None = self.bucket.acquire if self.bucket else None

    async def run(self, on_result: Callable[[AddressResult], None]) -> SweepStats:
        """Sweep every target; ``on_result`` is called once per address as it finishes.

        Without a ``transport`` the sweep opens an :class:`SnmpTransport` of its own for the run.
        """
        async with AsyncExitStack() as stack:
            sessions = self._transport
            if sessions is None:
                sessions = await stack.enter_async_context(SnmpTransport(self._settings))
            addresses: Iterator[str] = iter(self._targets)
            in_flight = self._options.max_in_flight  # fewer workers for fewer addresses
            self.stats.started = time.monotonic()
            _log().info(
                "discovery.started",
                addresses=self.stats.total,
                profiles=[c.name for c in self._credentials],
                rate=self._options.rate,
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
                printers=self.stats.printers,
                others=self.stats.others,
                silent=self.stats.silent,
                refused=self.stats.refused,
                elapsed=round(self.stats.elapsed, 3),
            )
            return self.stats

    async def _probe(self, address: str, sessions: SnmpTransport) -> AddressResult:
        """Find out what ``address`` is (never raises for what the device does)."""
        read = partial(read_device, sessions=sessions, settings=self._settings, pace=self._pace)
        deadline = self._settings.read_deadline
        remembered = self._known.get(address)
        outcome = await read(
            address, self._credentials, identity_read_plan(), deadline, remembered=remembered
        )
        result = _result(outcome)
        if result.status == "printer" and self._read_printers:
            worked = [c for c in self._credentials if c.name == outcome.profile]
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
