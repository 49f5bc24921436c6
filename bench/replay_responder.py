"""A fast SNMP v1/v2c responder that replays .snmprec recordings on many loopback addresses.

snmpsim costs 12-14 ms of CPU per poll itself (STACK_NOTES.md), too slow to
measure the agent's throughput against. This one pre-encodes every varbind of a
recording once, answers GET, GETNEXT and GETBULK by bisecting a sorted OID
list, and counts the requests each address receives (the "SNMP requests per
read" of the benchmark, counted on the responder's side).

    python bench/replay_responder.py --port 0 --community public \\
        127.0.3.1=path/a.snmprec 127.0.3.2=path/b.snmprec ...

Prints ``READY <port>`` once every socket is bound; on SIGTERM, SIGINT or end
of standard input prints one JSON object ``{address: {"get": n, ...}}`` and exits.
Only loopback addresses are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import ipaddress
import json
import signal
import socket
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collectors.ber import END_OF_MIB_VIEW, NO_SUCH_INSTANCE, encode_value, tlv
from collectors.snmp_message import PduKind, decode_request, encode_response, encode_varbind
from mibs.snmprec import parse_snmprec
from mibs.values import Oid

# -- the device ---------------------------------------------------------------------

END_OF_MIB_VIEW_VALUE = tlv(END_OF_MIB_VIEW, b"")
NO_SUCH_INSTANCE_VALUE = tlv(NO_SUCH_INSTANCE, b"")


class Device:
    """One recording, pre-encoded: OID -> encoded varbind (SEQUENCE {OID, value})."""

    def __init__(self, path: Path) -> None:
        records = parse_snmprec(path.read_text(encoding="utf-8", errors="surrogateescape"))
        self.encoded: dict[Oid, bytes] = {}
        for record in records:
            self.encoded[record.oid] = encode_varbind(
                record.oid, encode_value(record.tag, record.value)
            )
        self.order = sorted(self.encoded)

    def next_after(self, oid: Oid) -> Oid | None:
        position = bisect.bisect_right(self.order, oid)
        return self.order[position] if position < len(self.order) else None

    def end_of_view(self, oid: Oid) -> bytes:
        return encode_varbind(oid, END_OF_MIB_VIEW_VALUE)

    def get(self, oid: Oid) -> bytes:
        found = self.encoded.get(oid)
        if found is not None:
            return found
        return encode_varbind(oid, NO_SUCH_INSTANCE_VALUE)


class Endpoint(asyncio.DatagramProtocol):
    def __init__(self, device: Device, community: bytes, counts: Counter[str]) -> None:
        self.device = device
        self.community = community
        self.counts = counts
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = self.answer(data)
        except (IndexError, ValueError, KeyError):
            self.counts["garbage"] += 1
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    def answer(self, data: bytes) -> bytes | None:
        request = decode_request(data)
        if request.community != self.community:
            self.counts["wrong_community"] += 1
            return None
        oids, non_repeaters = request.oids, request.non_repeaters
        device = self.device
        out: list[bytes] = []
        if request.kind is PduKind.GET:
            self.counts["get"] += 1
            out = [device.get(oid) for oid in oids]
        elif request.kind is PduKind.NEXT:
            self.counts["getnext"] += 1
            for oid in oids:
                found = device.next_after(oid)
                out.append(device.end_of_view(oid) if found is None else device.encoded[found])
        elif request.kind is PduKind.BULK:
            self.counts["getbulk"] += 1
            for oid in oids[:non_repeaters]:
                found = device.next_after(oid)
                out.append(device.end_of_view(oid) if found is None else device.encoded[found])
            cursors: list[Oid | None] = list(oids[non_repeaters:])
            for _ in range(request.max_repetitions if cursors else 0):
                if all(cursor is None for cursor in cursors):
                    break
                for position, cursor in enumerate(cursors):
                    if cursor is None:
                        continue
                    found = device.next_after(cursor)
                    if found is None:
                        out.append(device.end_of_view(cursor))
                    else:
                        out.append(device.encoded[found])
                    cursors[position] = found
        else:
            self.counts["other"] += 1
            return None
        return encode_response(
            version=request.version,
            community=self.community,
            request_id=request.request_id,
            varbinds=out,
        )


async def serve(specs: list[tuple[str, Path]], port: int, community: bytes) -> None:
    loop = asyncio.get_running_loop()
    devices: dict[Path, Device] = {}
    counts: dict[str, Counter[str]] = {}
    transports = []
    for address, path in specs:
        if not ipaddress.ip_address(address).is_loopback:
            raise SystemExit(f"{address}: only loopback addresses are served")
        device = devices.setdefault(path, Device(path))
        counts[address] = Counter()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((address, port))
        port = sock.getsockname()[1]
        transport, _ = await loop.create_datagram_endpoint(
            lambda d=device, c=counts[address]: Endpoint(d, community, c), sock=sock
        )
        transports.append(transport)
    print(f"READY {port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.readline() else None)
    await stop.wait()
    for transport in transports:
        transport.close()
    print(json.dumps({address: dict(c) for address, c in counts.items()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--community", default="public")
    parser.add_argument("devices", nargs="+", metavar="ADDRESS=RECORDING")
    args = parser.parse_args()
    specs = []
    for item in args.devices:
        address, _, path = item.partition("=")
        specs.append((address, Path(path)))
    asyncio.run(serve(specs, args.port, args.community.encode()))


if __name__ == "__main__":
    main()
