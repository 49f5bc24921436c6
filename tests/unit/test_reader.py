"""The reader over fake sessions: plans executed, failures become problems, profiles in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import jsonschema
import pytest
from pydantic import SecretStr

from agent.schema import read_schema
from collectors.credentials import Credential, SnmpSettings
from collectors.errors import SnmpAuthError, SnmpPortClosed, SnmpProtocolError, SnmpTimeout
from collectors.reader import read_device, read_session
from collectors.udp import Pace
from collectors.walk import WalkResult
from mibs.identity import SYS_OBJECT_ID
from mibs.plan import base_plan, full_read_plan, vendor_plan
from mibs.values import Oid, Value, format_oid, is_under, parse_oid

ADDRESS = "192.0.2.7"
HP_LASERJET = parse_oid("1.3.6.1.4.1.11.2.3.9.1")
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)

# A minimal Printer-MIB printer (RFC 3805 / RFC 2790), one marker, one toner at 40 %.
PRINTER: dict[Oid, Value] = {
    parse_oid("1.3.6.1.2.1.1.1.0"): b"HP LaserJet test",
    SYS_OBJECT_ID: HP_LASERJET,
    parse_oid("1.3.6.1.2.1.25.3.2.1.2.1"): parse_oid("1.3.6.1.2.1.25.3.1.5"),  # hrDevicePrinter
    parse_oid("1.3.6.1.2.1.25.3.2.1.3.1"): b"HP LaserJet test",
    parse_oid("1.3.6.1.2.1.43.5.1.1.17.1"): b"CNB1234567",  # prtGeneralSerialNumber
    parse_oid("1.3.6.1.2.1.43.10.2.1.4.1.1"): 48213,  # prtMarkerLifeCount
    parse_oid("1.3.6.1.2.1.43.10.2.1.3.1.1"): 7,  # prtMarkerCounterUnit impressions
    parse_oid("1.3.6.1.2.1.43.11.1.1.4.1.1"): 3,  # class supplyThatIsConsumed
    parse_oid("1.3.6.1.2.1.43.11.1.1.5.1.1"): 3,  # type toner
    parse_oid("1.3.6.1.2.1.43.11.1.1.6.1.1"): b"Black Toner",
    parse_oid("1.3.6.1.2.1.43.11.1.1.7.1.1"): 19,  # unit percent
    parse_oid("1.3.6.1.2.1.43.11.1.1.8.1.1"): 100,
    parse_oid("1.3.6.1.2.1.43.11.1.1.9.1.1"): 40,
}


@dataclass
class FakeSession:
    """An SnmpSession over a dict of varbinds, with knobs for the ways devices fail."""

    varbinds: dict[Oid, Value]
    address: str = ADDRESS
    silent: bool = False  # never answers
    refuse: bool = False  # credential refused
    silent_after: int | None = None  # stop answering after this many requests
    failed_columns: dict[Oid, str] = field(default_factory=dict)
    walk_raises: Exception | None = None
    delay: float = 0.0
    walk_delay: float | None = None  # a walk's own delay (default: ``delay``)
    requests: list[tuple[str, tuple[Oid, ...]]] = field(default_factory=list)

    async def _request(self, kind: str, oids: Sequence[Oid]) -> None:
        self.requests.append((kind, tuple(oids)))
        delay = self.walk_delay if kind == "walk" and self.walk_delay is not None else self.delay
        if delay:
            await asyncio.sleep(delay)
        if self.refuse:
            raise SnmpAuthError("wrong user", address=self.address)
        if self.silent or (
            self.silent_after is not None and len(self.requests) > self.silent_after
        ):
            raise SnmpTimeout("no answer", address=self.address)

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
        await self._request("get", oids)
        return {oid: self.varbinds[oid] for oid in oids if oid in self.varbinds}

    async def walk(self, columns: Sequence[Oid]) -> WalkResult:
        await self._request("walk", columns)
        if self.walk_raises is not None:
            raise self.walk_raises
        result = WalkResult()
        for prefix in columns:
            if prefix in self.failed_columns:
                result.failed[prefix] = self.failed_columns[prefix]
                continue
            result.rows[prefix] = [
                (oid, value)
                for oid, value in sorted(self.varbinds.items())
                if is_under(oid, prefix)
            ]
        return result


def _clock() -> datetime:
    return NOW


async def test_reads_a_printer_in_few_requests() -> None:
    session = FakeSession(dict(PRINTER))
    read = await read_session(session, full_read_plan(), deadline=5, clock=_clock)
    assert read.address == ADDRESS
    assert read.collected_at == NOW
    assert read.identity.serial == "CNB1234567"
    assert read.identity.is_printer
    assert read.counters.total == 48213
    assert [(s.type, s.percent, s.state) for s in read.supplies] == [("toner", 40.0, "ok")]
    jsonschema.validate(read.model_dump(mode="json"), read_schema())
    assert not [p for p in read.problems if p.reason in ("timeout", "deadline")]
    # GET + walk of the base plan, then at most GET + walk of the vendor plan.
    assert len(session.requests) <= 4
    assert session.requests[0][0] == "get"
    assert SYS_OBJECT_ID in session.requests[0][1]


async def test_vendor_plan_follows_sys_object_id() -> None:
    extra = vendor_plan(HP_LASERJET)
    session = FakeSession(dict(PRINTER))
    await read_session(session, full_read_plan(), deadline=5, clock=_clock)
    asked = {oid for _, oids in session.requests for oid in oids}
    assert {item.oid for item in extra.scalars + extra.columns} <= asked
    base = base_plan()
    assert {item.oid for item in base.scalars + base.columns} <= asked


async def test_no_sys_object_id_means_no_vendor_requests() -> None:
    varbinds = {oid: v for oid, v in PRINTER.items() if oid != SYS_OBJECT_ID}
    session = FakeSession(varbinds)
    read = await read_session(session, full_read_plan(), deadline=5, clock=_clock)
    assert len(session.requests) == 2  # base GET + base walk only
    assert read.counters.total == 48213


async def test_a_device_that_never_answers_raises_timeout() -> None:
    session = FakeSession(dict(PRINTER), silent=True)
    with pytest.raises(SnmpTimeout):
        await read_session(session, full_read_plan(), deadline=5, clock=_clock)
    assert len(session.requests) == 1  # the probe GET, nothing after it


async def test_a_refused_credential_raises_auth_error() -> None:
    with pytest.raises(SnmpAuthError):
        await read_session(
            FakeSession(dict(PRINTER), refuse=True), full_read_plan(), deadline=5, clock=_clock
        )


async def test_a_failed_column_is_a_problem_on_its_field_and_the_rest_survives() -> None:
    supplies_level = parse_oid("1.3.6.1.2.1.43.11.1.1.9")
    columns = {item.oid: item for item in base_plan().columns}
    assert supplies_level in columns, "the base plan walks prtMarkerSuppliesLevel"
    session = FakeSession(dict(PRINTER), failed_columns={supplies_level: "not_increasing"})
    read = await read_session(session, full_read_plan(), deadline=5, clock=_clock)
    problem = next(p for p in read.problems if p.oid == format_oid(supplies_level))
    assert problem.reason == "not_increasing"
    assert problem.field == columns[supplies_level].name
    assert read.counters.total == 48213
    assert read.identity.serial == "CNB1234567"


async def test_a_device_falling_silent_midway_keeps_the_identity() -> None:
    session = FakeSession(dict(PRINTER), silent_after=1)  # answers the GET, then nothing
    read = await read_session(session, full_read_plan(), deadline=5, clock=_clock)
    assert read.identity.sys_object_id == format_oid(HP_LASERJET)
    timed_out = {p.oid for p in read.problems if p.reason == "timeout"}
    assert {format_oid(item.oid) for item in base_plan().columns} <= timed_out
    assert read.counters.total is None
    assert len(session.requests) == 2  # no vendor requests to a silent device


async def test_an_error_status_on_the_walk_marks_those_columns() -> None:
    error = SnmpProtocolError("genErr", address=ADDRESS)
    session = FakeSession(dict(PRINTER), walk_raises=error)
    read = await read_session(session, full_read_plan(), deadline=5, clock=_clock)
    assert {p.reason for p in read.problems if p.field.startswith("supplies")} == {"protocol_error"}
    assert read.identity.serial is not None or read.identity.sys_descr is not None


async def test_the_deadline_cuts_a_slow_read_short_with_problems() -> None:
    session = FakeSession(dict(PRINTER), walk_delay=30)  # the GET answers, the walks hang
    started = time.monotonic()
    read = await read_session(session, full_read_plan(), deadline=0.5, clock=_clock)
    assert time.monotonic() - started < 20  # cut at the deadline, not after the 30 s walk
    deadline = [p for p in read.problems if p.reason == "deadline"]
    assert {p.oid for p in deadline} >= {format_oid(i.oid) for i in base_plan().columns}
    assert read.identity.sys_object_id == format_oid(HP_LASERJET)  # the GET made it in time


async def test_a_deadline_before_any_answer_is_a_timeout() -> None:
    session = FakeSession(dict(PRINTER), delay=1.0)
    with pytest.raises(SnmpTimeout, match="deadline"):
        await read_session(session, full_read_plan(), deadline=0.05, clock=_clock)


async def test_values_outside_the_requested_columns_are_ignored() -> None:
    """A walk row that is not under its prefix (a confused agent) never reaches the decoder."""
    session = FakeSession(dict(PRINTER))
    original = session.walk

    async def sloppy(columns: Sequence[Oid]) -> WalkResult:
        result = await original(columns)
        stray = parse_oid("1.3.6.1.2.1.43.10.2.1.4.1.1")
        other = next(prefix for prefix in result.rows if not is_under(stray, prefix))
        result.rows[other].append((stray, 1))
        return result

    session.walk = sloppy  # type: ignore[method-assign]
    read = await read_session(session, full_read_plan(), deadline=5, clock=_clock)
    assert read.counters.total == 48213


# -- read_device: the credential order, the outcome and its reason ------------------

PROFILES = [
    Credential(name=name, community=SecretStr(name)) for name in ("first", "second", "third")
]


@dataclass
class FakeNet:
    """Stands in for SnmpTransport: a device that takes only some profiles."""

    accepts: set[str]
    refuses: set[str] = field(default_factory=set)
    closed: bool = False
    error: SnmpProtocolError | None = None
    sessions: list[str] = field(default_factory=list)

    def session(
        self,
        address: str,
        credential: Credential,
        *,
        settings: SnmpSettings | None = None,
        pace: Pace | None = None,
    ) -> FakeSession:
        self.sessions.append(credential.name)
        session = FakeSession(
            dict(PRINTER),
            address=address,
            silent=credential.name not in self.accepts,
            refuse=credential.name in self.refuses,
        )
        if self.closed:
            session.get = _raise(SnmpPortClosed("ICMP port unreachable", address=address))  # type: ignore[method-assign]
        elif self.error is not None and credential.name not in self.accepts:
            session.get = _raise(self.error)  # type: ignore[method-assign]
        return session


def _raise(exc: Exception):  # type: ignore[no-untyped-def]
    async def fail(oids: Sequence[Oid]) -> dict[Oid, Value]:
        raise exc

    return fail


async def test_every_profile_is_tried_in_order_until_one_answers() -> None:
    net = FakeNet(accepts={"third"})
    outcome = await read_device(ADDRESS, PROFILES, full_read_plan(), 5, sessions=net, clock=_clock)
    assert net.sessions == ["first", "second", "third"]
    assert (outcome.kind, outcome.profile, outcome.reason) == ("read", "third", None)
    assert outcome.read is not None
    assert outcome.read.counters.total == 48213


async def test_the_remembered_profile_is_tried_first() -> None:
    net = FakeNet(accepts={"second"})
    outcome = await read_device(
        ADDRESS, PROFILES, full_read_plan(), 5, sessions=net, remembered="second", clock=_clock
    )
    assert net.sessions == ["second"]
    assert outcome.profile == "second"
    # a remembered profile that stopped working falls back to the configured order
    net = FakeNet(accepts={"third"})
    outcome = await read_device(
        ADDRESS, PROFILES, full_read_plan(), 5, sessions=net, remembered="second", clock=_clock
    )
    assert net.sessions == ["second", "first", "third"]
    assert outcome.profile == "third"


async def test_no_answer_to_any_profile_is_silent_with_reason_timeout() -> None:
    net = FakeNet(accepts=set())
    outcome = await read_device(ADDRESS, PROFILES, full_read_plan(), 5, sessions=net)
    assert (outcome.kind, outcome.reason, outcome.read) == ("silent", "timeout", None)
    assert net.sessions == ["first", "second", "third"]


async def test_a_closed_port_ends_the_device_without_more_profiles() -> None:
    net = FakeNet(accepts={"third"}, closed=True)
    outcome = await read_device(ADDRESS, PROFILES, full_read_plan(), 5, sessions=net)
    assert (outcome.kind, outcome.reason) == ("silent", "port_closed")
    assert net.sessions == ["first"]


async def test_refusals_are_named_and_a_later_profile_still_wins() -> None:
    net = FakeNet(accepts={"third"}, refuses={"first"})
    outcome = await read_device(ADDRESS, PROFILES, full_read_plan(), 5, sessions=net)
    assert (outcome.kind, outcome.profile) == ("read", "third")
    net = FakeNet(accepts=set(), refuses={"first", "second", "third"})
    outcome = await read_device(ADDRESS, PROFILES, full_read_plan(), 5, sessions=net)
    assert (outcome.kind, outcome.reason) == ("refused", "auth_failed")
    assert [r.split(":")[0] for r in outcome.refusals] == ["first", "second", "third"]


async def test_an_unusable_first_answer_is_failed_with_its_reason() -> None:
    error = SnmpProtocolError("GET answered genErr (index 0)", address=ADDRESS)
    net = FakeNet(accepts=set(), error=error)
    outcome = await read_device(ADDRESS, PROFILES, full_read_plan(), 5, sessions=net)
    assert (outcome.kind, outcome.reason) == ("failed", "protocol_error")
    assert "genErr" in outcome.detail
    assert net.sessions == ["first", "second", "third"]


async def test_the_deadline_covers_every_profile() -> None:
    net = FakeNet(accepts={"third"})
    original = net.session

    def slow(address: str, credential: Credential, **kwargs: object) -> FakeSession:
        session = original(address, credential)
        session.delay = 5  # one answer takes longer than the whole deadline
        return session

    net.session = slow  # type: ignore[assignment,method-assign]
    started = time.monotonic()
    outcome = await read_device(ADDRESS, PROFILES, full_read_plan(), 0.3, sessions=net)
    assert time.monotonic() - started < 4  # cut at 0.3 s, not after one 5 s answer
    assert (outcome.kind, outcome.reason) == ("silent", "timeout")
    assert "third" not in net.sessions
