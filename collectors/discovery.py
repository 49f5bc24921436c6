"""The discovery sweep: which addresses answer SNMP, which of those are printers, who they are.

Per address, one request at a time:

1. The credential profiles are tried in the configured order (the profile that
   last worked at this address first). Each try is a GET of the identity
   scalars (sysObjectID, sysDescr, ...), which doubles as the probe. ICMP
   port-unreachable ends the address at once (``closed``); a timeout or an
   SNMPv3 refusal (wrong key, wrong privacy, unknown user) moves on to the next
   profile instead of stopping (glpi-agent #1240).
2. With a working profile: a walk of hrDeviceType and prtGeneralSerialNumber,
   then :func:`mibs.identity.classify_device` (hrDeviceType printer, a
   Printer-MIB table, or a printer maker's sysObjectID). Other SNMP devices stop
   here: counted, not polled.
3. Printers: the rest of :func:`mibs.plan.identity_plan` (1284 id, MACs), the
   maker's private identity OIDs and hrDeviceDescr of the printer row, then
   :func:`mibs.identity.decode_identity` and :func:`mibs.identity.stable_device_id`;
   with ``read_printers`` also a full :func:`collectors.poller.read_printer`.

Addresses are pulled lazily from the target iterator by ``max_in_flight``
workers, so a /16 never becomes 65,536 tasks; every packet first takes a
token from the packets-per-second bucket. v1/v2c go over one connected socket
per address (:mod:`collectors.udp_session`); v3 through the shared transport.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field

from collectors.base import SnmpSession, WalkResult
from collectors.credentials import Credential, SnmpSettings
from collectors.errors import SnmpAuthError, SnmpError, SnmpTimeout
from collectors.poller import read_printer
from collectors.ratelimit import TokenBucket, unlimited
from collectors.udp_session import Pace, SnmpPortClosed, UdpSnmpSession
from fleet_errors import leaves
from mibs.enterprises import enterprise_of
from mibs.identity import (
    HR_DEVICE_DESCR,
    HR_DEVICE_TYPE,
    PRT_GENERAL_SERIAL,
    classify_device,
    decode_identity,
    printer_index,
    stable_device_id,
    vendor_identity_oids,
)
from mibs.models import Identity, PrinterRead, Problem
from mibs.plan import identity_plan
from mibs.values import Oid, Value, format_oid


def _log() -> structlog.typing.FilteringBoundLogger:
    """A fresh proxy per event: logging may be reconfigured between runs (one CLI call each)."""
    return structlog.get_logger("collectors.discovery")  # type: ignore[no-any-return]


DEFAULT_RATE = 200.0  # packets per second
DEFAULT_MAX_IN_FLIGHT = 128
CLASSIFY_COLUMNS: tuple[Oid, ...] = (HR_DEVICE_TYPE, PRT_GENERAL_SERIAL)

# The identity plan's scalars double as the probe; its other columns are walked for printers.
_PROBE_OIDS: tuple[Oid, ...] = tuple(item.oid for item in identity_plan().scalars)
_IDENTITY_COLUMNS: tuple[Oid, ...] = tuple(
    item.oid for item in identity_plan().columns if item.oid not in CLASSIFY_COLUMNS
)

AddressStatus = Literal["printer", "other", "silent", "closed", "refused"]
V3Sessions = Callable[[str, Credential, SnmpSettings], SnmpSession]
#: Opens a session to (address, credential); every packet it sends must await ``pace``.
SessionOpener = Callable[
    [str, Credential, SnmpSettings, Pace], AbstractAsyncContextManager[SnmpSession]
]


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
    problems: list[Problem] = Field(default_factory=list)
    refusals: list[str] = Field(
        default_factory=list, description="'profile: reason' for each profile the device refused."
    )
    read: PrinterRead | None = Field(
        default=None, description="A full read of the printer, when the sweep was asked for one."
    )
    elapsed: float = 0.0


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


class _PacedSession:
    """A transport session whose every call first takes a token (v3: approximate)."""

    def __init__(self, inner: SnmpSession, pace: Pace) -> None:
        self.address = inner.address
        self._inner = inner
        self._pace = pace

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
        await self._pace()
        return await self._inner.get(oids)

    async def walk(self, columns: Sequence[Oid]) -> WalkResult:
        await self._pace()
        return await self._inner.walk(columns)


class Sweep:
    """One discovery run over ``targets`` (any iterable of address strings)."""

    def __init__(
        self,
        targets: Iterable[str],
        credentials: Sequence[Credential],
        settings: SnmpSettings,
        *,
        options: DiscoveryOptions | None = None,
        total: int | None = None,
        v3_sessions: V3Sessions | None = None,
        known_profiles: Mapping[str, str] | None = None,
        open_session: SessionOpener | None = None,
        read_printers: bool = False,
    ) -> None:
        if not credentials:
            raise ValueError("a sweep needs at least one credential profile")
        needs_v3 = any(c.version == "v3" for c in credentials)
        if needs_v3 and v3_sessions is None and open_session is None:
            raise ValueError("v3 profiles need v3_sessions (an SnmpTransport's session)")
        self._open_session = open_session
        self._read_printers = read_printers
        self._targets = targets
        self._credentials = list(credentials)
        self._settings = settings
        self._options = options or DiscoveryOptions()
        self._v3_sessions = v3_sessions
        self._known = dict(known_profiles or {})
        size = total if total is not None else _size(targets)
        self.stats = SweepStats(total=size)
        rate = self._options.rate
        self.bucket = TokenBucket(rate, burst=self._options.burst) if rate else None
        self._pace: Pace = self.bucket.acquire if self.bucket else unlimited

    async def run(self, on_result: Callable[[AddressResult], None]) -> SweepStats:
        """Sweep every target; ``on_result`` is called once per address as it finishes."""
        addresses: Iterator[str] = iter(self._targets)
        self.stats.started = time.monotonic()
        _log().info(
            "discovery.started",
            addresses=self.stats.total,
            profiles=[c.name for c in self._credentials],
            rate=self._options.rate,
            max_in_flight=self._options.max_in_flight,
        )

        async def worker() -> None:
            for address in addresses:  # shared iterator: each address goes to one worker
                result = await self.probe(address)
                self.stats.count(result)
                on_result(result)

        workers = min(self._options.max_in_flight, max(1, self.stats.total or 1))
        try:
            async with asyncio.TaskGroup() as group:
                for number in range(workers):
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

    def _profiles_for(self, address: str) -> list[Credential]:
        known = self._known.get(address)
        first = [c for c in self._credentials if c.name == known]
        return first + [c for c in self._credentials if c.name != known]

    @asynccontextmanager
    async def _session(self, address: str, credential: Credential) -> AsyncIterator[SnmpSession]:
        if self._open_session is not None:
            async with self._open_session(address, credential, self._settings, self._pace) as s:
                yield s
            return
        if credential.version == "v3":
            assert self._v3_sessions is not None
            inner = self._v3_sessions(address, credential, self._settings)
            yield _PacedSession(inner, self._pace)
            return
        async with UdpSnmpSession(address, credential, self._settings, pace=self._pace) as s:
            yield s

    async def probe(self, address: str) -> AddressResult:
        """Find out what ``address`` is (never raises for what the device does)."""
        started = time.monotonic()
        refusals: list[str] = []
        for credential in self._profiles_for(address):
            opened: AbstractAsyncContextManager[SnmpSession] = self._session(address, credential)
            try:
                async with opened as session:
                    first = await session.get(_PROBE_OIDS)
                    result = await self._identify(session, credential, first, refusals)
            except SnmpPortClosed:
                return AddressResult(
                    address=address, status="closed", elapsed=time.monotonic() - started
                )
            except SnmpAuthError as exc:
                refusals.append(f"{credential.name}: {exc}")
                _log().debug("discovery.refused", address=address, profile=credential.name)
                continue
            except SnmpTimeout:
                continue
            except SnmpError as exc:
                # An error-status to the probe GET is still an answer, but unusable.
                refusals.append(f"{credential.name}: {exc}")
                continue
            return result.model_copy(update={"elapsed": time.monotonic() - started})
        status: AddressStatus = "refused" if refusals else "silent"
        return AddressResult(
            address=address,
            status=status,
            refusals=refusals,
            elapsed=time.monotonic() - started,
        )

    async def _identify(
        self,
        session: SnmpSession,
        credential: Credential,
        varbinds: dict[Oid, Value],
        refusals: list[str],
    ) -> AddressResult:
        problems: list[Problem] = []
        await _walk_into(session, CLASSIFY_COLUMNS, varbinds, problems)
        kind = classify_device(varbinds)
        if kind == "printer":
            await _walk_into(session, _IDENTITY_COLUMNS, varbinds, problems)
            extra = [item.oid for item in vendor_identity_oids(enterprise_of(_sys_oid(varbinds)))]
            index = printer_index(varbinds)
            if index is not None:
                extra.append(HR_DEVICE_DESCR + (index,))
            await _get_into(session, extra, varbinds, problems)
        identity, decode_problems = decode_identity(varbinds)
        read = None
        if kind == "printer" and self._read_printers:
            try:
                read = await read_printer(session, deadline=self._settings.read_deadline)
            except SnmpError as exc:
                problems.append(
                    Problem(field="read", oid=None, reason="snmp_error", detail=str(exc))
                )
        return AddressResult(
            address=session.address,
            status=kind,
            credential=credential.name,
            identity=identity,
            device_id=stable_device_id(identity) if kind == "printer" else None,
            problems=problems + decode_problems,
            refusals=refusals,
            read=read,
        )


def _sys_oid(varbinds: Mapping[Oid, Value]) -> Oid | None:
    value = varbinds.get((1, 3, 6, 1, 2, 1, 1, 2, 0))
    return value if isinstance(value, tuple) else None


async def _walk_into(
    session: SnmpSession, columns: Sequence[Oid], into: dict[Oid, Value], problems: list[Problem]
) -> None:
    if not columns:
        return
    try:
        result = await session.walk(columns)
    except SnmpError as exc:
        problems.extend(_problem(column, exc) for column in columns)
        return
    for rows in result.rows.values():
        into.update(rows)
    problems.extend(
        Problem(field="identity", oid=format_oid(column), reason=reason)
        for column, reason in result.failed.items()
    )


async def _get_into(
    session: SnmpSession, oids: Sequence[Oid], into: dict[Oid, Value], problems: list[Problem]
) -> None:
    if not oids:
        return
    try:
        into.update(await session.get(oids))
    except SnmpError as exc:
        problems.extend(_problem(oid, exc) for oid in oids)


def _problem(oid: Oid, exc: SnmpError) -> Problem:
    reason = "timeout" if isinstance(exc, SnmpTimeout) else "snmp_error"
    return Problem(field="identity", oid=format_oid(oid), reason=reason, detail=str(exc))


def _size(targets: Iterable[str]) -> int:
    return len(targets) if isinstance(targets, Sized) else 0
