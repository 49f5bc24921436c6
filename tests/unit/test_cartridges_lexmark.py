"""Lexmark cartridge identity (LEXMARK-MPS-MIB currentSuppliesTable), decoded from whole reads.

The rows of tests/data/recordings/lexmark_cartridges.snmprec are synthesised from
the MIB (…641.6.4.4.1.1.<column>.<deviceIndex>.<currentSupplyIndex>: .3 type,
.4 colorant, .5 description, .6 serial, .7 part number, .10 install date as an
11-octet DateAndTime). Expected values are read off that file by hand:
07ea 08 03 = 2026-08-03; Lexmark rows 1, 2, 3 and 5 are named like the
Printer-MIB supplies 1 (Black Cartridge), 2 (Cyan), 5 (Imaging Unit) and 7
(Waste Toner Bottle).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from mibs.cartridges_lexmark import (
    LEXMARK_COLUMNS,
    LEXMARK_DESCRIPTION,
    LEXMARK_INSTALL_DATE,
    LEXMARK_PART,
    LEXMARK_SERIAL,
    LEXMARK_TYPE,
    install_date,
)
from mibs.decode import decode_read
from mibs.models import PrinterRead
from mibs.plan import cartridge_plan, vendor_plan
from mibs.snmprec import load_varbinds
from mibs.values import Oid, Value, format_oid, parse_oid

AT = datetime(2026, 11, 1, tzinfo=UTC)
LX = "1.3.6.1.4.1.641.6.4.4.1.1"
RECORDING = "lexmark_cartridges.snmprec"


def _varbinds(own_recordings: Path) -> dict[Oid, Value]:
    return dict(load_varbinds((own_recordings / RECORDING).read_text()))


def _read(varbinds: dict[Oid, Value]) -> PrinterRead:
    return decode_read("127.0.0.1", AT, varbinds)


def test_lexmark_rows_fill_the_matching_supplies(own_recordings: Path) -> None:
    read = _read(_varbinds(own_recordings))
    by_index = {s.index: s for s in read.supplies}
    black = by_index[1]
    assert (black.part_number, black.cartridge_serial) == ("84C2HK0", "CAS250912345678")
    assert black.installed_on == date(2026, 8, 3)
    assert black.identity_sources == {
        "part_number": f"{LX}.7.1.1",
        "cartridge_serial": f"{LX}.6.1.1",
        "installed_on": f"{LX}.10.1.1",
    }
    assert (by_index[2].part_number, by_index[2].cartridge_serial) == (
        "84C2HC0",
        "CAS250998765432",
    )
    assert by_index[2].installed_on == date(2026, 6, 17)
    # A blank serial ("if not known, this field should be blank") is no value.
    assert (by_index[5].part_number, by_index[5].cartridge_serial) == ("74C0ZV0", None)
    assert by_index[5].installed_on == date(2025, 12, 1)
    # An all-zero DateAndTime is an unknown date, not a problem.
    assert (by_index[7].part_number, by_index[7].installed_on) == ("72K0W00", None)
    for index in (3, 4, 6):  # no Lexmark row names them
        assert by_index[index].part_number is None
        assert by_index[index].identity_sources == {}
    assert not [p for p in read.problems if p.field.startswith("supplies")]


def test_a_description_two_supplies_share_is_narrowed_by_colorant(own_recordings: Path) -> None:
    varbinds = _varbinds(own_recordings)
    # The printer calls its black and cyan cartridges alike; the colorant tells them apart.
    for index in (1, 2):
        varbinds[parse_oid(f"1.3.6.1.2.1.43.11.1.1.6.2.{index}")] = b"Toner Cartridge"
        varbinds[LEXMARK_DESCRIPTION + (1, index)] = b"Toner Cartridge"
    by_index = {s.index: s for s in _read(varbinds).supplies}
    assert by_index[1].part_number == "84C2HK0"
    assert by_index[2].part_number == "84C2HC0"


def test_an_ambiguous_row_fills_nothing(own_recordings: Path) -> None:
    varbinds = _varbinds(own_recordings)
    # Same description, same colorant (none), same type: which supply is meant is a guess.
    varbinds[parse_oid("1.3.6.1.2.1.43.11.1.1.6.2.6")] = b"Imaging Unit"
    varbinds[parse_oid("1.3.6.1.2.1.43.11.1.1.5.2.6")] = 9
    # Two Lexmark rows naming one supply: neither is trusted.
    for column, value in ((LEXMARK_DESCRIPTION, b"Cyan Cartridge"), (LEXMARK_PART, b"84C2HX0")):
        varbinds[column + (1, 9)] = value
    by_index = {s.index: s for s in _read(varbinds).supplies}
    assert by_index[5].part_number is None
    assert by_index[6].part_number is None
    assert by_index[2].part_number is None
    assert by_index[2].cartridge_serial is None
    assert by_index[1].part_number == "84C2HK0"


def test_a_row_without_description_matches_by_type_and_colorant(own_recordings: Path) -> None:
    varbinds = _varbinds(own_recordings)
    del varbinds[LEXMARK_DESCRIPTION + (1, 1)]
    del varbinds[LEXMARK_DESCRIPTION + (1, 3)]
    varbinds[LEXMARK_TYPE + (1, 3)] = 1  # unknown type, no description: nothing to go on
    by_index = {s.index: s for s in _read(varbinds).supplies}
    assert by_index[1].part_number == "84C2HK0"  # toner, black: one supply
    assert by_index[5].part_number is None


def test_the_vendor_mib_wins_over_the_description(own_recordings: Path) -> None:
    varbinds = _varbinds(own_recordings)
    varbinds[parse_oid("1.3.6.1.2.1.43.11.1.1.6.2.1")] = b"Black Cartridge 84C2HK9"
    varbinds[LEXMARK_DESCRIPTION + (1, 1)] = b"Black Cartridge 84C2HK9"
    black = _read(varbinds).supplies[0]
    assert black.part_number == "84C2HK0"
    assert black.identity_sources["part_number"] == f"{LX}.7.1.1"


def test_unreadable_values_are_problems_on_that_field(own_recordings: Path) -> None:
    varbinds = _varbinds(own_recordings)
    varbinds[LEXMARK_INSTALL_DATE + (1, 1)] = b"\x07\xea\x0d\x01\x00\x00\x00\x00"  # month 13
    varbinds[LEXMARK_SERIAL + (1, 2)] = 42
    read = _read(varbinds)
    assert read.supplies[0].installed_on is None
    assert read.supplies[1].cartridge_serial is None
    found = {(p.field, p.oid, p.reason) for p in read.problems}
    assert ("supplies.1.installed_on", f"{LX}.10.1.1", "wrong_type") in found
    assert ("supplies.2.cartridge_serial", f"{LX}.6.1.2", "wrong_type") in found


def test_install_date_reads_date_and_time() -> None:
    assert install_date(bytes.fromhex("07ea08030a0f00002b0000")) == date(2026, 8, 3)
    assert install_date(bytes.fromhex("07e90c0108000000")) == date(2025, 12, 1)
    assert install_date(bytes(8)) is None
    assert install_date(b"20260803") is None
    assert install_date(20260803) is None


def test_only_lexmark_is_asked_for_its_supplies_table() -> None:
    lexmark = vendor_plan(parse_oid("1.3.6.1.4.1.641.1.5.7"))
    assert set(LEXMARK_COLUMNS) <= {item.oid for item in lexmark.columns}
    assert format_oid(LEXMARK_COLUMNS[0]) == f"{LX}.3"
    for other in ("1.3.6.1.4.1.11.2.3.9.1", "1.3.6.1.4.1.2435.2.3.9.1", "1.3.6.1.4.1.253.8"):
        columns = {item.oid for item in vendor_plan(parse_oid(other)).columns}
        assert not columns & set(LEXMARK_COLUMNS)
    assert cartridge_plan(None).columns == ()
