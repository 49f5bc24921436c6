"""A fake SNMPv1/v2c agent over real UDP on loopback, with knobs for misbehaviour.

Shipped with the collector the way httpcore ships its mock backend: the unit
and integration tests, the benchmarks and the hostile-responder tests all use
it instead of ad-hoc responders.

    agent = await start_fake_agent(varbinds, address="127.0.0.5", community="public")
    ...                                       # agent.port, agent.counts["getbulk"]
    agent.close()

    python -m collectors.fake_agent --port 16100 127.0.9.1=printer.snmprec ...

It replays a varbind mapping (or an ``.snmprec`` recording) for GET, GETNEXT
and GETBULK and counts what it received per PDU type and per community. Any
value can be sent, including ones a sane agent never would: ``int`` is INTEGER,
``bytes`` OCTET STRING, ``tuple`` an OID, :class:`Typed` any tag with any
integer, :class:`Raw` any tag with any content, :class:`Exc` an SNMPv2
exception, ``None`` NULL. Knobs (attributes, changeable while it runs):

* ``communities``: the communities it answers (others are dropped silently,
  as a real v1/v2c agent does);
* ``silent``: answer nothing; ``answer_limit``: fall silent after N answers;
* ``no_bulk``: ignore GETBULK (old Brother print servers);
* ``error_status``/``error_index``: answer every request with an error-status;
* ``rewind``: answer a GETNEXT/GETBULK step after an OID with an earlier OID;
* ``max_varbinds``: answer tooBig when a response would carry more varbinds;
* ``wrong_request_id``: answer with another request-id (a confused agent);
* ``truncate``: cut that many bytes off the end of every answer;
* ``delay``: answer after that many seconds (a slow agent).

Only loopback addresses are served: this never listens on a real network.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import enum
import ipaddress
import json
import signal
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.ber import INTEGER, NULL_VALUE, OBJECT_IDENTIFIER, OCTET_STRING, encode_value
from collectors.snmp_message import (
    PduKind,
    Request,
    WireError,
    decode_request,
    encode_response,
    encode_varbind,
)
from mibs.snmprec import parse_snmprec
from mibs.values import Oid

__all__ = ["Exc", "FakeAgent", "FakeValue", "Raw", "Typed", "load_snmprec", "start_fake_agent"]


class Exc(enum.Enum):
    """An SNMPv2 exception value (RFC 3416 section 3)."""

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


FakeValue = int | bytes | tuple[int, ...] | Typed | Raw | Exc | None  # None is NULL
_NO_SUCH_NAME, _TOO_BIG = 2, 1


def encode_fake_value(value: FakeValue) -> bytes:
    """The BER encoding of one value, whatever rule it breaks."""
    if value is None:
        return NULL_VALUE
    if isinstance(value, Exc):
        return bytes((value.value, 0))
    if isinstance(value, Raw):
        return encode_value(value.tag, value.content)
    if isinstance(value, Typed):
        return encode_value(value.tag, value.value)
    if isinstance(value, bool):
        raise TypeError("bool is not an SNMP value")
    if isinstance(value, int):
        return encode_value(INTEGER, value)
    if isinstance(value, bytes):
        return encode_value(OCTET_STRING, value)
    return encode_value(OBJECT_IDENTIFIER, value)


def load_snmprec(path: Path) -> dict[Oid, FakeValue]:
    """An ``.snmprec`` recording as fake-agent values, each under its recorded tag."""
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    values: dict[Oid, FakeValue] = {}
    for record in parse_snmprec(text):
        value = record.value
        if value is None:
            values[record.oid] = None
        elif isinstance(value, int) and record.tag != INTEGER:
            values[record.oid] = Typed(record.tag, value)
        elif isinstance(value, bytes) and record.tag != OCTET_STRING:
            values[record.oid] = Raw(record.tag, value)
        else:
            values[record.oid] = value
    return values


@dataclass(eq=False)
class FakeAgent(asyncio.DatagramProtocol):
    varbinds: Mapping[Oid, FakeValue]
    communities: frozenset[bytes] = frozenset({b"public"})
    silent: bool = False
    answer_limit: int | None = None
    no_bulk: bool = False
    error_status: int = 0
    error_index: int = 0
    rewind: dict[Oid, Oid] = field(default_factory=dict)
    max_varbinds: int | None = None
    wrong_request_id: bool = False
    truncate: int = 0
    delay: float = 0.0
    address: str = "127.0.0.1"
    port: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    #: Communities of the requests received, in arrival order (right or wrong).
    communities_seen: list[bytes] = field(default_factory=list)
    answered: int = 0
    transport: asyncio.DatagramTransport | None = None

    def __post_init__(self) -> None:
        self.set_varbinds(self.varbinds)

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def requests(self) -> int:
        """PDUs received with a community it answers."""
        return sum(n for kind, n in self.counts.items() if kind in ("get", "getnext", "getbulk"))

    def set_varbinds(self, varbinds: Mapping[Oid, FakeValue]) -> None:
        self.varbinds = dict(varbinds)
        self._sorted = sorted(self.varbinds)
        self._encoded: dict[Oid, bytes] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            request = decode_request(data)
        except WireError:  # not SNMP: a real agent drops it too
            self.counts["garbage"] += 1
            return
        self.communities_seen.append(request.community)
        if request.community not in self.communities:
            self.counts["wrong_community"] += 1
            return
        if request.kind is None:
            self.counts["other"] += 1
            return
        self.counts[request.kind.value] += 1
        if self.silent or (request.kind is PduKind.BULK and self.no_bulk):
            return
        if self.answer_limit is not None and self.answered >= self.answer_limit:
            return
        self.answered += 1
        reply = self.answer(request)
        if self.delay:
            asyncio.get_running_loop().call_later(self.delay, self._send, reply, addr)
        else:
            self._send(reply, addr)

    def _send(self, reply: bytes, addr: tuple[Any, ...]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)

    def answer(self, request: Request) -> bytes:
        """The response message to ``request``, misbehaviour included."""
        status, index, varbinds = self._answer(request, list(request.oids))
        reply = encode_response(
            version=request.version,
            community=request.community,
            request_id=request.request_id + 1 if self.wrong_request_id else request.request_id,
            error_status=status,
            error_index=index,
            varbinds=varbinds,
        )
        return reply[: len(reply) - self.truncate] if self.truncate else reply

    def _varbind(self, oid: Oid) -> bytes:
        found = self._encoded.get(oid)
        if found is None:
            found = self._encoded[oid] = encode_varbind(oid, encode_fake_value(self.varbinds[oid]))
        return found

    def _answer(self, request: Request, oids: list[Oid]) -> tuple[int, int, list[bytes]]:
        echo = [encode_varbind(oid) for oid in oids]
        if self.error_status:
            return self.error_status, self.error_index, echo
        out: list[bytes] = []
        v1 = request.version == 0
        if request.kind is PduKind.GET:
            for position, oid in enumerate(oids, start=1):
                if oid in self.varbinds:
                    out.append(self._varbind(oid))
                elif v1:
                    return _NO_SUCH_NAME, position, echo
                else:
                    out.append(encode_varbind(oid, encode_fake_value(Exc.NO_SUCH_INSTANCE)))
        elif request.kind is PduKind.NEXT:
            for position, oid in enumerate(oids, start=1):
                step = self._next(oid)
                if step is None and v1:
                    return _NO_SUCH_NAME, position, echo
                out.append(self._step(oid, step))
        else:
            repeaters = oids[request.non_repeaters :]
            for oid in oids[: request.non_repeaters]:
                out.append(self._step(oid, self._next(oid)))
            cursors: list[Oid] = list(repeaters)
            for _ in range(request.max_repetitions if cursors else 0):
                row = [self._next(oid) for oid in cursors]
                out.extend(self._step(oid, step) for oid, step in zip(cursors, row, strict=True))
                cursors = [step or oid for oid, step in zip(cursors, row, strict=True)]
                if all(step is None for step in row):
                    break
        if self.max_varbinds is not None and len(out) > self.max_varbinds:
            return _TOO_BIG, 0, echo
        return 0, 0, out

    def _next(self, oid: Oid) -> Oid | None:
        """The OID a GETNEXT after ``oid`` answers (``rewind`` first), None past the end."""
        target = self.rewind.get(oid)
        if target is not None:
            return target
        position = bisect.bisect_right(self._sorted, oid)
        return self._sorted[position] if position < len(self._sorted) else None

    def _step(self, oid: Oid, found: Oid | None) -> bytes:
        if found is None:
            return encode_varbind(oid, encode_fake_value(Exc.END_OF_MIB_VIEW))
        if found not in self.varbinds:  # a rewind to an OID it does not have
            return encode_varbind(found, NULL_VALUE)
        return self._varbind(found)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def start_fake_agent(
    varbinds: Mapping[Oid, FakeValue] | Path,
    *,
    address: str = "127.0.0.1",
    port: int = 0,
    community: str | tuple[str, ...] = "public",
    **knobs: Any,
) -> FakeAgent:
    """A fake agent listening on ``address:port`` (0: any free port) in the running loop."""
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(f"{address}: the fake agent serves loopback addresses only")
    values = load_snmprec(varbinds) if isinstance(varbinds, Path) else dict(varbinds)
    names = (community,) if isinstance(community, str) else community
    agent = FakeAgent(
        values, communities=frozenset(c.encode() for c in names), address=address, **knobs
    )
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: agent, local_addr=(address, port))
    assert agent.transport is not None
    agent.port = int(agent.transport.get_extra_info("sockname")[1])
    return agent


async def _serve(specs: list[tuple[str, Path]], port: int, community: str) -> None:
    agents: list[FakeAgent] = []
    recordings: dict[Path, dict[Oid, FakeValue]] = {}
    for address, path in specs:
        values = recordings.setdefault(path, load_snmprec(path))
        agent = await start_fake_agent(values, address=address, port=port, community=community)
        port = agent.port  # every address on the same port
        agents.append(agent)
    print(f"READY {port}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.readline() else None)
    await stop.wait()
    for agent in agents:
        agent.close()
    print(json.dumps({agent.address: dict(agent.counts) for agent in agents}), flush=True)


def main(argv: list[str] | None = None) -> None:
    """Serve recordings until stdin closes or SIGTERM; then print the request counts (JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="UDP port of every address")
    parser.add_argument("--community", default="public")
    parser.add_argument("devices", nargs="+", metavar="ADDRESS=RECORDING")
    args = parser.parse_args(argv)
    specs = []
    for item in args.devices:
        address, _, path = item.partition("=")
        specs.append((address, Path(path)))
    try:
        asyncio.run(_serve(specs, args.port, args.community))
    except ValueError as exc:
        raise SystemExit(f"fake_agent: {exc}") from None


if __name__ == "__main__":
    main()
