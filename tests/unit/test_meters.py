"""Billing meters (read schema 1.1): PWG 5106.1 and vendor meters, decoded from recordings.

The recordings are the project's own (tests/data/recordings, see its README for
where each value comes from). Expected values are worked out by hand from the
MIB or the vendor source named in :mod:`mibs.vendor_counters`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mibs.counters import CounterResult, decode_counters
from mibs.plan import base_plan, vendor_plan
from mibs.snmprec import load_varbinds
from mibs.values import Oid, Value, parse_oid
from mibs.vendor_counters import VENDOR_RECORDS, VENDOR_SCALARS, VENDOR_TABLES

LIFE = "1.3.6.1.2.1.43.10.2.1.4.1.1"
IC = "1.3.6.1.4.1.2699.1.3.1"
CANON = "1.3.6.1.4.1.1602.1.11.1.3.1.4"
HP_EQUIV = "1.3.6.1.4.1.11.2.3.9.4.2.1.1.16.1.20"
BROTHER_COUNTERS = "1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.10.0"
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)


def decode_file(own: Path, name: str) -> CounterResult:
    varbinds = load_varbinds((own / name).read_text())
    sys_oid = varbinds[SYS_OBJECT_ID]
    assert isinstance(sys_oid, tuple)
    return decode_counters(varbinds, enterprise=sys_oid[6], hr_device_index=1)


def meters(result: CounterResult) -> dict[str, object]:
    return result.counters.model_dump(exclude_none=True)


def test_pwg_imaging_counter_meters(own_recordings: Path) -> None:
    result = decode_file(own_recordings, "pwg_meters.snmprec")
    # Keys: 1 systemTotals, 2 print, 3 copy, 4 faxIn, 5 scan. Rows read at
    # workTotals(3).lifetime(3); the powerOn(1) row of key 1 (40) is not a
    # lifetime meter. prtMarkerLifeCount 6100 is in sheets (unit 8), so it is
    # the sheets meter and the impressions meter comes from icImpressionTable.
    assert meters(result) == {
        "total": 6100,
        "sheets": 6100,
        "impressions": 10000,
        "mono": 7000,
        "color": 2900,
        "print": 6000,
        "print_mono": 4000,
        "print_color": 2000,
        "copy": 3700,
        "copy_mono": 2800,
        "copy_color": 900,
        "fax": 300,
        "fax_mono": 200,
        "scan": 3100,
        "scan_images": 5200,
        "duplex": 7800,
        "unit": "sheets",
    }
    assert result.sources["sheets"] == LIFE  # the RFC first; icSheet agrees
    assert result.sources["impressions"] == f"{IC}.8.1.1.4.1.3.3"
    assert result.sources["fax_mono"] == f"{IC}.8.1.1.5.4.3.3"
    assert result.sources["scan"] == f"{IC}.7.1.1.4.5.3.3"
    assert result.sources["scan_images"] == f"{IC}.7.1.1.4.1.3.3"
    # a total in sheets is not compared with PWG impressions: no disagreement
    assert result.problems == []


def test_pwg_sheets_when_the_marker_counts_impressions() -> None:
    varbinds: dict[Oid, Value] = {
        parse_oid(f"{LIFE}"): 900,
        parse_oid("1.3.6.1.2.1.43.10.2.1.3.1.1"): 7,
        parse_oid(f"{IC}.2.1.1.2.1"): 3,
        parse_oid(f"{IC}.10.1.1.4.1.3.3"): 610,
    }
    result = decode_counters(varbinds, enterprise=None, hr_device_index=1)
    assert (result.counters.impressions, result.counters.sheets) == (900, 610)
    assert result.sources["sheets"] == f"{IC}.10.1.1.4.1.3.3"


def test_canon_large_and_small_are_kept_apart(own_recordings: Path) -> None:
    result = decode_file(own_recordings, "canon_meters.snmprec")
    # Canon counter ids (PRISMAsync billing-counter table): 103 A3 5210 and
    # 104 A4 43000 (together = 101 Total 1 48210); 112 B/W A3 3010, 122 colour
    # A3 2200; 108 Total (Black 1) 30110 (= 112 + 113, not computed here).
    assert meters(result) == {
        "total": 48210,
        "impressions": 48210,
        "mono": 30110,
        "large": 5210,
        "small": 43000,
        "large_mono": 3010,
        "large_color": 2200,
        "print": 39000,
        "scan": 1234,
        "unit": "impressions",
    }
    assert result.sources["mono"] == f"{CANON}.108"
    assert result.sources["large"] == f"{CANON}.103"
    assert result.counters.color is None  # no Canon colour total: 122 + 123 is not summed
    assert result.problems == []


def test_canon_without_large_and_small_totals_adds_like_meters_only() -> None:
    varbinds: dict[Oid, Value] = {
        parse_oid(f"{CANON}.112"): 30,
        parse_oid(f"{CANON}.113"): 270,
        parse_oid(f"{CANON}.122"): 20,
        parse_oid(f"{CANON}.123"): 150,
    }
    result = decode_counters(varbinds, enterprise=1602, hr_device_index=1)
    assert (result.counters.large, result.counters.small) == (50, 420)
    assert result.sources["small"] == f"{CANON}.113+{CANON}.123"
    assert result.counters.mono is None  # black large + black small is never added
    # a mono Canon has no colour meters: no large sum, the black large meter stays
    mono_only = decode_counters(
        {parse_oid(f"{CANON}.112"): 30, parse_oid(f"{CANON}.113"): 270},
        enterprise=1602,
        hr_device_index=1,
    )
    assert (mono_only.counters.large, mono_only.counters.large_mono) == (None, 30)


def test_hp_futuresmart_a4_equivalent(own_recordings: Path) -> None:
    result = decode_file(own_recordings, "hp_futuresmart_meters.snmprec")
    assert meters(result) == {
        "total": 20500,
        "impressions": 20500,
        "mono": 11500,
        "color": 9000,
        "duplex": 4400,
        "a4_equivalent_mono": 12340,
        "a4_equivalent_color": 9870,
        "a4_equivalent": 22210,
        "unit": "impressions",
    }
    assert result.sources["a4_equivalent"] == f"{HP_EQUIV}.1.2.0+{HP_EQUIV}.2.2.0"
    assert result.problems == []


def test_brother_counter_records(own_recordings: Path) -> None:
    result = decode_file(own_recordings, "brother_counters.snmprec")
    # bieniu/brother DCP-L3550CDW fixture: 0x00 0x64b = 1611 pages, 0x01 0x2c5 =
    # 709 black-and-white, 0x02 0x386 = 902 colour (709 + 902 = 1611). No
    # prtMarkerLifeCount in this device's answer: Brother's page count is the total.
    assert meters(result) == {"total": 1611, "mono": 709, "color": 902}
    assert result.sources == dict.fromkeys(("total", "mono", "color"), BROTHER_COUNTERS)
    assert result.problems == []


def test_brother_total_disagreeing_with_the_rfc_is_flagged() -> None:
    # bieniu/brother HL-L2340DW fixture: prtMarkerLifeCount 1279, Brother page count 986.
    varbinds: dict[Oid, Value] = {
        parse_oid(LIFE): 1279,
        parse_oid(BROTHER_COUNTERS): bytes.fromhex("000104000003daff"),
    }
    result = decode_counters(varbinds, enterprise=2435, hr_device_index=1)
    assert result.counters.total == 1279
    assert [(p.field, p.oid, p.reason) for p in result.problems] == [
        ("counters.total", BROTHER_COUNTERS, "source_disagreement")
    ]


@pytest.mark.parametrize("raw", [b"", b"\x00\x01", 42, (1, 3, 6)])
def test_brother_counter_garbage_is_a_problem(raw: Value) -> None:
    result = decode_counters({parse_oid(BROTHER_COUNTERS): raw}, enterprise=2435, hr_device_index=1)
    assert result.counters.mono is None
    assert ("counters", BROTHER_COUNTERS, "wrong_type") in [
        (p.field, p.oid, p.reason) for p in result.problems
    ]


def test_every_vendor_meter_is_in_the_poll_plan() -> None:
    """A meter the decoder knows but the plan never asks for is never read."""
    standard = {item.oid for item in base_plan().columns}
    assert parse_oid(f"{IC}.10.1.1.4") in standard  # icSheetTotalSheets
    for enterprise in {*VENDOR_SCALARS, *VENDOR_TABLES, *VENDOR_RECORDS}:
        plan = vendor_plan((1, 3, 6, 1, 4, 1, enterprise, 1))
        asked = {item.oid for item in plan.scalars} | {item.oid for item in plan.columns}
        wanted = {oid for entry in VENDOR_SCALARS.get(enterprise, ()) for oid in entry.oids}
        wanted |= {records.oid for records in VENDOR_RECORDS.get(enterprise, ())}
        wanted |= {
            oid
            for table in VENDOR_TABLES.get(enterprise, ())
            for oid in (table.type_column, table.value_column)
        }
        assert wanted <= asked, enterprise
