"""The Basic Encoding Rules (ITU-T X.690) as SNMPv1/v2c uses them, no I/O.

Only the subset SNMP messages need (RFC 1157 section 4, RFC 3416 section 3):
one-octet tags, definite lengths of at most four length octets, two's-complement
INTEGERs and base-128 OBJECT IDENTIFIER arcs. The message layouts built from
these pieces are in :mod:`collectors.snmp_message`; the test and benchmark
responders build their answers from the same pieces.
"""

from __future__ import annotations

import functools

from mibs.values import Oid, Value

# Universal tags (X.690), SMIv2 application tags (RFC 2578 section 7.1) and the
# SNMPv2 exception values of a varbind (RFC 3416 section 3).
SEQUENCE = 0x30
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
IP_ADDRESS = 0x40
COUNTER32 = 0x41
GAUGE32 = 0x42
TIMETICKS = 0x43
OPAQUE = 0x44
NSAP = 0x45
COUNTER64 = 0x46
UINTEGER32 = 0x47
NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82

NULL_VALUE = b"\x05\x00"


class WireError(ValueError):
    """The datagram is not a well-formed SNMPv1/v2c message."""


# -- encoding -------------------------------------------------------------------------


def encode_length(size: int) -> bytes:
    if size < 0x80:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(content)) + content


def integer_content(value: int) -> bytes:
    """The shortest two's-complement octets of ``value`` (a leading zero keeps it positive)."""
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return value.to_bytes(size, "big", signed=True)


def encode_integer(value: int) -> bytes:
    return tlv(INTEGER, integer_content(value))


def oid_content(oid: Oid) -> bytes:
    """The base-128 arcs of ``oid``, the first two folded into one octet run (X.690 8.19)."""
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40):
        raise ValueError(f"cannot encode OID {oid!r}: needs two valid leading arcs")
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if arc < 0:
            raise ValueError(f"cannot encode OID {oid!r}: negative arc")
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


@functools.lru_cache(maxsize=4096)
def encode_oid(oid: Oid) -> bytes:
    """Cached: a sweep or a poll sends the same few dozen OIDs to every device."""
    return tlv(OBJECT_IDENTIFIER, oid_content(oid))


def encode_value(tag: int, value: Value | None) -> bytes:
    """``value`` under ``tag``: None is NULL, an OID tuple its arcs, an int INTEGER octets.

    The tag is written as given, so a caller can put any content under any tag
    (a Counter32 is ``encode_value(COUNTER32, n)``; a responder that misbehaves
    on purpose can send a negative one). The tag numbers of an snmpsim
    ``.snmprec`` record are these same octets.
    """
    if value is None:
        return NULL_VALUE
    if isinstance(value, tuple):
        return tlv(tag, oid_content(value))
    if isinstance(value, bytes):
        return tlv(tag, value)
    return tlv(tag, integer_content(value))


# -- decoding -------------------------------------------------------------------------


def read_tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the TLV at ``pos``."""
    if pos + 2 > end:
        raise WireError(f"truncated TLV at offset {pos}")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise WireError(f"multi-octet tag at offset {pos}")
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise WireError(f"unsupported length form 0x{first:02x} at offset {pos - 1}")
        if pos + count > end:
            raise WireError(f"truncated length at offset {pos}")
        size = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + size > end:
        raise WireError(f"TLV at offset {pos} runs past its container ({size} octets)")
    return tag, pos, pos + size


def expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """(content start, content end) of the TLV at ``pos``, which must carry ``tag``."""
    found, start, stop = read_tlv(data, pos, end)
    if found != tag:
        raise WireError(f"{what}: expected tag 0x{tag:02x}, got 0x{found:02x}")
    return start, stop


def decode_integer(data: bytes, start: int, stop: int) -> int:
    if start == stop:
        raise WireError(f"empty INTEGER at offset {start}")
    return int.from_bytes(data[start:stop], "big", signed=True)


def decode_oid(content: bytes) -> Oid:
    if not content:
        raise WireError("empty OBJECT IDENTIFIER")
    arcs: list[int] = []
    arc = 0
    for octet in content:
        arc = (arc << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(arc)
            arc = 0
    if content[-1] & 0x80:
        raise WireError("OBJECT IDENTIFIER ends inside an arc")
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return head + tuple(arcs[1:])
