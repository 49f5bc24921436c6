"""SNMPv1/v2c messages to and from bytes, no I/O: the subset of BER (X.690) they use.

Our own codec (one-octet tags, definite lengths of at most four octets): pyasn1's generic
decoder was most of the client CPU (STACK_NOTES). :func:`decode_request` is the agent's side.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mibs.reasons import REASONS
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


class Special(enum.Enum):
    NULL = "null"
    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB_VIEW = "endOfMibView"
    UNSUPPORTED = "unsupported"  # a value type outside SMIv2 (left out like NULL)
    BAD_NAME = "badName"  # the varbind name was not an OBJECT IDENTIFIER


RawValue = Value | Special
RawVarbind = tuple[Oid, RawValue]


class PduKind(enum.Enum):
    GET = "get"
    NEXT = "getnext"
    BULK = "getbulk"


# RFC 3416 section 3 error-status names by number; the reason words list them in that order.
_ERROR_STATUS_NAMES = dict(
    enumerate(["noError", *(r.split(":")[1] for r in REASONS if r.startswith("error_status:"))])
)
TOO_BIG = 1
NO_SUCH_NAME = 2


def error_status_name(status: int) -> str:
    return _ERROR_STATUS_NAMES.get(status, f"errorStatus{status}")


@dataclass(frozen=True, slots=True)
class Response:
    """A decoded response PDU: error fields and varbinds, values already plain."""

    error_status: int = 0
    error_index: int = 0
    varbinds: list[RawVarbind] = field(default_factory=list)
    request_id: int = 0


@dataclass(frozen=True, slots=True)
class Request:
    """A decoded request; ``kind`` is None for a PDU not answered with data (SET, traps, ...)."""

    version: int
    community: bytes
    kind: PduKind | None
    request_id: int = 0
    non_repeaters: int = 0  # GET and GETNEXT: the error-status field
    max_repetitions: int = 0  # GET and GETNEXT: the error-index field
    oids: tuple[Oid, ...] = ()


VERSION_NUMBERS = {"v1": 0, "v2c": 1}

RESPONSE = 0xA2
_REQUEST_TAGS = {PduKind.GET: 0xA0, PduKind.NEXT: 0xA1, PduKind.BULK: 0xA5}
_REQUEST_KINDS = {tag: kind for kind, tag in _REQUEST_TAGS.items()}
# The PDU tags each version defines: GetRequest .. Trap (RFC 1157 section 4.1);
# SNMPv2 drops that Trap and adds GetBulk, Inform, SNMPv2-Trap and Report (RFC 3416).
_VERSION_PDUS = {0: frozenset(range(0xA0, 0xA5)), 1: frozenset(range(0xA0, 0xA9)) - {0xA4}}
# SNMPv2 PDU field ranges (RFC 3416 section 3): request-id is an Integer32;
# error-index, non-repeaters and max-repetitions are INTEGER (0..max-bindings).
_INTEGER32 = range(-(2**31), 2**31)
_MAX_BINDINGS = range(2**31)
_UNSIGNED32 = {COUNTER32, GAUGE32, TIMETICKS, UINTEGER32}
_OCTETS = {OCTET_STRING, IP_ADDRESS, OPAQUE, NSAP}
EXCEPTIONS = {
    NO_SUCH_OBJECT: Special.NO_SUCH_OBJECT,
    NO_SUCH_INSTANCE: Special.NO_SUCH_INSTANCE,
    END_OF_MIB_VIEW: Special.END_OF_MIB_VIEW,
}
# The value types a request may carry: SMIv1 ObjectSyntax (RFC 1155) and NULL; SMIv2 adds
# Counter64 (RFC 2578) and the exceptions (RFC 3416). NsapAddress and UInteger32 (RFC 1442,
# withdrawn) are decoded in a response but are no type of either version.
_V1_VALUE_TAGS = ({INTEGER, NULL, OBJECT_IDENTIFIER} | _OCTETS | _UNSIGNED32) - {NSAP, UINTEGER32}
_VALUE_TAGS = {0: _V1_VALUE_TAGS, 1: _V1_VALUE_TAGS | {COUNTER64} | EXCEPTIONS.keys()}
# Fixed content sizes: an IpAddress is four octets, NULL and the exceptions are empty.
_VALUE_SIZES = {IP_ADDRESS: 4, NULL: 0, **dict.fromkeys(EXCEPTIONS, 0)}


def tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets + content


def _oid_content(oid: Oid) -> bytes:
    """The base-128 arcs of ``oid``, the first two folded into one octet run (X.690 8.19)."""
    if len(oid) < 2 or oid[0] > 2 or (oid[0] < 2 and oid[1] >= 40):
        raise ValueError(f"cannot encode OID {oid!r}: needs two valid leading arcs")
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if arc < 0:
            raise ValueError(f"cannot encode OID {oid!r}: negative arc")
        shifts = range(7 * ((arc.bit_length() - 1) // 7), 0, -7)
        out.extend([0x80 | ((arc >> shift) & 0x7F) for shift in shifts] + [arc & 0x7F])
    return bytes(out)


@functools.lru_cache(maxsize=4096)
def encode_oid(oid: Oid) -> bytes:
    """Cached: a sweep or a poll sends the same few dozen OIDs to every device."""
    return tlv(OBJECT_IDENTIFIER, _oid_content(oid))


def encode_value(tag: int, value: Value | None) -> bytes:
    """``value`` under ``tag`` as given (None: NULL; a tuple: OID arcs; an int: INTEGER octets)."""
    if value is None:
        return NULL_VALUE
    if isinstance(value, tuple):
        return tlv(tag, _oid_content(value))
    if isinstance(value, bytes):
        return tlv(tag, value)
    size = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return tlv(tag, value.to_bytes(size, "big", signed=True))


def encode_varbind(oid: Oid, value: bytes = NULL_VALUE) -> bytes:
    """One varbind, SEQUENCE {name, value}, around an already encoded ``value``."""
    return tlv(SEQUENCE, encode_oid(oid) + value)


def encode_message(
    version: int, community: bytes, tag: int, fields: Sequence[int], varbinds: Iterable[bytes]
) -> bytes:
    """A message: PDU ``tag`` with its three INTEGER ``fields`` around encoded varbinds."""
    pdu = b"".join(encode_value(INTEGER, n) for n in fields) + tlv(SEQUENCE, b"".join(varbinds))
    header = encode_value(INTEGER, version) + tlv(OCTET_STRING, community)
    return tlv(SEQUENCE, header + tlv(tag, pdu))


def encode_request(
    version: str,
    community: bytes,
    kind: PduKind,
    request_id: int,
    oids: Sequence[Oid],
    *,
    max_repetitions: int = 0,
) -> bytes:
    """One GET/GETNEXT/GETBULK message with NULL values; GETBULK has no non-repeaters."""
    fields = (request_id, 0, max_repetitions if kind is PduKind.BULK else 0)
    varbinds = map(encode_varbind, oids)
    return encode_message(
        VERSION_NUMBERS[version], community, _REQUEST_TAGS[kind], fields, varbinds
    )


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


def _integer(data: bytes, pos: int, stop: int, what: str) -> tuple[int, int]:
    """The INTEGER ``what`` at ``pos`` and the offset after it."""
    start, end = expect(data, pos, stop, INTEGER, what)
    if start == end:
        raise WireError(f"empty INTEGER at offset {start}")
    return int.from_bytes(data[start:end], "big", signed=True), end


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


def _header(data: bytes) -> tuple[int, bytes, int, int]:
    """(version number, community, PDU offset, message content end) of a message."""
    start, stop = expect(data, 0, len(data), SEQUENCE, "message")
    version, pos = _integer(data, start, stop, "message version")
    com_start, com_stop = expect(data, pos, stop, OCTET_STRING, "community")
    return version, data[com_start:com_stop], com_stop, stop


def _pdu_fields(data: bytes, pos: int, stop: int) -> tuple[int, int, int, int, int]:
    """The three INTEGERs of a PDU and the (start, end) of its varbind list."""
    request_id, pos = _integer(data, pos, stop, "request-id")
    second, pos = _integer(data, pos, stop, "error-status")
    third, pos = _integer(data, pos, stop, "error-index")
    list_start, list_stop = expect(data, pos, stop, SEQUENCE, "varbind list")
    return request_id, second, third, list_start, list_stop


def _value(tag: int, content: bytes) -> RawValue:
    if tag == INTEGER:
        if not content:
            raise WireError("empty INTEGER value")
        return int.from_bytes(content, "big", signed=True)
    if tag in _OCTETS:
        return content
    if tag == OBJECT_IDENTIFIER:
        return decode_oid(content)
    if tag == NULL:
        return Special.NULL
    if tag in _UNSIGNED32 or tag == COUNTER64:
        if not content:
            raise WireError(f"empty value of tag 0x{tag:02x}")
        bits = 64 if tag == COUNTER64 else 32
        return int.from_bytes(content, "big", signed=True) % (1 << bits)
    return EXCEPTIONS.get(tag, Special.UNSUPPORTED)


def decode_response(data: bytes) -> tuple[int, bytes, Response]:
    """(version number, community, response PDU) of one datagram; :class:`WireError` if malformed.

    Tolerant where printers are sloppy: unsigned types without their leading zero
    octet are read modulo 2**32/2**64 (as net-snmp does), a value of an unknown
    type is :attr:`Special.UNSUPPORTED`, a name that is not an OID :attr:`Special.BAD_NAME`.
    """
    version, community, pos, stop = _header(data)
    pdu_start, pdu_stop = expect(data, pos, stop, RESPONSE, "response PDU")
    request_id, status, index, pos, list_stop = _pdu_fields(data, pdu_start, pdu_stop)
    varbinds: list[RawVarbind] = []
    while pos < list_stop:
        vb_start, pos = expect(data, pos, list_stop, SEQUENCE, "varbind")
        name_tag, name_start, name_stop = read_tlv(data, vb_start, pos)
        value_tag, value_start, value_stop = read_tlv(data, name_stop, pos)
        try:
            oid = decode_oid(data[name_start:name_stop]) if name_tag == OBJECT_IDENTIFIER else ()
        except WireError:
            oid = ()
        if not oid:  # the name is not an OBJECT IDENTIFIER
            varbinds.append(((), Special.BAD_NAME))
            continue
        try:
            varbinds.append((oid, _value(value_tag, data[value_start:value_stop])))
        except WireError:
            varbinds.append((oid, Special.UNSUPPORTED))
    return version, community, Response(status, index, varbinds, request_id)


def decode_request(data: bytes) -> Request:
    """One datagram's request, strictly: any flaw by RFC 1157/3416 raises :class:`WireError`."""
    version, community, pos, stop = _header(data)
    if stop != len(data):
        raise WireError(f"message: {len(data) - stop} octets after its end")
    pdus = _VERSION_PDUS.get(version)
    if pdus is None:
        raise WireError(f"message version: {version} is neither SNMPv1 (0) nor SNMPv2c (1)")
    tag, pdu_start, pdu_stop = read_tlv(data, pos, stop)
    if tag not in pdus:
        raise WireError(f"PDU: tag 0x{tag:02x} is not a PDU of version number {version}")
    if tag == 0xA4:  # a v1 Trap: a layout of its own (RFC 1157 section 4.1.6)
        return Request(version=version, community=community, kind=None)
    request_id, second, third, pos, list_stop = _pdu_fields(data, pdu_start, pdu_stop)
    kind = _REQUEST_KINDS.get(tag)
    if version == 1:
        if request_id not in _INTEGER32:
            raise WireError(f"request-id: {request_id} is not an Integer32")
        checks = {"error-index": third}
        if kind is PduKind.BULK:
            checks = {"non-repeaters": second, "max-repetitions": third}
        for what, value in checks.items():
            if value not in _MAX_BINDINGS:
                raise WireError(f"{what}: {value} is outside 0..2147483647")
    value_tags = _VALUE_TAGS[version]
    oids: list[Oid] = []
    while pos < list_stop:
        vb_start, pos = expect(data, pos, list_stop, SEQUENCE, "varbind")
        name_start, name_stop = expect(data, vb_start, pos, OBJECT_IDENTIFIER, "varbind name")
        value_tag, value_start, value_stop = read_tlv(data, name_stop, pos)
        if value_stop != pos:
            raise WireError(f"varbind at offset {vb_start}: more than a name and a value")
        if value_tag not in value_tags:
            raise WireError(
                f"varbind value: tag 0x{value_tag:02x} is not a type of version {version}"
            )
        if value_stop - value_start != _VALUE_SIZES.get(value_tag, value_stop - value_start):
            raise WireError(f"varbind value: wrong size for tag 0x{value_tag:02x}")
        oid = decode_oid(data[name_start:name_stop])
        if encode_oid(oid) != tlv(OBJECT_IDENTIFIER, data[name_start:name_stop]):  # X.690 8.19.2
            raise WireError("OBJECT IDENTIFIER: a sub-identifier starts with 0x80")
        oids.append(oid)
    return Request(version, community, kind, request_id, second, third, tuple(oids))
