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

Requests are decoded and responses encoded with the agent's own BER code
(:mod:`collectors._pysnmp_wire`, agent side), which writes whatever tag and
content it is given, so a response can break any rule. Behaviour fields may be
changed while the responder runs.
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

from collectors.ber import INTEGER, NULL_VALUE, OBJECT_IDENTIFIER, OCTET_STRING
from collectors.ber import encode_value as encode_ber_value
from collectors.snmp_message import (
    PduKind,
    Request,
    WireError,
    decode_request,
    encode_response,
    encode_varbind,
)

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


# -- encoding -----------------------------------------------------------------------


def encode_value(value: HostileValue) -> bytes:
    if value is None:
        return NULL_VALUE
    if isinstance(value, Exc):
        return bytes((value.value, 0))
    if isinstance(value, Raw):
        return encode_ber_value(value.tag, value.content)
    if isinstance(value, Typed):
        return encode_ber_value(value.tag, value.value)
    if isinstance(value, bool):
        raise TypeError("bool is not an SNMP value")
    if isinstance(value, int):
        return encode_ber_value(INTEGER, value)
    if isinstance(value, bytes):
        return encode_ber_value(OCTET_STRING, value)
    return encode_ber_value(OBJECT_IDENTIFIER, value)


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
            request = decode_request(data)
        except WireError:  # not SNMP: a real agent drops it too
            self.counts["garbage"] += 1
            return
        if request.community != self.community:
            self.counts["wrong_community"] += 1
            return
        if request.kind is None:
            self.counts["other"] += 1
            return
        kind = request.kind.value
        self.counts[kind] += 1
        if request.kind is PduKind.BULK and self.no_bulk:
            return
        if self.answer_limit is not None and self.answered >= self.answer_limit:
            return
        self.answered += 1
        status, index, varbinds = self._answer(request, list(request.oids))
        reply = encode_response(
            version=request.version,
            community=self.community,
            request_id=request.request_id,
            error_status=status,
            error_index=index,
            varbinds=[encode_varbind(oid, encode_value(value)) for oid, value in varbinds],
        )
        assert self.transport is not None
        self.transport.sendto(reply, addr)

    def _answer(
        self, request: Request, oids: list[Oid]
    ) -> tuple[int, int, list[tuple[Oid, HostileValue]]]:
        version = request.version
        echo: list[tuple[Oid, HostileValue]] = [(oid, None) for oid in oids]
        if self.error_status:
            return self.error_status, self.error_index, echo
        out: list[tuple[Oid, HostileValue]] = []
        if request.kind is PduKind.GET:
            for position, oid in enumerate(oids, start=1):
                if oid in self.varbinds:
                    out.append((oid, self.varbinds[oid]))
                elif version == 0:
                    return 2, position, echo  # noSuchName
                else:
                    out.append((oid, Exc.NO_SUCH_INSTANCE))
        elif request.kind is PduKind.NEXT:
            for position, oid in enumerate(oids, start=1):
                found = self._next(oid)
                if found is None and version == 0:
                    return 2, position, echo
                out.append(found or (oid, Exc.END_OF_MIB_VIEW))
        else:
            non_repeaters = request.non_repeaters
            repetitions = request.max_repetitions
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
