"""``snmpwalk -On`` output parsed to the varbinds the device sent (mibs.snmpwalk).

The walks in tests/data/walks were made by Debian's snmpwalk against snmpsim
serving the .snmprec next to them (or in tests/data/recordings): parsing the walk
must give back exactly what the recording holds, byte for byte.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mibs.snmprec import load_varbinds
from mibs.snmpwalk import WalkError, looks_like_walk, parse_walk
from mibs.values import parse_oid

DATA = Path(__file__).resolve().parents[1] / "data"


def test_odd_values_round_trip_through_net_snmp() -> None:
    walked = parse_walk((DATA / "walks" / "odd_values.walk").read_text())
    assert walked == load_varbinds((DATA / "walks" / "odd_values.snmprec").read_text())
    assert walked[parse_oid("1.3.6.1.2.1.1.1.0")] == b'He said "hi" \\ back\nsecond line'
    assert walked[parse_oid("1.3.6.1.2.1.1.9.1.9.1")] == b'= STRING: "x"\n.1.3.6.1 = INTEGER: 5'
    assert walked[parse_oid("1.3.6.1.2.1.1.7.0")] == bytes(range(40))  # wrapped Hex-STRING
    assert walked[parse_oid("1.3.6.1.2.1.1.8.0")] == b""
    assert walked[parse_oid("1.3.6.1.2.1.1.9.1.6.1")] == 2**64 - 1


def test_a_printer_walk_equals_what_snmpsim_served() -> None:
    walked = parse_walk((DATA / "walks" / "colour_mfp_hr2.walk").read_text())
    recorded = load_varbinds((DATA / "recordings" / "colour_mfp_hr2.snmprec").read_text())
    serial = parse_oid("1.3.6.1.2.1.43.5.1.1.17.2")
    assert walked[serial] == recorded[serial].rstrip()  # type: ignore[union-attr]
    assert {k: v for k, v in walked.items() if k != serial} == {
        k: v for k, v in recorded.items() if k != serial
    }


def test_forms_net_snmp_prints_with_mibs_loaded() -> None:
    text = (
        ".1.3.6.1.2.1.25.3.5.1.1.1 = INTEGER: idle(3)\n"
        ".1.3.6.1.2.1.1.3.0 = Timeticks: (12345) 0:02:03.45\n"
        ".1.3.6.1.2.1.43.10.2.1.4.1.1 = Counter32: 48213 impressions\n"
        ".1.3.6.1.2.1.25.3.5.1.2.1 = BITS: 20 04 lowToner(2) inputTrayEmpty(13)\n"
        ".1.3.6.1.2.1.43.11.1.1.9.1.1 = Wrong Type (should be INTEGER): Gauge32: 7\n"
        "iso.3.6.1.2.1.1.2.0 = OID: iso.3.6.1.4.1.11\n"
        ".1.3.6.1.2.1.1.4.0 = No Such Object available on this agent at this OID\n"
        ".1.3.6.1.2.1.1.9.0 = NULL\n"
    )
    assert parse_walk(text) == {
        parse_oid("1.3.6.1.2.1.1.2.0"): parse_oid("1.3.6.1.4.1.11"),
        parse_oid("1.3.6.1.2.1.1.3.0"): 12345,
        parse_oid("1.3.6.1.2.1.25.3.5.1.1.1"): 3,
        parse_oid("1.3.6.1.2.1.25.3.5.1.2.1"): b"\x20\x04",
        parse_oid("1.3.6.1.2.1.43.10.2.1.4.1.1"): 48213,
        parse_oid("1.3.6.1.2.1.43.11.1.1.9.1.1"): 7,
    }


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('SNMPv2-MIB::sysDescr.0 = STRING: "x"\n', 1, "walk with -On"),
        ('.1.3.6.1.2.1.1.1.0 = STRING: "x"\nnot a varbind\n', 2, "not a '.OID = TYPE: VALUE'"),
        ('.1.3.6.1.2.1.1.1.0 = STRING: "never closed\n', 1, "closing quote"),
        (".1.3.6.1.2.1.1.3.0 = Counter32: many\n", 1, "expected a number"),
        (".1.3.6.1.2.1.1.3.0 = Hex-STRING: 0G\n", 1, "expected hex bytes"),
        (".1.3.6.1.2.1.1.3.0 = IpAddress: 10.0.0.300\n", 1, "dotted quad"),
        (".1.3.6.1.2.1.1.3.0 = Float: 1.5\n", 1, "unknown value type"),
    ],
)
def test_what_is_not_a_walk_names_its_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(WalkError) as caught:
        parse_walk(text)
    assert caught.value.line == line
    assert fragment in str(caught.value)


def test_walks_and_recordings_are_told_apart() -> None:
    assert looks_like_walk((DATA / "walks" / "colour_mfp_hr2.walk").read_text())
    assert not looks_like_walk((DATA / "recordings" / "colour_mfp_hr2.snmprec").read_text())


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from('.1=: "\\\nSTRINGHex-0AFx(3)iso'), max_size=80))
def test_any_text_parses_or_is_a_walk_error(text: str) -> None:
    with contextlib.suppress(WalkError):
        parse_walk(text)
