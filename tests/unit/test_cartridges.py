"""Cartridge identity from descriptions and vendor MIBs, decoded from whole reads.

Expected values are read off the recordings by hand against the sources named
in mibs/cartridges.py, not taken from the decoder:

* Xerox appends ", PN <part>;SN<serial>" to prtMarkerSuppliesDescription
  (LibreNMS Xerox recording, ../shared/recordings); "unknown" is no value.
* HP, Epson and Canon end the description with the order number(s).
* HP FutureSmart consumable-status .3/.8/.12 (serial, first install date,
  pages printed), each value behind HP's two-byte 0x01 0x15 prefix.
* Brother maintenance records (code, 01 04, 4-byte value): 0x11 drum count
  0x3da = 986 pages, 0x6f black toner 0x1d4c = 7500 hundredths = 75 %;
  next care 0x82 drum remaining 0x2b06 = 11014 pages, so the drum's rated
  yield is 986 + 11014 = 12000 pages (the DR-2300's published yield).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from mibs.cartridge_yields import rated_yield_of, toner_of_model
from mibs.cartridges import (
    BROTHER_MAINTENANCE,
    HP_FIRST_INSTALL,
    brother_records,
    parse_description,
)
from mibs.decode import decode_read
from mibs.models import PrinterRead
from mibs.plan import cartridge_plan, vendor_plan
from mibs.snmprec import load_varbinds
from mibs.values import format_oid, parse_oid

AT = datetime(2026, 11, 1, tzinfo=UTC)
HP_OID = "1.3.6.1.4.1.11.2.3.9.4.2.1.4.1.10.1.1"


def _read(path: Path) -> PrinterRead:
    return decode_read("127.0.0.1", AT, load_varbinds(path.read_text()))


@pytest.mark.parametrize(
    ("description", "part", "serial"),
    [
        ("Black Toner, PN 006R01509;SN48178080E0000481", "006R01509", "48178080E0000481"),
        ("Fuser, PN unknown;SNunknown", None, None),
        ("Waste Toner Container, PN 008R13061;SNunknown", "008R13061", None),
        ("Black Cartridge HP CF217A", "CF217A", None),
        ("Black Ink Supply Unit T9441/T9451/T9461", "T9441/T9451/T9461", None),
        ("Canon Cartridge 719/719H", "719/719H", None),
        ("Toner Kit TK-5240K", "TK-5240K", None),
        ("Drum Cartridge (R1)", None, None),
        ("Toner (Black)", None, None),
        ("Black Toner", None, None),
        ("Imaging Unit", None, None),
        ("CF217A", None, None),  # a bare code is the whole name, not "<what> <part>"
        ("Tray 2", None, None),
        (None, None, None),
    ],
)
def test_part_number_and_serial_from_the_description(
    description: str | None, part: str | None, serial: str | None
) -> None:
    assert parse_description(description) == (part, serial)


def test_xerox_recording_names_part_and_serial(shared_recordings: Path) -> None:
    read = _read(shared_recordings / "librenms__xerox.snmprec")
    by_index = {s.index: s for s in read.supplies}
    assert (by_index[1].part_number, by_index[1].cartridge_serial) == (
        "006R01509",
        "48178080E0000481",
    )
    assert by_index[1].identity_sources == {
        "part_number": "description",
        "cartridge_serial": "description",
    }
    assert by_index[9].part_number is None
    assert by_index[9].identity_sources == {}
    assert by_index[10].cartridge_serial is None  # "SNunknown"
    assert by_index[1].installed_on is None
    assert by_index[1].pages_printed is None


def test_jetdirect_recording_part_numbers(shared_recordings: Path) -> None:
    read = _read(shared_recordings / "librenms__jetdirect_m130nw.snmprec")
    assert [(s.index, s.part_number) for s in read.supplies] == [(1, "CF217A"), (5, "CF219A")]


def test_recordings_without_part_numbers_get_none(shared_recordings: Path) -> None:
    for name in ("librenms__konica_c250i.snmprec", "librenms__dell-laser_s5830dn.snmprec"):
        read = _read(shared_recordings / name)
        assert read.supplies
        assert all(s.part_number is None and not s.identity_sources for s in read.supplies)


def test_hp_consumable_status(own_recordings: Path) -> None:
    read = _read(own_recordings / "hp_futuresmart_cartridges.snmprec")
    toner, fuser = read.supplies
    assert toner.part_number == "W9008MC"
    assert toner.cartridge_serial == "CNB6A12345"
    assert toner.installed_on == date(2026, 9, 14)
    assert toner.pages_printed == 6712
    assert toner.rated_yield is None
    assert toner.identity_sources == {
        "part_number": "description",
        "cartridge_serial": f"{HP_OID}.3.1.0",
        "installed_on": f"{HP_OID}.8.1.0",
        "pages_printed": f"{HP_OID}.12.1.0",
    }
    # The fuser's serial is HP's bare prefix: absent, and not a problem.
    assert fuser.cartridge_serial is None
    assert (fuser.installed_on, fuser.pages_printed) == (date(2025, 3, 1), 31877)
    assert not [p for p in read.problems if p.field.startswith("supplies")]


def test_hp_unreadable_date_is_a_problem_on_that_field(own_recordings: Path) -> None:
    varbinds = dict(
        load_varbinds((own_recordings / "hp_futuresmart_cartridges.snmprec").read_text())
    )
    oid = HP_FIRST_INSTALL + (1, 0)
    varbinds[oid] = b"soon"
    read = decode_read("127.0.0.1", AT, varbinds)
    assert read.supplies[0].installed_on is None
    assert "installed_on" not in read.supplies[0].identity_sources
    problem = next(p for p in read.problems if p.oid == format_oid(oid))
    assert (problem.field, problem.reason) == ("supplies.1.installed_on", "wrong_type")


def test_brother_maintenance(own_recordings: Path) -> None:
    read = _read(own_recordings / "brother_maintenance.snmprec")
    toner, drum = read.supplies
    # Level code 0 with max -2 said only "ok"; the maintenance data says 75 %.
    assert (toner.percent, toner.state, toner.quirk) == (75.0, "ok", "brother_maintenance_level")
    assert (drum.pages_printed, drum.rated_yield) == (986, 12000)
    assert drum.identity_sources["pages_printed"] == format_oid(BROTHER_MAINTENANCE)
    assert toner.pages_printed is None


def test_brother_records_skip_what_does_not_fit() -> None:
    blob = bytes.fromhex("110104000003da6f010400001d4cff")
    assert brother_records(blob) == {0x11: 986, 0x6F: 7500}
    assert brother_records(bytes.fromhex("1102")) == {}
    assert brother_records(7) == {}
    # A record with another length marker is not read as a value.
    assert brother_records(bytes.fromhex("110102000000016f010400000064")) == {0x6F: 100}


def test_vendor_plan_asks_for_cartridge_data() -> None:
    hp = vendor_plan(parse_oid("1.3.6.1.4.1.11.2.3.9.1"))
    assert set(cartridge_plan(11).columns) <= set(hp.columns)
    brother = vendor_plan(parse_oid("1.3.6.1.4.1.2435.2.3.9.1"))
    assert BROTHER_MAINTENANCE in {item.oid for item in brother.scalars}
    assert cartridge_plan(1602).columns == cartridge_plan(None).scalars == ()  # Canon: none


def test_brother_toner_gets_the_parts_its_model_takes(shared_recordings: Path) -> None:
    """The HL-5370DW names its toner "Black Toner Cartridge": the model takes a TN-620
    (3,000 pages) or a TN-650 (8,000), Brother's supplies list; the drum is left alone."""
    read = _read(shared_recordings / "librenms__brother_hl5370dw.snmprec")
    assert read.identity.model == "HL-5370DW series"
    parts = {s.index: (s.description, s.part_number) for s in read.supplies}
    assert parts[1] == ("Black Toner Cartridge", "TN-620/TN-650")
    assert parts[3] == ("Drum Unit", None)
    toner = read.supplies[0]
    assert toner.identity_sources["part_number"] == "model"
    assert rated_yield_of(toner.part_number) == 3000  # either fits: the smaller


def test_a_named_part_or_an_unknown_model_is_left_alone() -> None:
    assert toner_of_model("Brother", "HL-5370DW series") == "TN-620/TN-650"
    assert toner_of_model("brother", "hl-l2340dw") == "TN-630/TN-660"
    assert toner_of_model("Brother", "MFC-J5330DW") is None
    assert toner_of_model(None, "HL-5370DW") is None
    assert toner_of_model("HP", "HL-5370DW") is None
