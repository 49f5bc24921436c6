"""The agent side of the v1/v2c codec (decode_request, encode_message, encode_value).

The test and benchmark responders answer with it, so it is checked here against
an independent implementation (pyasn1 through pysnmp's protocol API) both ways:
requests pyasn1 encodes decode to the same fields, responses it decodes carry
what was encoded, and what pyasn1 refuses as a request is refused here too.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1905

from collectors import snmp_message as ber
from collectors.snmp_message import (
    RESPONSE,
    PduKind,
    Request,
    Special,
    WireError,
    decode_request,
    decode_response,
    encode_message,
    encode_request,
    encode_varbind,
    error_status_name,
)
from mibs.values import Oid

SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)
oids = st.lists(st.integers(0, 2**32 - 1), min_size=0, max_size=12).map(
    lambda tail: (1, 3, 6, *tail)
)


def _integer(value: int) -> bytes:
    return ber.encode_value(ber.INTEGER, value)


def _message(version: int, tag: int, fields: tuple[int, int, int], varbinds: bytes) -> bytes:
    request_id, second, third = fields
    pdu = ber.tlv(
        tag,
        _integer(request_id) + _integer(second) + _integer(third) + ber.tlv(ber.SEQUENCE, varbinds),
    )
    return ber.tlv(ber.SEQUENCE, _integer(version) + ber.tlv(ber.OCTET_STRING, b"public") + pdu)


def _null_varbind(oid: Oid = SYS_DESCR) -> bytes:
    return encode_varbind(oid)


NAME = ber.encode_oid(SYS_DESCR)


def _get(version: int, varbind_content: bytes) -> bytes:
    """A GetRequest with one varbind of exactly this content."""
    return _message(version, 0xA0, (1, 0, 0), ber.tlv(ber.SEQUENCE, varbind_content))


# -- requests -------------------------------------------------------------------------


@settings(max_examples=200)
@given(
    version=st.sampled_from(["v1", "v2c"]),
    kind=st.sampled_from(list(PduKind)),
    request_id=st.integers(-(2**31), 2**31 - 1),
    names=st.lists(oids, max_size=6),
    repetitions=st.integers(0, 2**31 - 1),
)
def test_our_requests_decode_to_what_was_encoded(
    version: str, kind: PduKind, request_id: int, names: list[Oid], repetitions: int
) -> None:
    if version == "v1" and kind is PduKind.BULK:
        kind = PduKind.NEXT  # SNMPv1 has no GETBULK
    data = encode_request(
        version=version,
        community=b"s3cret",
        kind=kind,
        request_id=request_id,
        oids=names,
        max_repetitions=repetitions,
    )
    assert decode_request(data) == Request(
        version={"v1": 0, "v2c": 1}[version],
        community=b"s3cret",
        kind=kind,
        request_id=request_id,
        non_repeaters=0,
        max_repetitions=repetitions if kind is PduKind.BULK else 0,
        oids=tuple(names),
    )


@settings(max_examples=100)
@given(
    names=st.lists(oids, max_size=5),
    non_repeaters=st.integers(0, 5),
    repetitions=st.integers(0, 100),
    request_id=st.integers(0, 2**31 - 1),
)
def test_a_getbulk_pyasn1_encodes_keeps_its_non_repeaters(
    names: list[Oid], non_repeaters: int, repetitions: int, request_id: int
) -> None:
    p_mod = api.PROTOCOL_MODULES[1]
    pdu = p_mod.GetBulkRequestPDU()
    p_mod.apiBulkPDU.set_defaults(pdu)
    p_mod.apiBulkPDU.set_request_id(pdu, request_id)
    p_mod.apiBulkPDU.set_non_repeaters(pdu, non_repeaters)
    p_mod.apiBulkPDU.set_max_repetitions(pdu, repetitions)
    p_mod.apiBulkPDU.set_varbinds(pdu, [(oid, p_mod.Null("")) for oid in names])
    message = p_mod.Message()
    p_mod.apiMessage.set_defaults(message)
    p_mod.apiMessage.set_community(message, "public")
    p_mod.apiMessage.set_pdu(message, pdu)
    request = decode_request(encoder.encode(message))
    assert (request.kind, request.request_id, request.oids) == (
        PduKind.BULK,
        request_id,
        tuple(names),
    )
    assert (request.non_repeaters, request.max_repetitions) == (non_repeaters, repetitions)


@pytest.mark.parametrize(
    ("version", "tag"),
    [(1, 0xA3), (1, 0xA2), (1, 0xA6), (1, 0xA7), (1, 0xA8), (0, 0xA3), (0, 0xA2)],
)
def test_pdus_an_agent_does_not_serve_have_no_kind(version: int, tag: int) -> None:
    request = decode_request(_message(version, tag, (7, 0, 0), _null_varbind()))
    assert (request.version, request.community, request.kind) == (version, b"public", None)


def test_an_snmpv1_trap_has_no_kind_and_its_own_layout_is_not_read() -> None:
    trap = ber.tlv(
        0xA4, ber.encode_oid((1, 3, 6, 1, 4, 1, 99)) + ber.tlv(ber.IP_ADDRESS, b"\x7f\x00\x00\x01")
    )
    data = ber.tlv(ber.SEQUENCE, _integer(0) + ber.tlv(ber.OCTET_STRING, b"public") + trap)
    assert decode_request(data).kind is None


BAD_REQUESTS = {
    "snmpv1 getbulk": (_message(0, 0xA5, (1, 0, 10), _null_varbind()), "PDU: tag 0xa5"),
    "snmpv2c trap-v1 tag": (_message(1, 0xA4, (1, 0, 0), _null_varbind()), "PDU: tag 0xa4"),
    "snmpv3": (_message(3, 0xA0, (1, 0, 0), _null_varbind()), "message version: 3"),
    "unknown pdu": (_message(1, 0xA9, (1, 0, 0), _null_varbind()), "PDU: tag 0xa9"),
    "trailing octets": (_message(1, 0xA0, (1, 0, 0), _null_varbind()) + b"\x00", "after its end"),
    "negative non-repeaters": (_message(1, 0xA5, (1, -1, 10), _null_varbind()), "non-repeaters"),
    "negative max-repetitions": (_message(1, 0xA5, (1, 0, -1), _null_varbind()), "max-repet"),
    "huge max-repetitions": (_message(1, 0xA5, (1, 0, 2**31), _null_varbind()), "max-repet"),
    "negative error-index": (_message(1, 0xA0, (1, 0, -1), _null_varbind()), "error-index"),
    "request-id beyond Integer32": (_message(1, 0xA0, (2**31, 0, 0), b""), "request-id"),
    "UInteger32 value": (_get(1, NAME + b"\x47\x01\x05"), "tag 0x47"),
    "Counter64 in snmpv1": (_get(0, NAME + b"\x46\x01\x05"), "tag 0x46"),
    "three-octet IpAddress": (_get(1, NAME + b"\x40\x03\x01\x02\x03"), "wrong size"),
    "endOfMibView with content": (_get(1, NAME + b"\x82\x01\x00"), "wrong size"),
    "varbind with a third element": (_get(1, NAME + b"\x05\x00\x05\x00"), "more than a name"),
    "name not an OID": (_get(1, ber.tlv(ber.OCTET_STRING, b"x") + b"\x05\x00"), "varbind name"),
    "arc padded with 0x80": (_get(1, b"\x06\x04\x2b\x80\x06\x01\x05\x00"), "starts with 0x80"),
    "truncated": (_message(1, 0xA0, (1, 0, 0), _null_varbind())[:-3], "runs past"),
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_malformed_requests_are_refused_like_pyasn1_refuses_them(name: str) -> None:
    data, reason = BAD_REQUESTS[name]
    with pytest.raises(WireError, match=reason):
        decode_request(data)
    # The independent decoder agrees that this is no request an agent answers.
    with pytest.raises(Exception):  # pyasn1 raises several unrelated types
        _pyasn1_decode(data)


def _pyasn1_decode(data: bytes) -> object:
    version = int(api.decodeMessageVersion(data))
    p_mod = api.PROTOCOL_MODULES[version]
    return decoder.decode(data, asn1Spec=p_mod.Message())


# -- responses ------------------------------------------------------------------------


def test_snmprec_values_encode_under_their_own_tag() -> None:
    assert ber.encode_value(ber.COUNTER32, 4294967295) == b"\x41\x05\x00\xff\xff\xff\xff"
    assert ber.encode_value(ber.GAUGE32, 127) == b"\x42\x01\x7f"
    assert ber.encode_value(ber.TIMETICKS, 128) == b"\x43\x02\x00\x80"
    assert ber.encode_value(ber.INTEGER, -1) == b"\x02\x01\xff"
    assert ber.encode_value(ber.COUNTER64, 2**64 - 1) == b"\x46\x09\x00" + b"\xff" * 8
    assert ber.encode_value(ber.OCTET_STRING, b"HP") == b"\x04\x02HP"
    assert ber.encode_value(ber.IP_ADDRESS, b"\x7f\x00\x00\x01") == b"\x40\x04\x7f\x00\x00\x01"
    assert ber.encode_value(ber.OBJECT_IDENTIFIER, (1, 3, 6, 1)) == b"\x06\x03\x2b\x06\x01"
    assert ber.encode_value(ber.OCTET_STRING, None) == b"\x05\x00"
    assert ber.encode_value(ber.COUNTER32, -1) == b"\x41\x01\xff"  # any content under any tag


values = st.one_of(
    st.tuples(st.just(ber.INTEGER), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(
        st.sampled_from([ber.COUNTER32, ber.GAUGE32, ber.TIMETICKS]), st.integers(0, 2**32 - 1)
    ),
    st.tuples(st.just(ber.COUNTER64), st.integers(0, 2**64 - 1)),
    st.tuples(st.just(ber.OCTET_STRING), st.binary(max_size=300)),
    st.tuples(st.just(ber.OBJECT_IDENTIFIER), oids),
)


@settings(max_examples=200)
@given(
    version=st.sampled_from([0, 1]),
    request_id=st.integers(-(2**31), 2**31 - 1),
    varbinds=st.lists(st.tuples(oids, values), max_size=8),
)
def test_responses_decode_to_what_was_encoded_here_and_in_pyasn1(
    version: int, request_id: int, varbinds: list[tuple[Oid, tuple[int, object]]]
) -> None:
    assume(version == 1 or all(tag != ber.COUNTER64 for _, (tag, _) in varbinds))  # SMIv2 only
    encoded = [encode_varbind(oid, ber.encode_value(tag, value)) for oid, (tag, value) in varbinds]  # type: ignore[arg-type]
    data = encode_message(version, b"public", RESPONSE, (request_id, 0, 0), encoded)
    got_version, community, response = decode_response(data)
    assert (got_version, community, response.request_id) == (version, b"public", request_id)
    assert response.varbinds == [(oid, value) for oid, (_, value) in varbinds]

    p_mod = api.PROTOCOL_MODULES[version]
    message, rest = decoder.decode(data, asn1Spec=p_mod.Message())
    assert rest == b""
    pdu = p_mod.apiMessage.get_pdu(message)
    assert int(p_mod.apiPDU.get_request_id(pdu)) == request_id
    names = [tuple(name) for name, _ in p_mod.apiPDU.get_varbinds(pdu)]
    assert names == [oid for oid, _ in varbinds]


def test_a_response_carries_its_error_fields_and_exceptions() -> None:
    varbind = encode_varbind(SYS_DESCR, ber.tlv(ber.END_OF_MIB_VIEW, b""))
    data = encode_message(1, b"c", RESPONSE, (9, 2, 1), [varbind])
    _, _, response = decode_response(data)
    assert (response.error_status, response.error_index) == (2, 1)
    assert response.varbinds == [(SYS_DESCR, Special.END_OF_MIB_VIEW)]


def test_error_status_names_are_rfc_3416s_numbers() -> None:
    named = dict(rfc1905.errorStatus.namedValues.items())  # pysnmp's own table
    assert {error_status_name(number): number for number in range(19)} == named
    assert error_status_name(19) == "errorStatus19"
    assert error_status_name(-1) == "errorStatus-1"
