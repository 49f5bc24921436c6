"""The transport against a responder that misbehaves on purpose (tests/support/hostile.py)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from collectors.credentials import Credential, SnmpSettings
from collectors.errors import SnmpProtocolError, SnmpTimeout
from collectors.transport import SnmpTransport
from tests.support.hostile import (
    COUNTER32,
    COUNTER64,
    GAUGE32,
    HostileFactory,
    HostileValue,
    Special,
    Typed,
)

pytestmark = pytest.mark.integration

Oid = tuple[int, ...]
SUPPLIES = (1, 3, 6, 1, 2, 1, 43, 11, 1, 1)
COLUMNS = [SUPPLIES + (c,) for c in range(2, 10)]  # 8 columns of prtMarkerSuppliesTable
SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)
AFTER = (1, 3, 6, 1, 2, 1, 43, 12, 1, 1, 4, 1, 1)  # first OID after the supplies table


def _table(rows: int = 4) -> dict[Oid, HostileValue]:
    data: dict[Oid, HostileValue] = {SYS_DESCR: b"Hostile printer", SYS_OBJECT_ID: (1, 3, 6, 1, 4)}
    for column in COLUMNS:
        for row in range(1, rows + 1):
            value: HostileValue = f"c{column[-1]}r{row}".encode() if column[-1] == 6 else row
            data[column + (1, row)] = value
    data[AFTER] = b"black"
    return data


def _rows(data: dict[Oid, HostileValue], prefix: Oid) -> list[tuple[Oid, HostileValue]]:
    return [(oid, data[oid]) for oid in sorted(data) if oid[: len(prefix)] == prefix]


def _v2c(community: str = "public") -> Credential:
    return Credential(name="lab-v2c", version="v2c", community=community)


def _settings(port: int, **more: object) -> SnmpSettings:
    return SnmpSettings.model_validate({"port": port, "timeout": 0.3, "retries": 0, **more})


async def test_table_walk_of_4_rows_by_8_columns_costs_one_or_two_getbulks(
    hostile_factory: HostileFactory,
) -> None:
    data = _table()
    responder = await hostile_factory(data, address="127.0.2.20")
    async with SnmpTransport(_settings(responder.port, max_repetitions=10)) as transport:
        result = await transport.session("127.0.2.20", _v2c()).walk(COLUMNS)
    assert result.failed == {}
    assert result.rows == {column: _rows(data, column) for column in COLUMNS}
    assert 1 <= responder.counts["getbulk"] <= 2
    assert responder.counts["getnext"] == 0
    assert transport.requests_sent == responder.requests


async def test_device_without_getbulk_falls_back_to_getnext_once(
    hostile_factory: HostileFactory,
) -> None:
    data = _table()
    responder = await hostile_factory(data, address="127.0.2.21", no_bulk=True)
    async with SnmpTransport(_settings(responder.port)) as transport:
        session = transport.session("127.0.2.21", _v2c())
        assert await session.get([SYS_DESCR]) == {SYS_DESCR: b"Hostile printer"}
        result = await session.walk(COLUMNS)
        assert result.failed == {}
        assert result.rows == {column: _rows(data, column) for column in COLUMNS}
        assert responder.counts["getbulk"] == 1  # one unanswered try, then never again
        again = await transport.session("127.0.2.21", _v2c()).walk(COLUMNS[:2])
        assert again.rows[COLUMNS[0]] == _rows(data, COLUMNS[0])
    assert responder.counts["getbulk"] == 1
    assert transport.timeouts == 1


async def test_silence_mid_walk_returns_rows_so_far_and_failed_columns(
    hostile_factory: HostileFactory,
) -> None:
    data = _table()
    responder = await hostile_factory(data, address="127.0.2.22", answer_limit=2)
    settings = _settings(responder.port, use_bulk=False)
    async with SnmpTransport(settings) as transport:
        result = await transport.session("127.0.2.22", _v2c()).walk(COLUMNS[:3])
    assert result.rows == {column: _rows(data, column)[:2] for column in COLUMNS[:3]}
    assert result.failed == dict.fromkeys(COLUMNS[:3], "timeout")
    assert responder.counts["getnext"] == 3


async def test_wrong_types_huge_and_broken_values_arrive_as_plain_values(
    hostile_factory: HostileFactory,
) -> None:
    big = bytes(range(256)) * 234  # 59,904 octets: about the largest UDP answer possible
    values: dict[Oid, HostileValue] = {
        (1, 3, 6, 1, 9, 1, 0): Typed(COUNTER32, -1),  # negative Counter32 (no leading zero)
        (1, 3, 6, 1, 9, 2, 0): Typed(COUNTER64, 2**64 - 1),
        (1, 3, 6, 1, 9, 3, 0): Typed(GAUGE32, 2**32 + 5),  # too big for its type
        (1, 3, 6, 1, 9, 4, 0): -2_000_000_000_000,  # INTEGER far outside Integer32
        (1, 3, 6, 1, 9, 5, 0): b"\xff\xfe\xc3(Toner\x00",  # invalid UTF-8 and a NUL
        (1, 3, 6, 1, 9, 6, 0): (1, 3, 6, 1, 4, 1, 2**40),  # an OID where a number belongs
        (1, 3, 6, 1, 9, 7, 0): Typed(0x44, b"\x9f\x78\x04\x42\xf6\x00\x00"),  # Opaque float
        (1, 3, 6, 1, 9, 8, 0): Typed(0x47, b""),  # empty value of a strange type
        (1, 3, 6, 1, 9, 9, 0): None,  # NULL
        (1, 3, 6, 1, 9, 10, 0): Special.NO_SUCH_OBJECT,
        (1, 3, 6, 1, 9, 11, 0): big,
    }
    responder = await hostile_factory(values, address="127.0.2.23")
    async with SnmpTransport(_settings(responder.port)) as transport:
        session = transport.session("127.0.2.23", _v2c())
        got = await session.get(list(values)[:10])
        assert got == {
            (1, 3, 6, 1, 9, 1, 0): 2**32 - 1,
            (1, 3, 6, 1, 9, 2, 0): 2**64 - 1,
            (1, 3, 6, 1, 9, 3, 0): (2**32 + 5) % 2**32,
            (1, 3, 6, 1, 9, 4, 0): -2_000_000_000_000,
            (1, 3, 6, 1, 9, 5, 0): b"\xff\xfe\xc3(Toner\x00",
            (1, 3, 6, 1, 9, 6, 0): (1, 3, 6, 1, 4, 1, 2**40),
            (1, 3, 6, 1, 9, 7, 0): b"\x9f\x78\x04\x42\xf6\x00\x00",
        }
        assert await session.get([(1, 3, 6, 1, 9, 11, 0)]) == {(1, 3, 6, 1, 9, 11, 0): big}
        walked = await session.walk([(1, 3, 6, 1, 9)])
        # noSuchObject has no place in a GETNEXT answer: the column stops there
        assert walked.rows[(1, 3, 6, 1, 9)] == sorted(got.items())
        assert walked.failed == {(1, 3, 6, 1, 9): "unexpected_exception"}
        del values[(1, 3, 6, 1, 9, 10, 0)]
        responder.set_varbinds(values)
        walked = await session.walk([(1, 3, 6, 1, 9)])
    assert walked.failed == {}
    assert walked.rows[(1, 3, 6, 1, 9)] == [*sorted(got.items()), ((1, 3, 6, 1, 9, 11, 0), big)]


async def test_v1_get_with_a_missing_oid_is_split_and_the_rest_survives(
    hostile_factory: HostileFactory,
) -> None:
    data = _table()
    responder = await hostile_factory(data, address="127.0.2.24")
    v1 = Credential(name="old", version="v1", community="public")
    missing = (1, 3, 6, 1, 2, 1, 43, 5, 1, 1, 17, 1)
    async with SnmpTransport(_settings(responder.port)) as transport:
        session = transport.session("127.0.2.24", v1)
        got = await session.get([SYS_DESCR, missing, SYS_OBJECT_ID])
        walked = await session.walk(COLUMNS[:2])
    assert got == {SYS_DESCR: data[SYS_DESCR], SYS_OBJECT_ID: data[SYS_OBJECT_ID]}
    assert responder.counts["get"] == 2
    assert walked.rows[COLUMNS[0]] == _rows(data, COLUMNS[0])
    assert walked.failed == {}
    assert responder.counts["getbulk"] == 0


async def test_error_status_raises_on_get_and_fails_walked_columns(
    hostile_factory: HostileFactory,
) -> None:
    responder = await hostile_factory(_table(), address="127.0.2.25", error_status=5)
    async with SnmpTransport(_settings(responder.port)) as transport:
        session = transport.session("127.0.2.25", _v2c())
        with pytest.raises(SnmpProtocolError, match="genErr") as caught:
            await session.get([SYS_DESCR])
        assert caught.value.address == "127.0.2.25"
        result = await session.walk(COLUMNS[:2])
    assert result.failed == dict.fromkeys(COLUMNS[:2], "error_status:genErr")


async def test_non_increasing_oid_stops_that_column_only(hostile_factory: HostileFactory) -> None:
    data = _table()
    loop_back = {COLUMNS[0] + (1, 2): COLUMNS[0] + (1, 1)}
    responder = await hostile_factory(data, address="127.0.2.26", rewind=loop_back)
    async with SnmpTransport(_settings(responder.port)) as transport:
        result = await transport.session("127.0.2.26", _v2c()).walk(COLUMNS[:2])
    assert result.failed == {COLUMNS[0]: "not_increasing"}
    assert result.rows[COLUMNS[0]] == _rows(data, COLUMNS[0])[:2]
    assert result.rows[COLUMNS[1]] == _rows(data, COLUMNS[1])


async def test_too_big_answers_shrink_the_requests(hostile_factory: HostileFactory) -> None:
    data = _table(rows=6)
    responder = await hostile_factory(data, address="127.0.2.27", max_varbinds=10)
    async with SnmpTransport(_settings(responder.port)) as transport:
        session = transport.session("127.0.2.27", _v2c())
        result = await session.walk(COLUMNS)
        got = await session.get(sorted(data))
    assert result.failed == {}
    assert result.rows == {column: _rows(data, column) for column in COLUMNS}
    assert got == data


async def test_wrong_community_looks_like_silence(hostile_factory: HostileFactory) -> None:
    responder = await hostile_factory(_table(), address="127.0.2.28")
    async with SnmpTransport(_settings(responder.port, retries=1)) as transport:
        session = transport.session("127.0.2.28", _v2c("not-it"))
        with pytest.raises(Exception, match=r"127\.0\.2\.28: no answer") as caught:
            await session.get([SYS_DESCR])
    assert type(caught.value).__name__ == "SnmpTimeout"
    assert responder.counts["wrong_community"] == 2  # the first try and one retry


@pytest.mark.parametrize(
    ("address", "knobs"),
    [("127.0.2.60", {"wrong_request_id": True}), ("127.0.2.61", {"truncate": 3})],
)
async def test_an_answer_with_another_request_id_or_cut_short_is_not_taken(
    hostile_factory: HostileFactory, address: str, knobs: dict[str, object]
) -> None:
    responder = await hostile_factory(_table(), address=address, **knobs)
    async with SnmpTransport(_settings(responder.port)) as transport:
        with pytest.raises(SnmpTimeout, match="no answer"):
            await transport.session(address, _v2c()).get([SYS_DESCR])
    assert (responder.counts["get"], responder.answered) == (1, 1)  # it answered, in vain


async def test_many_devices_in_flight_share_one_socket(hostile_factory: HostileFactory) -> None:
    devices = []
    for n in range(5):
        data = _table()
        data[SYS_DESCR] = f"printer {n}".encode()
        devices.append(await hostile_factory(data, address=f"127.0.2.{40 + n}"))
    async with SnmpTransport(_settings(161, timeout=2.0)) as transport:

        async def read(n: int) -> bytes | int | tuple[int, ...]:
            settings = _settings(devices[n % 5].port, timeout=2.0)
            session = transport.session(f"127.0.2.{40 + n % 5}", _v2c(), settings=settings)
            return (await session.get([SYS_DESCR]))[SYS_DESCR]

        answers = await asyncio.gather(*(read(n) for n in range(200)))
    assert answers == [f"printer {n % 5}".encode() for n in range(200)]
    assert transport.timeouts == 0


async def test_cancelled_request_leaves_the_transport_usable(
    hostile_factory: HostileFactory,
) -> None:
    silent = await hostile_factory(_table(), address="127.0.2.29", answer_limit=0)
    alive = await hostile_factory(_table(), address="127.0.2.30")
    async with SnmpTransport(_settings(silent.port, timeout=5.0)) as transport:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await transport.session("127.0.2.29", _v2c()).get([SYS_DESCR])
        session = transport.session("127.0.2.30", _v2c(), settings=_settings(alive.port))
        assert await session.get([SYS_DESCR]) == {SYS_DESCR: b"Hostile printer"}
    with pytest.raises(RuntimeError, match="closed"):
        transport.session("127.0.2.30", _v2c())


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
async def test_ipv6_target(hostile_factory: HostileFactory) -> None:
    data = _table()
    responder = await hostile_factory(data, address="::1")
    async with SnmpTransport(_settings(responder.port)) as transport:
        session = transport.session("::1", _v2c())
        assert await session.get([SYS_DESCR]) == {SYS_DESCR: b"Hostile printer"}
        result = await session.walk(COLUMNS[:2])
    assert result.rows[COLUMNS[1]] == _rows(data, COLUMNS[1])


async def test_closing_the_transport_fails_requests_in_flight_at_once(
    hostile_factory: HostileFactory,
) -> None:
    silent = await hostile_factory(_table(), address="127.0.2.31", answer_limit=0)
    async with SnmpTransport(_settings(silent.port, timeout=5.0)) as transport:
        request = asyncio.create_task(transport.session("127.0.2.31", _v2c()).get([SYS_DESCR]))
        await asyncio.sleep(0.1)
    with pytest.raises(RuntimeError, match="closed with a request in flight"):
        async with asyncio.timeout(1):
            await request
