"""SNMPv1/v2c messages to and from bytes (BER, RFC 3416 / RFC 1157), no I/O.

The v1/v2c path encodes its requests and decodes responses here instead of in
pyasn1: a printer read is a few dozen varbinds and pyasn1's generic decoder is
most of the client CPU (STACK_NOTES). Decoding is deliberately tolerant where
printers are sloppy and strict where a packet is simply not SNMP:

* Counter32/Gauge32/TimeTicks/UInteger32 and Counter64 sent without the leading
  zero octet (so they look negative) are read modulo 2**32 / 2**64, as net-snmp does.
* A value of an unknown type becomes :attr:`Special.UNSUPPORTED` (left out),
  a name that is not an OID becomes :attr:`Special.BAD_NAME`: one bad varbind
  does not cost the whole response.
* Anything structurally wrong (truncated TLV, indefinite length, not a
  response PDU) raises :class:`WireError`.
"""

from __future__ import annotations

from collections.abc import Sequence

from collectors._pysnmp_types import PduKind, RawValue, RawVarbind, Response, Special
from mibs.values import Oid

VERSION_NUMBERS = {"v1": 0, "v2c": 1}

_SEQUENCE = 0x30
_INTEGER = 0x02
_OCTET_STRING = 0x04
_NULL = 0x05
_OID = 0x06
_IP_ADDRESS = 0x40
_COUNTER32 = 0x41
_GAUGE32 = 0x42
_TIMETICKS = 0x43
_OPAQUE = 0x44
_NSAP = 0x45
_COUNTER64 = 0x46
_UINTEGER32 = 0x47
_RESPONSE = 0xA2
_REQUEST_TAGS = {PduKind.GET: 0xA0, PduKind.NEXT: 0xA1, PduKind.BULK: 0xA5}

_UNSIGNED32 = {_COUNTER32, _GAUGE32, _TIMETICKS, _UINTEGER32}
_OCTETS = {_OCTET_STRING, _IP_ADDRESS, _OPAQUE, _NSAP}
_EXCEPTIONS = {
    0x80: Special.NO_SUCH_OBJECT,
    0x81: Special.NO_SUCH_INSTANCE,
    0x82: Special.END_OF_MIB_VIEW,
}
_NULL_VARBIND_TAIL = b"\x05\x00"


class WireError(ValueError):
    """The datagram is not a well-formed SNMPv1/v2c response."""


# -- encoding -------------------------------------------------------------------------


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes((size,))
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def encode_integer(value: int) -> bytes:
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return _tlv(_INTEGER, value.to_bytes(size, "big", signed=True))


def encode_oid(oid: Oid) -> bytes:
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
    return _tlv(_OID, bytes(out))


def encode_request(
    *,
    version: str,
    community: bytes,
    kind: PduKind,
    request_id: int,
    oids: Sequence[Oid],
    max_repetitions: int = 0,
) -> bytes:
    """One GET/GETNEXT/GETBULK message with NULL values; GETBULK has no non-repeaters."""
    varbinds = b"".join(_tlv(_SEQUENCE, encode_oid(oid) + _NULL_VARBIND_TAIL) for oid in oids)
    second, third = (0, max_repetitions) if kind is PduKind.BULK else (0, 0)
    pdu = _tlv(
        _REQUEST_TAGS[kind],
        encode_integer(request_id)
        + encode_integer(second)
        + encode_integer(third)
        + _tlv(_SEQUENCE, varbinds),
    )
    body = encode_integer(VERSION_NUMBERS[version]) + _tlv(_OCTET_STRING, community) + pdu
    return _tlv(_SEQUENCE, body)


# -- decoding -------------------------------------------------------------------------


def _read_tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
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


def _expect(data: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    found, start, stop = _read_tlv(data, pos, end)
    if found != tag:
        raise WireError(f"{what}: expected tag 0x{tag:02x}, got 0x{found:02x}")
    return start, stop


def _integer(data: bytes, start: int, stop: int) -> int:
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


def _value(tag: int, content: bytes) -> RawValue:
    if tag == _INTEGER:
        if not content:
            raise WireError("empty INTEGER value")
        return int.from_bytes(content, "big", signed=True)
    if tag in _OCTETS:
        return content
    if tag == _OID:
        return decode_oid(content)
    if tag == _NULL:
        return Special.NULL
    if tag in _UNSIGNED32 or tag == _COUNTER64:
        if not content:
            raise WireError(f"empty value of tag 0x{tag:02x}")
        bits = 64 if tag == _COUNTER64 else 32
        return int.from_bytes(content, "big", signed=True) % (1 << bits)
    special = _EXCEPTIONS.get(tag)
    return special if special is not None else Special.UNSUPPORTED


def _varbind(data: bytes, start: int, stop: int) -> RawVarbind:
    name_tag, name_start, name_stop = _read_tlv(data, start, stop)
    value_tag, value_start, value_stop = _read_tlv(data, name_stop, stop)
    if name_tag != _OID:
        return (), Special.BAD_NAME
    try:
        oid = decode_oid(data[name_start:name_stop])
    except WireError:
        return (), Special.BAD_NAME
    try:
        return oid, _value(value_tag, data[value_start:value_stop])
    except WireError:
        return oid, Special.UNSUPPORTED


def decode_response(data: bytes) -> tuple[int, bytes, Response]:
    """(version number, community, response PDU) of one datagram."""
    end = len(data)
    start, stop = _expect(data, 0, end, _SEQUENCE, "message")
    ver_start, ver_stop = _expect(data, start, stop, _INTEGER, "message version")
    version = _integer(data, ver_start, ver_stop)
    com_start, com_stop = _expect(data, ver_stop, stop, _OCTET_STRING, "community")
    community = data[com_start:com_stop]
    pdu_start, pdu_stop = _expect(data, com_stop, stop, _RESPONSE, "response PDU")
    fields: list[int] = []
    pos = pdu_start
    for what in ("request-id", "error-status", "error-index"):
        field_start, pos = _expect(data, pos, pdu_stop, _INTEGER, what)
        fields.append(_integer(data, field_start, pos))
    list_start, list_stop = _expect(data, pos, pdu_stop, _SEQUENCE, "varbind list")
    varbinds: list[RawVarbind] = []
    pos = list_start
    while pos < list_stop:
        vb_start, pos = _expect(data, pos, list_stop, _SEQUENCE, "varbind")
        varbinds.append(_varbind(data, vb_start, pos))
    request_id, error_status, error_index = fields
    return (
        version,
        community,
        Response(
            error_status=error_status,
            error_index=error_index,
            varbinds=varbinds,
            request_id=request_id,
        ),
    )
