"""A fake SNMPv1/v2c agent over real UDP on loopback, with knobs for misbehaviour.

Shipped (as httpcore ships its mock backend) for tests and benchmarks: it replays varbinds or an
``.snmprec`` recording, counts requests per PDU type; its knobs are :class:`FakeAgent` fields.

    python -m collectors.fake_agent --port 16100 127.0.9.1=printer.snmprec ...
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import ipaddress
import json
import signal
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors import snmp_message as wire
from collectors.snmp_message import PduKind, Request, Special, encode_value, encode_varbind
from mibs.snmprec import SnmprecError, parse_snmprec
from mibs.values import Oid, Value


@dataclass(frozen=True)
class Typed:
    """A value under any tag, whatever rule it breaks: ``Typed(COUNTER32, -1)``."""

    tag: int
    value: Value | None


# int is INTEGER, bytes OCTET STRING, a tuple an OID, None NULL, Special an exception.
FakeValue = int | bytes | tuple[int, ...] | Typed | Special | None
_EXCEPTION_TAGS = {special: tag for tag, special in wire.EXCEPTIONS.items()}


def encode_fake_value(value: FakeValue) -> bytes:
    if isinstance(value, Special):  # an SNMPv2 exception value
        return bytes((_EXCEPTION_TAGS[value], 0))
    if isinstance(value, Typed):
        return encode_value(value.tag, value.value)
    if isinstance(value, bool):
        raise TypeError("bool is not an SNMP value")
    if isinstance(value, int):
        return encode_value(wire.INTEGER, value)
    tag = wire.OCTET_STRING if isinstance(value, bytes) else wire.OBJECT_IDENTIFIER
    return encode_value(tag, value)


def load_snmprec(path: Path) -> dict[Oid, FakeValue]:
    """An ``.snmprec`` recording as fake-agent values, each under its recorded tag."""
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    return {record.oid: Typed(record.tag, record.value) for record in parse_snmprec(text)}


@dataclass(eq=False)
class FakeAgent(asyncio.DatagramProtocol):
    varbinds: Mapping[Oid, FakeValue]
    community: bytes = b"public"  # requests with another are dropped, as agents do
    silent: bool = False  # answer nothing
    answer_limit: int | None = None  # fall silent after that many answers
    no_bulk: bool = False  # ignore GETBULK (old Brother print servers)
    error_status: int = 0  # answer every request with this error-status ...
    error_index: int = 0  # ... and error-index
    rewind: dict[Oid, Oid] = field(default_factory=dict)  # GETNEXT/GETBULK after key: value
    max_varbinds: int | None = None  # answer tooBig when a response would carry more
    wrong_request_id: bool = False  # answer with another request-id (a confused agent)
    truncate: int = 0  # cut that many bytes off the end of every answer
    delay: float = 0.0  # answer after that many seconds (a slow agent)
    address: str = "127.0.0.1"
    port: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    communities_seen: list[bytes] = field(default_factory=list)  # arrival order, right or wrong
    answered: int = 0
    transport: asyncio.DatagramTransport | None = None

    def __post_init__(self) -> None:
        self.set_varbinds(self.varbinds)

    @property
    def requests(self) -> int:
        """PDUs received with a community it answers."""
        return sum(self.counts[kind.value] for kind in PduKind)

    def set_varbinds(self, varbinds: Mapping[Oid, FakeValue]) -> None:
        self.varbinds = dict(varbinds)
        self._sorted = sorted(self.varbinds)
        self._encoded: dict[Oid, bytes] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            request = wire.decode_request(data)
        except wire.WireError:  # not SNMP: a real agent drops it too
            self.counts["garbage"] += 1
            return
        self.communities_seen.append(request.community)
        if request.community != self.community:
            self.counts["wrong_community"] += 1
            return
        if request.kind is None:
            self.counts["other"] += 1
            return
        self.counts[request.kind.value] += 1
        limited = self.answer_limit is not None and self.answered >= self.answer_limit
        if self.silent or limited or (request.kind is PduKind.BULK and self.no_bulk):
            return
        self.answered += 1
        status, index, varbinds = self._answer(request, list(request.oids))
        request_id = request.request_id + 1 if self.wrong_request_id else request.request_id
        reply = wire.encode_message(
            request.version, request.community, wire.RESPONSE, (request_id, status, index), varbinds
        )
        reply = reply[: len(reply) - self.truncate]
        if self.delay:
            asyncio.get_running_loop().call_later(self.delay, self._send, reply, addr)
        else:
            self._send(reply, addr)

    def _send(self, reply: bytes, addr: tuple[Any, ...]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)

    def _answer(self, request: Request, oids: list[Oid]) -> tuple[int, int, list[bytes]]:
        echo = [encode_varbind(oid) for oid in oids]
        if self.error_status:
            return self.error_status, self.error_index, echo
        out: list[bytes] = []
        if request.kind is PduKind.BULK:
            out.extend(self._step(oid, self._next(oid)) for oid in oids[: request.non_repeaters])
            cursors = oids[request.non_repeaters :]
            for _ in range(request.max_repetitions):
                row = [self._next(oid) for oid in cursors]
                out.extend(self._step(oid, step) for oid, step in zip(cursors, row, strict=True))
                cursors = [step or oid for oid, step in zip(cursors, row, strict=True)]
                if all(step is None for step in row):
                    break
        else:
            get = request.kind is PduKind.GET
            missing = Special.NO_SUCH_INSTANCE if get else Special.END_OF_MIB_VIEW
            for position, oid in enumerate(oids, start=1):
                found = (oid if oid in self.varbinds else None) if get else self._next(oid)
                if found is None and request.version == 0:  # SNMPv1 has no exception values
                    return wire.NO_SUCH_NAME, position, echo
                out.append(self._step(oid, found, missing))
        if self.max_varbinds is not None and len(out) > self.max_varbinds:
            return wire.TOO_BIG, 0, echo
        return 0, 0, out

    def _next(self, oid: Oid) -> Oid | None:
        """The OID a GETNEXT after ``oid`` answers (``rewind`` first), None past the end."""
        target = self.rewind.get(oid)
        if target is not None:
            return target
        position = bisect.bisect_right(self._sorted, oid)
        return self._sorted[position] if position < len(self._sorted) else None

    def _step(
        self, oid: Oid, found: Oid | None, missing: Special = Special.END_OF_MIB_VIEW
    ) -> bytes:
        """The varbind answering ``oid`` with ``found`` (None: the exception ``missing``)."""
        if found is None:
            return encode_varbind(oid, encode_fake_value(missing))
        if found not in self.varbinds:  # a rewind to an OID it does not have
            return encode_varbind(found)
        encoded = self._encoded.get(found)
        if encoded is None:
            value = encode_fake_value(self.varbinds[found])
            encoded = self._encoded[found] = encode_varbind(found, value)
        return encoded

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def start_fake_agent(
    varbinds: Mapping[Oid, FakeValue],
    *,
    address: str = "127.0.0.1",
    port: int = 0,
    community: str = "public",
    **knobs: Any,
) -> FakeAgent:
    """A fake agent listening on ``address:port`` (0: any free port) in the running loop."""
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(f"{address}: the fake agent serves loopback addresses only")
    agent = FakeAgent(varbinds, community=community.encode(), address=address, **knobs)
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: agent, local_addr=(address, port))
    assert agent.transport is not None
    agent.port = int(agent.transport.get_extra_info("sockname")[1])
    return agent


async def _serve(devices: list[str], port: int, community: str) -> None:
    agents: list[FakeAgent] = []
    for address, _, path in (device.partition("=") for device in devices):
        values = load_snmprec(Path(path))
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
    try:
        asyncio.run(_serve(args.devices, args.port, args.community))
    except (ValueError, OSError, SnmprecError) as exc:
        raise SystemExit(f"fake_agent: {exc}") from None


if __name__ == "__main__":
    main()
