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

from mibs.snmprec import parse_snmprec
from mibs.values import Oid

# -- BER ----------------------------------------------------------------------------


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def int_content(value: int, unsigned: bool = False) -> bytes:
    if unsigned:
        size = max(1, (value.bit_length() + 8) // 8)
        return value.to_bytes(size, "big")
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return value.to_bytes(size, "big", signed=True)


def oid_content(oid: Oid) -> bytes:
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def read_tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at ``pos``."""
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    return tag, pos, pos + length


def decode_oid(content: bytes) -> Oid:
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return (*head, *arcs[1:])


def decode_int(content: bytes) -> int:
    return int.from_bytes(content, "big", signed=True)


_APP_UNSIGNED = {65, 66, 67, 70}  # Counter32, Gauge32, TimeTicks, Counter64 (RFC 2578)


def encode_record_value(tag: int, value: object) -> bytes:
    if value is None:
        return b"\x05\x00"
    if tag == 6:
        assert isinstance(value, tuple)
        return tlv(0x06, oid_content(value))
    if isinstance(value, bytes):
        return tlv({4: 0x04, 64: 0x40, 68: 0x44}[tag], value)
    assert isinstance(value, int)
    if tag in _APP_UNSIGNED:
        return tlv(0x40 | (tag - 64), int_content(value, unsigned=True))
    return tlv(0x02, int_content(value))


# -- the device ---------------------------------------------------------------------

END_OF_MIB_VIEW = b"\x82\x00"
NO_SUCH_INSTANCE = b"\x81\x00"


class Device:
    """One recording, pre-encoded: OID -> encoded varbind (SEQUENCE {OID, value})."""

    def __init__(self, path: Path) -> None:
        records = parse_snmprec(path.read_text(encoding="utf-8", errors="surrogateescape"))
        self.encoded: dict[Oid, bytes] = {}
        for record in records:
            self.encoded[record.oid] = tlv(
                0x30,
                tlv(0x06, oid_content(record.oid)) + encode_record_value(record.tag, record.value),
            )
        self.order = sorted(self.encoded)

    def next_after(self, oid: Oid) -> Oid | None:
        position = bisect.bisect_right(self.order, oid)
        return self.order[position] if position < len(self.order) else None

    def end_of_view(self, oid: Oid) -> bytes:
        return tlv(0x30, tlv(0x06, oid_content(oid)) + END_OF_MIB_VIEW)

    def get(self, oid: Oid) -> bytes:
        found = self.encoded.get(oid)
        if found is not None:
            return found
        return tlv(0x30, tlv(0x06, oid_content(oid)) + NO_SUCH_INSTANCE)


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
        _, pos, _ = read_tlv(data, 0)
        _, start, end = read_tlv(data, pos)
        version = decode_int(data[start:end])
        _, start, pos = read_tlv(data, end)
        if data[start:pos] != self.community:
            self.counts["wrong_community"] += 1
            return None
        kind, pdu_start, _ = read_tlv(data, pos)
        _, start, end = read_tlv(data, pdu_start)
        request_id = data[start:end]
        _, start, end = read_tlv(data, end)
        non_repeaters = decode_int(data[start:end])
        _, start, end = read_tlv(data, end)
        max_repetitions = decode_int(data[start:end])
        _, start, list_end = read_tlv(data, end)
        oids: list[Oid] = []
        pos = start
        while pos < list_end:
            _, vb_start, vb_end = read_tlv(data, pos)
            _, o_start, o_end = read_tlv(data, vb_start)
            oids.append(decode_oid(data[o_start:o_end]))
            pos = vb_end
        device = self.device
        out: list[bytes] = []
        if kind == 0xA0:
            self.counts["get"] += 1
            out = [device.get(oid) for oid in oids]
        elif kind == 0xA1:
            self.counts["getnext"] += 1
            for oid in oids:
                found = device.next_after(oid)
                out.append(device.end_of_view(oid) if found is None else device.encoded[found])
        elif kind == 0xA5 and version == 1:
            self.counts["getbulk"] += 1
            for oid in oids[:non_repeaters]:
                found = device.next_after(oid)
                out.append(device.end_of_view(oid) if found is None else device.encoded[found])
            cursors: list[Oid | None] = list(oids[non_repeaters:])
            for _ in range(max_repetitions if cursors else 0):
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
        pdu = tlv(0x02, request_id) + b"\x02\x01\x00\x02\x01\x00" + tlv(0x30, b"".join(out))
        body = tlv(0x02, int_content(version)) + tlv(0x04, self.community) + tlv(0xA2, pdu)
        return tlv(0x30, body)


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
