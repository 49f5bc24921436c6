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

The agent side of the same messages (:func:`decode_request`,
:func:`encode_response`) serves the fake agent (:mod:`collectors.fake_agent`)
that the tests, the benchmarks and the hostile-responder tests use: one BER
implementation for both sides.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from collectors.ber import (
    COUNTER32,
    COUNTER64,
    END_OF_MIB_VIEW,
    GAUGE32,
    INTEGER,
    IP_ADDRESS,
    NO_SUCH_INSTANCE,
    NO_SUCH_OBJECT,
    NSAP,
    NULL,
    NULL_VALUE,
    OBJECT_IDENTIFIER,
    OCTET_STRING,
    OPAQUE,
    SEQUENCE,
    TIMETICKS,
    UINTEGER32,
    WireError,
    decode_integer,
    decode_oid,
    encode_integer,
    encode_oid,
    expect,
    read_tlv,
    tlv,
)
from mibs.values import Oid, Value

# -- the values a message carries, as the transport sees them --------------------


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


# RFC 3416 section 3 error-status values, by number.
ERROR_STATUS_NAMES = {
    0: "noError",
    1: "tooBig",
    2: "noSuchName",
    3: "badValue",
    4: "readOnly",
    5: "genErr",
    6: "noAccess",
    7: "wrongType",
    8: "wrongLength",
    9: "wrongEncoding",
    10: "wrongValue",
    11: "noCreation",
    12: "inconsistentValue",
    13: "resourceUnavailable",
    14: "commitFailed",
    15: "undoFailed",
    16: "authorizationError",
    17: "notWritable",
    18: "inconsistentName",
}
TOO_BIG = 1
NO_SUCH_NAME = 2


def error_status_name(status: int) -> str:
    return ERROR_STATUS_NAMES.get(status, f"errorStatus{status}")


@dataclass(frozen=True, slots=True)
class Response:
    """A decoded response PDU: error fields and varbinds, values already plain."""

    error_status: int = 0
    error_index: int = 0
    varbinds: list[RawVarbind] = field(default_factory=list)
    request_id: int = 0


__all__ = [
    "VERSION_NUMBERS",
    "Request",
    "WireError",
    "decode_request",
    "decode_response",
    "encode_request",
    "encode_response",
    "encode_varbind",
]

VERSION_NUMBERS = {"v1": 0, "v2c": 1}

_RESPONSE = 0xA2
_REQUEST_TAGS = {PduKind.GET: 0xA0, PduKind.NEXT: 0xA1, PduKind.BULK: 0xA5}
_REQUEST_KINDS = {tag: kind for kind, tag in _REQUEST_TAGS.items()}
# The PDU tags each version defines: GetRequest .. Trap (RFC 1157 section 4.1);
# SNMPv2 drops that Trap and adds GetBulk, Inform, SNMPv2-Trap and Report (RFC 3416).
_VERSION_PDUS = {0: frozenset(range(0xA0, 0xA5)), 1: frozenset(range(0xA0, 0xA9)) - {0xA4}}
_V1_TRAP = 0xA4  # a layout of its own (RFC 1157 section 4.1.6)
_GET_BULK = _REQUEST_TAGS[PduKind.BULK]
# SNMPv2 PDU field ranges (RFC 3416 section 3): request-id is an Integer32;
# error-index, non-repeaters and max-repetitions are INTEGER (0..max-bindings).
_INTEGER32 = range(-(2**31), 2**31)
_MAX_BINDINGS = range(2**31)
# The value types a varbind may carry: SMIv1 ObjectSyntax (RFC 1155) and NULL;
# SMIv2 adds Counter64 (RFC 2578) and the three exceptions (RFC 3416).
_V1_VALUE_TAGS = frozenset(
    {INTEGER, OCTET_STRING, NULL, OBJECT_IDENTIFIER, IP_ADDRESS, COUNTER32, GAUGE32}
    | {TIMETICKS, OPAQUE}
)
# Fixed content sizes: an IpAddress is four octets, NULL and the exceptions are empty.
_VALUE_SIZES = {IP_ADDRESS: 4, NULL: 0, NO_SUCH_OBJECT: 0, NO_SUCH_INSTANCE: 0, END_OF_MIB_VIEW: 0}
_VALUE_TAGS = {
    0: _V1_VALUE_TAGS,
    1: _V1_VALUE_TAGS | {COUNTER64, NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW},
}

_UNSIGNED32 = {COUNTER32, GAUGE32, TIMETICKS, UINTEGER32}
_OCTETS = {OCTET_STRING, IP_ADDRESS, OPAQUE, NSAP}
_EXCEPTIONS = {
    NO_SUCH_OBJECT: Special.NO_SUCH_OBJECT,
    NO_SUCH_INSTANCE: Special.NO_SUCH_INSTANCE,
    END_OF_MIB_VIEW: Special.END_OF_MIB_VIEW,
}


@dataclass(frozen=True, slots=True)
class Request:
    """A decoded request message, as an agent sees it.

    ``kind`` is None for a PDU an agent does not answer with data (SetRequest,
    traps, Inform, Report, a Response); its fields are then left undecoded.
    For GET and GETNEXT, ``non_repeaters`` and ``max_repetitions`` hold the
    error-status and error-index fields (zero from a sane manager).
    """

    version: int
    community: bytes
    kind: PduKind | None
    request_id: int = 0
    non_repeaters: int = 0
    max_repetitions: int = 0
    oids: tuple[Oid, ...] = ()


# -- encoding -------------------------------------------------------------------------


def encode_varbind(oid: Oid, value: bytes = NULL_VALUE) -> bytes:
    """One varbind, SEQUENCE {name, value}, around an already encoded ``value``."""
    return tlv(SEQUENCE, encode_oid(oid) + value)


def _message(version: int, community: bytes, pdu_tag: int, fields: bytes) -> bytes:
    body = encode_integer(version) + tlv(OCTET_STRING, community) + tlv(pdu_tag, fields)
    return tlv(SEQUENCE, body)


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
    varbinds = b"".join(encode_varbind(oid) for oid in oids)
    second, third = (0, max_repetitions) if kind is PduKind.BULK else (0, 0)
    fields = (
        encode_integer(request_id)
        + encode_integer(second)
        + encode_integer(third)
        + tlv(SEQUENCE, varbinds)
    )
    return _message(VERSION_NUMBERS[version], community, _REQUEST_TAGS[kind], fields)


def encode_response(
    *,
    version: int,
    community: bytes,
    request_id: int,
    varbinds: Iterable[bytes],
    error_status: int = 0,
    error_index: int = 0,
) -> bytes:
    """One Response message around already encoded varbinds (see :func:`encode_varbind`)."""
    fields = (
        encode_integer(request_id)
        + encode_integer(error_status)
        + encode_integer(error_index)
        + tlv(SEQUENCE, b"".join(varbinds))
    )
    return _message(version, community, _RESPONSE, fields)


# -- decoding -------------------------------------------------------------------------


def _header(data: bytes) -> tuple[int, bytes, int, int]:
    """(version number, community, PDU offset, message content end) of a message."""
    end = len(data)
    start, stop = expect(data, 0, end, SEQUENCE, "message")
    ver_start, ver_stop = expect(data, start, stop, INTEGER, "message version")
    version = decode_integer(data, ver_start, ver_stop)
    com_start, com_stop = expect(data, ver_stop, stop, OCTET_STRING, "community")
    return version, data[com_start:com_stop], com_stop, stop


def _pdu_fields(data: bytes, start: int, stop: int) -> tuple[int, int, int, int, int]:
    """The three INTEGERs of a PDU and the (start, end) of its varbind list."""
    fields: list[int] = []
    pos = start
    for what in ("request-id", "error-status", "error-index"):
        field_start, pos = expect(data, pos, stop, INTEGER, what)
        fields.append(decode_integer(data, field_start, pos))
    list_start, list_stop = expect(data, pos, stop, SEQUENCE, "varbind list")
    return fields[0], fields[1], fields[2], list_start, list_stop


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
    special = _EXCEPTIONS.get(tag)
    return special if special is not None else Special.UNSUPPORTED


def _varbind(data: bytes, start: int, stop: int) -> RawVarbind:
    name_tag, name_start, name_stop = read_tlv(data, start, stop)
    value_tag, value_start, value_stop = read_tlv(data, name_stop, stop)
    if name_tag != OBJECT_IDENTIFIER:
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
    version, community, pos, stop = _header(data)
    pdu_start, pdu_stop = expect(data, pos, stop, _RESPONSE, "response PDU")
    request_id, error_status, error_index, list_start, list_stop = _pdu_fields(
        data, pdu_start, pdu_stop
    )
    varbinds: list[RawVarbind] = []
    pos = list_start
    while pos < list_stop:
        vb_start, pos = expect(data, pos, list_stop, SEQUENCE, "varbind")
        varbinds.append(_varbind(data, vb_start, pos))
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


def _strict_oid(content: bytes) -> Oid:
    """:func:`decode_oid`, refusing a sub-identifier padded with 0x80 (X.690 8.19.2)."""
    starts_arc = True
    for octet in content:
        if starts_arc and octet == 0x80:
            raise WireError("OBJECT IDENTIFIER: a sub-identifier starts with 0x80")
        starts_arc = not octet & 0x80
    return decode_oid(content)


def _check_v2_ranges(tag: int, request_id: int, second: int, third: int) -> None:
    if request_id not in _INTEGER32:
        raise WireError(f"request-id: {request_id} is not an Integer32")
    checks: list[tuple[str, int]] = [("error-index", third)]
    if tag == _GET_BULK:
        checks = [("non-repeaters", second), ("max-repetitions", third)]
    for what, value in checks:
        if value not in _MAX_BINDINGS:
            raise WireError(f"{what}: {value} is outside 0..2147483647")


def decode_request(data: bytes) -> Request:
    """The request message of one datagram, strictly: any flaw raises :class:`WireError`.

    Only SNMPv1 and SNMPv2c are accepted, each with the PDU types, field ranges
    and value types its RFC defines (a GETBULK in an SNMPv1 message is an
    error). Varbind values are checked for their type only: an agent answers
    by name.
    """
    version, community, pos, stop = _header(data)
    if stop != len(data):
        raise WireError(f"message: {len(data) - stop} octets after its end")
    pdus = _VERSION_PDUS.get(version)
    if pdus is None:
        raise WireError(f"message version: {version} is neither SNMPv1 (0) nor SNMPv2c (1)")
    tag, pdu_start, pdu_stop = read_tlv(data, pos, stop)
    if tag not in pdus:
        raise WireError(f"PDU: tag 0x{tag:02x} is not a PDU of version number {version}")
    if tag == _V1_TRAP:
        return Request(version=version, community=community, kind=None)
    request_id, second, third, list_start, list_stop = _pdu_fields(data, pdu_start, pdu_stop)
    if version == 1:
        _check_v2_ranges(tag, request_id, second, third)
    value_tags = _VALUE_TAGS[version]
    oids: list[Oid] = []
    pos = list_start
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
        oids.append(_strict_oid(data[name_start:name_stop]))
    return Request(
        version=version,
        community=community,
        kind=_REQUEST_KINDS.get(tag),
        request_id=request_id,
        non_repeaters=second,
        max_repetitions=third,
        oids=tuple(oids),
    )
