"""A purpose-built SNMPv1/v2c responder that misbehaves on command (asyncio UDP, loopback).

``responder = await hostile_factory(varbinds, community="public", **behaviour)``
replays a varbinds mapping for GET, GETNEXT and GETBULK, counts the requests it
received per PDU type (``responder.counts["getbulk"]``) and can:

* send any value type, including ones a sane agent never would: plain ``int``
  is INTEGER, ``bytes`` OCTET STRING, ``tuple`` OID, :class:`Typed` any
  application tag with any (even negative or huge) integer, :class:`Raw` any
  tag with any content, :class:`Exc` an SNMPv2 exception;
* ignore GETBULK entirely (``no_bulk``), like old Brother print servers;
* stop answering after N requests (``answer_limit``), for silence mid-walk;
* answer every request with an error-status (``error_status``/``error_index``);
* go back to an earlier OID after a given one (``rewind``), a non-increasing walk;
* answer tooBig when a response would carry more than ``max_varbinds``.

Requests are decoded with pysnmp's protocol API (pyasn1); responses are encoded
by hand so that they can break any rule. Behaviour fields may be changed while
the responder runs.
"""

from __future__ import annotations

import asyncio
import bisect
import enum
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from pyasn1.codec.ber import decoder
from pysnmp.proto import api

Oid = tuple[int, ...]


class Exc(enum.Enum):
    NO_SUCH_OBJECT = 0x80
    NO_SUCH_INSTANCE = 0x81
    END_OF_MIB_VIEW = 0x82


@dataclass(frozen=True)
class Typed:
    """An integer under any tag: ``Typed(0x41, -1)`` is a negative Counter32."""

    tag: int
    value: int


@dataclass(frozen=True)
class Raw:
    """Any tag with any content octets."""

    tag: int
    content: bytes


COUNTER32, GAUGE32, TIMETICKS, COUNTER64 = 0x41, 0x42, 0x43, 0x46
HostileValue = int | bytes | tuple[int, ...] | Typed | Raw | Exc | None  # None is NULL


# -- hand-made BER -------------------------------------------------------------------


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def _int_content(value: int) -> bytes:
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return value.to_bytes(size, "big", signed=True)


def _oid_content(oid: Oid) -> bytes:
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def encode_value(value: HostileValue) -> bytes:
    if value is None:
        return b"\x05\x00"
    if isinstance(value, Exc):
        return bytes((value.value, 0))
    if isinstance(value, Raw):
        return _tlv(value.tag, value.content)
    if isinstance(value, Typed):
        return _tlv(value.tag, _int_content(value.value))
    if isinstance(value, bool):
        raise TypeError("bool is not an SNMP value")
    if isinstance(value, int):
        return _tlv(0x02, _int_content(value))
    if isinstance(value, bytes):
        return _tlv(0x04, value)
    return _tlv(0x06, _oid_content(value))


def encode_response(
    version: int,
    community: bytes,
    request_id: int,
    status: int,
    index: int,
    varbinds: list[tuple[Oid, HostileValue]],
) -> bytes:
    body = b"".join(_tlv(0x30, _tlv(0x06, _oid_content(o)) + encode_value(v)) for o, v in varbinds)
    pdu = _tlv(
        0xA2,
        _tlv(0x02, _int_content(request_id))
        + _tlv(0x02, _int_content(status))
        + _tlv(0x02, _int_content(index))
        + _tlv(0x30, body),
    )
    return _tlv(0x30, _tlv(0x02, _int_content(version)) + _tlv(0x04, community) + pdu)


# -- the responder -------------------------------------------------------------------


@dataclass
class HostileResponder(asyncio.DatagramProtocol):
    varbinds: dict[Oid, HostileValue]
    community: bytes = b"public"
    no_bulk: bool = False
    answer_limit: int | None = None
    error_status: int = 0
    error_index: int = 0
    rewind: dict[Oid, Oid] = field(default_factory=dict)
    max_varbinds: int | None = None
    address: str = "127.0.0.1"
    port: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    answered: int = 0
    transport: asyncio.DatagramTransport | None = None

    def __post_init__(self) -> None:
        self._sorted = sorted(self.varbinds)

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def requests(self) -> int:
        return sum(self.counts.values())

    def set_varbinds(self, varbinds: Mapping[Oid, HostileValue]) -> None:
        self.varbinds = dict(varbinds)
        self._sorted = sorted(self.varbinds)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            version = int(api.decodeMessageVersion(data))
            p_mod = api.PROTOCOL_MODULES[version]
            message, _ = decoder.decode(data, asn1Spec=p_mod.Message())
        except Exception:  # not SNMP: a real agent drops it too
            self.counts["garbage"] += 1
            return
        if bytes(p_mod.apiMessage.get_community(message)) != self.community:
            self.counts["wrong_community"] += 1
            return
        pdu = p_mod.apiMessage.get_pdu(message)
        kind = {
            p_mod.GetRequestPDU.tagSet: "get",
            p_mod.GetNextRequestPDU.tagSet: "getnext",
        }.get(pdu.tagSet)
        if kind is None and version == 1 and pdu.tagSet == p_mod.GetBulkRequestPDU.tagSet:
            kind = "getbulk"
        if kind is None:
            self.counts["other"] += 1
            return
        self.counts[kind] += 1
        if kind == "getbulk" and self.no_bulk:
            return
        if self.answer_limit is not None and self.answered >= self.answer_limit:
            return
        self.answered += 1
        request_id = int(p_mod.apiPDU.get_request_id(pdu))
        oids = [tuple(int(arc) for arc in name) for name, _ in p_mod.apiPDU.get_varbinds(pdu)]
        reply = self._answer(version, kind, pdu, oids)
        assert self.transport is not None
        self.transport.sendto(encode_response(version, self.community, request_id, *reply), addr)

    def _answer(
        self, version: int, kind: str, pdu: Any, oids: list[Oid]
    ) -> tuple[int, int, list[tuple[Oid, HostileValue]]]:
        echo: list[tuple[Oid, HostileValue]] = [(oid, None) for oid in oids]
        if self.error_status:
            return self.error_status, self.error_index, echo
        out: list[tuple[Oid, HostileValue]] = []
        if kind == "get":
            for position, oid in enumerate(oids, start=1):
                if oid in self.varbinds:
                    out.append((oid, self.varbinds[oid]))
                elif version == 0:
                    return 2, position, echo  # noSuchName
                else:
                    out.append((oid, Exc.NO_SUCH_INSTANCE))
        elif kind == "getnext":
            for position, oid in enumerate(oids, start=1):
                found = self._next(oid)
                if found is None and version == 0:
                    return 2, position, echo
                out.append(found or (oid, Exc.END_OF_MIB_VIEW))
        else:
            non_repeaters = int(pdu["non-repeaters"])
            repetitions = int(pdu["max-repetitions"])
            for oid in oids[:non_repeaters]:
                out.append(self._next(oid) or (oid, Exc.END_OF_MIB_VIEW))
            cursors = oids[non_repeaters:]
            for _ in range(repetitions if cursors else 0):
                row = [self._next(oid) or (oid, Exc.END_OF_MIB_VIEW) for oid in cursors]
                out.extend(row)
                cursors = [oid for oid, _ in row]
        if self.max_varbinds is not None and len(out) > self.max_varbinds:
            return 1, 0, echo  # tooBig
        return 0, 0, out

    def _next(self, oid: Oid) -> tuple[Oid, HostileValue] | None:
        target = self.rewind.get(oid)
        if target is not None:
            return target, self.varbinds.get(target)
        position = bisect.bisect_right(self._sorted, oid)
        if position >= len(self._sorted):
            return None
        found = self._sorted[position]
        return found, self.varbinds[found]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class HostileFactory(Protocol):
    async def __call__(
        self,
        varbinds: Mapping[Oid, HostileValue],
        *,
        address: str = "127.0.0.1",
        community: str = "public",
        **behaviour: Any,
    ) -> HostileResponder: ...


@pytest.fixture
async def hostile_factory() -> AsyncIterator[HostileFactory]:
    """Start hostile responders on free UDP ports in the test's loop; closed afterwards."""
    started: list[HostileResponder] = []

    async def factory(
        varbinds: Mapping[Oid, HostileValue],
        *,
        address: str = "127.0.0.1",
        community: str = "public",
        **behaviour: Any,
    ) -> HostileResponder:
        responder = HostileResponder(
            dict(varbinds), community=community.encode(), address=address, **behaviour
        )
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: responder, local_addr=(address, 0))
        assert responder.transport is not None
        responder.port = int(responder.transport.get_extra_info("sockname")[1])
        started.append(responder)
        return responder

    yield factory
    for responder in started:
        responder.close()
