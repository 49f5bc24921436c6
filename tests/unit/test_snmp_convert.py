"""Socket-free tests of the SNMP transport core.

* pysnmp values -> plain values (the v3 path),
* the v1/v2c BER codec, checked against pyasn1's encoder and fuzzed,
* the GET strategy (v1 split, tooBig halving) and the column-walk state machine,
  driven through :class:`collectors.walk.Session` with an in-memory agent.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905

from collectors.credentials import Credential, SnmpSettings
from collectors.errors import SnmpProtocolError, SnmpTimeout
from collectors.snmp_message import (
    PduKind,
    RawValue,
    Response,
    Special,
    WireError,
    decode_response,
    encode_request,
)
from collectors.transport import SnmpTransport
from collectors.v3 import to_raw, varbind_to_raw
from collectors.walk import ColumnWalk, Session
from mibs.values import Oid, Value

# -- pysnmp values -> plain -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (rfc1902.Integer32(-5), -5),
        (rfc1902.Integer(2147483647), 2147483647),
        (rfc1902.Counter32(4294967295), 4294967295),
        (rfc1902.Gauge32(7), 7),
        (rfc1902.Unsigned32(8), 8),
        (rfc1902.TimeTicks(33604185), 33604185),
        (rfc1902.Counter64(2**64 - 1), 2**64 - 1),
        (rfc1902.OctetString(b"\xffBlack\x00"), b"\xffBlack\x00"),
        (rfc1902.IpAddress("10.0.0.1"), b"\n\x00\x00\x01"),
        (rfc1902.Opaque(b"\x9f\x78"), b"\x9f\x78"),
        (rfc1902.Bits(b"\x80"), b"\x80"),
        (rfc1902.ObjectIdentifier("1.3.6.1.2.1.25.3.1.5"), (1, 3, 6, 1, 2, 1, 25, 3, 1, 5)),
        (rfc1902.Null(""), Special.NULL),
        (rfc1905.noSuchObject, Special.NO_SUCH_OBJECT),
        (rfc1905.noSuchInstance, Special.NO_SUCH_INSTANCE),
        (rfc1905.endOfMibView, Special.END_OF_MIB_VIEW),
        (rfc1902.OctetString(), Special.UNSUPPORTED),  # schema without a value
    ],
)
def test_pysnmp_values_become_plain(value: object, plain: RawValue) -> None:
    converted = to_raw(value)
    assert converted == plain
    assert type(converted) is type(plain)


def test_varbind_name_must_be_an_oid() -> None:
    assert varbind_to_raw(rfc1902.ObjectName("1.3.6.1.2.1.1.5.0"), rfc1902.OctetString(b"x")) == (
        (1, 3, 6, 1, 2, 1, 1, 5, 0),
        b"x",
    )
    assert varbind_to_raw(rfc1902.OctetString(b"1.3.6"), rfc1902.Integer(1)) == (
        (),
        Special.BAD_NAME,
    )


# -- BER codec against pyasn1 ---------------------------------------------------------

oids = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=12).map(lambda arcs: (1, 3, *arcs))
typed_values = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(rfc1902.Integer32),
    st.integers(0, 2**32 - 1).map(rfc1902.Counter32),
    st.integers(0, 2**32 - 1).map(rfc1902.Gauge32),
    st.integers(0, 2**32 - 1).map(rfc1902.TimeTicks),
    st.integers(0, 2**64 - 1).map(rfc1902.Counter64),
    st.binary(max_size=300).map(rfc1902.OctetString),
    st.binary(min_size=4, max_size=4).map(rfc1902.IpAddress),
    oids.map(rfc1902.ObjectIdentifier),
    st.sampled_from([rfc1905.noSuchObject, rfc1905.noSuchInstance, rfc1905.endOfMibView]),
    st.just(rfc1902.Null("")),
)


def _pyasn1_response(
    version: int, request_id: int, varbinds: list[tuple[Oid, object]], status: int = 0
) -> bytes:
    p_mod = api.PROTOCOL_MODULES[version]
    pdu = p_mod.GetResponsePDU()
    p_mod.apiPDU.set_defaults(pdu)
    p_mod.apiPDU.set_request_id(pdu, request_id)
    p_mod.apiPDU.set_error_status(pdu, status)
    p_mod.apiPDU.set_varbinds(pdu, [(rfc1902.ObjectName(oid), value) for oid, value in varbinds])
    message = p_mod.Message()
    p_mod.apiMessage.set_defaults(message)
    p_mod.apiMessage.set_community(message, b"s3cret")
    p_mod.apiMessage.set_pdu(message, pdu)
    return bytes(encoder.encode(message))


@settings(max_examples=200, deadline=None)
@given(
    request_id=st.integers(0, 2**31 - 1),
    varbinds=st.lists(st.tuples(oids, typed_values), max_size=20),
)
def test_decoder_agrees_with_pyasn1(request_id: int, varbinds: list[tuple[Oid, object]]) -> None:
    version, community, response = decode_response(_pyasn1_response(1, request_id, varbinds))
    assert (version, community, response.request_id) == (1, b"s3cret", request_id)
    assert response.varbinds == [(oid, to_raw(value)) for oid, value in varbinds]


@settings(max_examples=100, deadline=None)
@given(
    kind=st.sampled_from(list(PduKind)),
    request_id=st.integers(0, 2**31 - 1),
    names=st.lists(oids, min_size=1, max_size=30),
    reps=st.integers(1, 100),
)
def test_requests_decode_in_pyasn1(
    kind: PduKind, request_id: int, names: list[Oid], reps: int
) -> None:
    data = encode_request(
        version="v2c",
        community=b"public",
        kind=kind,
        request_id=request_id,
        oids=names,
        max_repetitions=reps,
    )
    p_mod = api.PROTOCOL_MODULES[1]
    message, rest = decoder.decode(data, asn1Spec=p_mod.Message())
    assert rest == b""
    pdu = p_mod.apiMessage.get_pdu(message)
    assert int(p_mod.apiPDU.get_request_id(pdu)) == request_id
    assert [tuple(name) for name, _ in p_mod.apiPDU.get_varbinds(pdu)] == names
    if kind is PduKind.BULK:
        assert int(pdu["max-repetitions"]) == reps
        assert int(pdu["non-repeaters"]) == 0


def _raw_message(varbind: bytes) -> bytes:
    def tlv(tag: int, content: bytes) -> bytes:
        assert len(content) < 128
        return bytes((tag, len(content))) + content

    pdu = tlv(0xA2, b"\x02\x01\x07\x02\x01\x00\x02\x01\x00" + tlv(0x30, tlv(0x30, varbind)))
    return tlv(0x30, b"\x02\x01\x01" + tlv(0x04, b"public") + pdu)


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        (b"\x41\x01\xff", 2**32 - 1),  # Counter32 without its leading zero: net-snmp reads 2**32-1
        (b"\x46\x01\xff", 2**64 - 1),  # Counter64 likewise
        (b"\x02\x01\xfe", -2),  # a negative INTEGER is just negative
        (b"\x04\x03\xff\xfe\x00", b"\xff\xfe\x00"),  # invalid UTF-8 stays bytes
        (b"\x83\x00", Special.UNSUPPORTED),  # an exception tag RFC 3416 does not define
        (b"\x31\x00", Special.UNSUPPORTED),  # a SET where a value belongs
        (b"\x41\x00", Special.UNSUPPORTED),  # an empty Counter32
    ],
)
def test_decoder_tolerates_sloppy_values(value: bytes, plain: RawValue) -> None:
    name = b"\x06\x03\x2b\x06\x01"
    _, _, response = decode_response(_raw_message(name + value))
    assert response.varbinds == [((1, 3, 6, 1), plain)]


def test_varbind_name_that_is_not_an_oid_is_marked() -> None:
    _, _, response = decode_response(_raw_message(b"\x04\x01x\x02\x01\x05"))
    assert response.varbinds == [((), Special.BAD_NAME)]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x30",
        b"\x30\x80\x00\x00",  # indefinite length
        b"\x30\x05\x02\x01\x01\x04\x00",  # no PDU
        _raw_message(b"\x06\x01\x2b\x05\x00").replace(b"\xa2", b"\xa0", 1),  # a request
        _raw_message(b"\x06\x01\x2b\x05\x00")[:-3],  # truncated
    ],
)
def test_malformed_datagrams_raise_wire_error(data: bytes) -> None:
    with pytest.raises(WireError):
        decode_response(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decoder_never_raises_anything_but_wire_error(data: bytes) -> None:
    with contextlib.suppress(WireError):
        decode_response(data)


# -- an in-memory agent behind the Requester seam --------------------------------------

A = (1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 6)  # prtMarkerSuppliesDescription
B = (1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 9)  # prtMarkerSuppliesLevel
SCALAR = (1, 3, 6, 1, 2, 1, 1, 2, 0)
TABLE: dict[Oid, Value] = {
    SCALAR: (1, 3, 6, 1, 4, 1, 367),
    **{A + (1, i): f"Toner {i}".encode() for i in range(1, 5)},
    **{B + (1, i): 10 * i for i in range(1, 5)},
    (1, 3, 6, 1, 2, 1, 43, 12, 1, 1, 4, 1, 1): b"black",
}


class FakeAgent:
    """GET/GETNEXT/GETBULK over a dict, with v1 error semantics and a few faults."""

    def __init__(self, data: dict[Oid, Value], *, version: str = "v2c") -> None:
        self.data = data
        self.sorted = sorted(data)
        self.version = version
        self.sent: list[tuple[PduKind, int]] = []
        self.silent_after: int | None = None
        self.ignore_bulk = False
        self.max_varbinds: int | None = None
        self.override: dict[Oid, tuple[Oid, RawValue]] = {}

    def _next(self, oid: Oid) -> tuple[Oid, RawValue] | None:
        if oid in self.override:
            return self.override[oid]
        position = bisect.bisect_right(self.sorted, oid)
        if position == len(self.sorted):
            return None
        return self.sorted[position], self.data[self.sorted[position]]

    async def request(
        self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> Response:
        self.sent.append((kind, len(oids)))
        if (self.silent_after is not None and len(self.sent) > self.silent_after) or (
            kind is PduKind.BULK and self.ignore_bulk
        ):
            raise SnmpTimeout("no answer", address="fake")
        out: list[tuple[Oid, RawValue]] = []
        for position, oid in enumerate(oids, start=1):
            found = self._next(oid) if kind is not PduKind.GET else None
            if kind is PduKind.GET and oid in self.data:
                found = (oid, self.data[oid])
            if found is None and self.version == "v1":
                return Response(error_status=2, error_index=position)
            end = Special.END_OF_MIB_VIEW if kind is not PduKind.GET else Special.NO_SUCH_INSTANCE
            out.append(found or (oid, end))
        if kind is PduKind.BULK:
            cursors = [oid for oid, _ in out]
            for _ in range(max_repetitions - 1):
                row = [self._next(oid) or (oid, Special.END_OF_MIB_VIEW) for oid in cursors]
                out.extend(row)
                cursors = [oid for oid, _ in row]
        if self.max_varbinds is not None and len(out) > self.max_varbinds:
            return Response(error_status=1)
        return Response(varbinds=out)


def _session(agent: FakeAgent, memory: set[str] | None = None, **options: object) -> Session:
    return Session(
        agent,
        address="192.0.2.7",
        version=agent.version,
        settings=SnmpSettings.model_validate(options),
        no_bulk=memory,
    )


def _rows(prefix: Oid) -> list[tuple[Oid, Value]]:
    return [(oid, value) for oid, value in sorted(TABLE.items()) if oid[: len(prefix)] == prefix]


async def test_v1_get_splits_around_a_missing_oid() -> None:
    agent = FakeAgent(TABLE, version="v1")
    missing = (1, 3, 6, 1, 2, 1, 43, 5, 1, 1, 17, 1)
    got = await _session(agent).get([SCALAR, missing, A + (1, 2)])
    assert got == {SCALAR: TABLE[SCALAR], A + (1, 2): b"Toner 2"}
    assert agent.sent == [(PduKind.GET, 3), (PduKind.GET, 2)]


async def test_v2c_get_leaves_exceptions_out() -> None:
    agent = FakeAgent(TABLE)
    got = await _session(agent).get([SCALAR, (1, 3, 6, 1, 9)])
    assert got == {SCALAR: TABLE[SCALAR]}
    assert agent.sent == [(PduKind.GET, 2)]


async def test_get_halves_the_batch_on_too_big() -> None:
    agent = FakeAgent(TABLE)
    agent.max_varbinds = 3
    wanted = [A + (1, i) for i in range(1, 5)] + [B + (1, i) for i in range(1, 5)]
    got = await _session(agent).get(wanted)
    assert got == {oid: TABLE[oid] for oid in wanted}
    assert [n for _, n in agent.sent] == [8, 4, 2, 2, 2, 2]


async def test_get_error_without_index_raises_protocol_error() -> None:
    class GenErr(FakeAgent):
        async def request(
            self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
        ) -> Response:
            return Response(error_status=5, error_index=0)

    with pytest.raises(SnmpProtocolError, match=r"192\.0\.2\.7: GET answered genErr"):
        await _session(GenErr(TABLE)).get([SCALAR])


async def test_bulk_walk_reads_columns_side_by_side_in_one_request() -> None:
    agent = FakeAgent(TABLE)
    result = await _session(agent).walk([A, B])
    assert result.rows == {A: _rows(A), B: _rows(B)}
    assert result.failed == {}
    assert agent.sent == [(PduKind.BULK, 2)]  # 4 rows + the step out of each column


async def test_v1_walk_uses_getnext_and_ends_on_no_such_name() -> None:
    data = {oid: value for oid, value in TABLE.items() if oid[: len(B)] != B}
    data.update({B + (1, 1): 10})  # B is the last column: v1 answers noSuchName past it
    agent = FakeAgent({k: v for k, v in data.items() if k < B + (2,)}, version="v1")
    result = await _session(agent).walk([A, B])
    assert result.rows[A] == _rows(A)
    assert result.rows[B] == [(B + (1, 1), 10)]
    assert result.failed == {}
    assert {kind for kind, _ in agent.sent} == {PduKind.NEXT}


async def test_walk_falls_back_to_getnext_and_remembers_it() -> None:
    agent = FakeAgent(TABLE)
    agent.ignore_bulk = True
    memory: set[str] = set()
    result = await _session(agent, memory).walk([A, B])
    assert result.rows == {A: _rows(A), B: _rows(B)}
    assert result.failed == {}
    assert agent.sent[0] == (PduKind.BULK, 2)
    assert PduKind.BULK not in {kind for kind, _ in agent.sent[1:]}
    agent.sent.clear()
    await _session(agent, memory).walk([A])  # a new session for the same device
    assert {kind for kind, _ in agent.sent} == {PduKind.NEXT}


async def test_silence_mid_walk_keeps_rows_and_fails_open_columns() -> None:
    agent = FakeAgent(TABLE)
    agent.silent_after = 2
    result = await _session(agent, use_bulk=False).walk([A, B])
    assert result.rows == {A: _rows(A)[:2], B: _rows(B)[:2]}
    assert result.failed == {A: "timeout", B: "timeout"}


async def test_a_walk_never_answered_raises_timeout() -> None:
    agent = FakeAgent(TABLE)
    agent.silent_after = 0
    with pytest.raises(SnmpTimeout):
        await _session(agent).walk([A, B])


async def test_non_increasing_oid_stops_only_that_column() -> None:
    agent = FakeAgent(TABLE)
    agent.override[A + (1, 2)] = (A + (1, 1), b"again")
    result = await _session(agent, use_bulk=False).walk([A, B])
    assert result.rows[A] == _rows(A)[:2]
    assert result.failed == {A: "not_increasing"}
    assert result.rows[B] == _rows(B)


async def test_walk_halves_bulk_on_too_big_and_still_reads_everything() -> None:
    agent = FakeAgent(TABLE)
    agent.max_varbinds = 4
    result = await _session(agent).walk([A, B])
    assert result.rows == {A: _rows(A), B: _rows(B)}
    assert result.failed == {}
    assert all(n <= 2 for _, n in agent.sent)


def test_column_walk_state_machine() -> None:
    walk = ColumnWalk([A, B, A])
    assert walk.open_columns == [A, B]
    assert walk.next_oids([A, B]) == [A, B]
    walk.feed([A, B], [(A + (1, 1), b"x"), (B + (1, 1), Special.NULL)], bulk=False)
    assert walk.next_oids([A, B]) == [A + (1, 1), B + (1, 1)]  # NULL advances, adds no row
    walk.feed([A, B], [(A + (1, 2), Special.NO_SUCH_INSTANCE)], bulk=False)
    assert walk.open_columns == []
    result = walk.result()
    assert result.rows == {A: [(A + (1, 1), b"x")], B: []}
    assert result.failed == {A: "unexpected_exception", B: "short_response"}


def test_column_walk_fails_on_empty_bulk_answers() -> None:
    walk = ColumnWalk([A])
    walk.feed([A], [], bulk=True)
    assert walk.result().failed == {A: "no_progress"}


def test_column_walk_fails_on_bad_names_and_endless_columns() -> None:
    walk = ColumnWalk([A, B])
    walk.feed([A, B], [((), Special.BAD_NAME), (B + (1,), 1)], bulk=False)
    for i in range(2, 10_003):
        if not walk.open_columns:
            break
        walk.feed([B], [(B + (i,), i)], bulk=False)
    assert walk.result().failed == {A: "bad_index", B: "too_many_rows"}


async def test_a_dead_device_costs_no_getnext_probe_after_its_get_timed_out() -> None:
    agent = FakeAgent(TABLE)
    agent.silent_after = 0
    memory: set[str] = set()
    session = _session(agent, memory)
    with pytest.raises(SnmpTimeout):
        await session.get([SCALAR])
    with pytest.raises(SnmpTimeout):
        await session.walk([A, B])
    assert [kind for kind, _ in agent.sent] == [PduKind.GET, PduKind.BULK]
    assert memory == set()  # silence is not proof of a bulk-deaf device


def test_transport_is_bound_to_the_loop_it_was_entered_in() -> None:
    credential = Credential(name="lab", version="v2c", community="public")
    transport = SnmpTransport(SnmpSettings())
    with pytest.raises(RuntimeError, match="enter the SnmpTransport"):
        transport.session("192.0.2.1", credential)

    async def enter() -> None:
        await transport.__aenter__()

    async def use() -> None:
        transport.session("192.0.2.1", credential)

    asyncio.run(enter())
    with pytest.raises(RuntimeError, match="another event loop"):
        asyncio.run(use())
    transport.close()
    with pytest.raises(RuntimeError, match="closed"):
        transport.session("192.0.2.1", credential)


async def test_a_host_name_that_does_not_resolve_is_an_unresolvable_protocol_error() -> None:
    credential = Credential(name="lab", version="v2c", community="public")
    async with SnmpTransport(SnmpSettings()) as transport:
        with pytest.raises(SnmpProtocolError, match=r"printer\.invalid: cannot resolve") as caught:
            await transport.session("printer.invalid", credential).get([SCALAR])
    assert (caught.value.reason, caught.value.address) == ("unresolvable", "printer.invalid")
