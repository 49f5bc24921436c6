"""Billing meters end to end: ``fleet-agent scan`` against snmpsim serving each vendor's meters.

Proves that the one poll plan asks for every meter table and that each reaches
the read with its source OID:

* hand-written recordings (tests/data/recordings: PWG 5106.1, Canon, HP
  FutureSmart, Brother's counter records) with values worked out by hand in
  tests/unit/test_meters.py;
* for every other vendor meter table in :mod:`mibs.vendor_counters`, a
  recording generated from that table (a distinct value per OID): every meter
  the table names must come back, from one of the OIDs the table lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agent.schema import read_schema
from mibs.values import format_oid
from mibs.vendor_counters import VENDOR_SCALARS, VENDOR_TABLES
from tests.support.snmpsim_fleet import scan_fleet_json, start_fleet

pytestmark = pytest.mark.integration

OWN = ("pwg_meters", "canon_meters", "hp_futuresmart_meters", "brother_counters")
GENERATED = tuple(sorted({*VENDOR_SCALARS, *VENDOR_TABLES} - {1602, 11, 2435}))
FIRST_HOST = 181

EXPECTED: dict[str, dict[str, int]] = {
    "pwg_meters": {
        "total": 6100,
        "sheets": 6100,
        "impressions": 10000,
        "fax_mono": 200,
        "scan_images": 5200,
        "duplex": 7800,
    },
    "canon_meters": {
        "large": 5210,
        "small": 43000,
        "large_mono": 3010,
        "large_color": 2200,
        "mono": 30110,
    },
    "hp_futuresmart_meters": {
        "a4_equivalent_mono": 12340,
        "a4_equivalent_color": 9870,
        "a4_equivalent": 22210,
    },
    "brother_counters": {"total": 1611, "mono": 709, "color": 902},
}


def _generated(enterprise: int) -> str:
    """A printer of ``enterprise`` answering every meter OID of its table, each value distinct."""
    lines = [
        "1.3.6.1.2.1.1.1.0|4|generated meter device",
        f"1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.{enterprise}.1",
        "1.3.6.1.2.1.25.3.2.1.2.1|6|1.3.6.1.2.1.25.3.1.5",
        f"1.3.6.1.2.1.43.5.1.1.17.1|4|GEN{enterprise}",
    ]
    value = 1000
    oids = sorted({oid for entry in VENDOR_SCALARS.get(enterprise, ()) for oid in entry.oids})
    for oid in oids:
        value += 7
        lines.append(f"{format_oid(oid)}|65|{value}")
    for table in VENDOR_TABLES.get(enterprise, ()):
        for row, kind in enumerate(sorted(table.types), start=1):
            value += 7
            lines.append(f"{format_oid(table.type_column)}.{row}|2|{kind}")
            lines.append(f"{format_oid(table.value_column)}.{row}|65|{value}")
    lines.sort(key=lambda line: tuple(int(arc) for arc in line.split("|")[0].split(".")))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def meter_reads(
    own_recordings: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    work = tmp_path_factory.mktemp("meters")
    recordings = [own_recordings / f"{name}.snmprec" for name in OWN]
    for enterprise in GENERATED:
        path = work / f"vendor_{enterprise}.snmprec"
        path.write_text(_generated(enterprise))
        recordings.append(path)
    # a dozen simulators start at once: give a loaded 2-core machine time to start them all
    fleet = start_fleet(recordings, work / "fleet", first_host=FIRST_HOST, ready_timeout=90)
    try:
        run = scan_fleet_json(fleet, timeout=3, retries=2)  # a busy simulator is not silent
    finally:
        fleet.stop()
    assert run.returncode == 0, run.stderr
    names = [*OWN, *(f"vendor_{enterprise}" for enterprise in GENERATED)]
    by_address = {read["address"]: read for read in run.reads()}
    assert len(by_address) == len(names), run.stderr
    return {name: by_address[f"127.0.1.{FIRST_HOST + n}"] for n, name in enumerate(names)}


def test_reads_validate_against_the_schema(meter_reads: dict[str, dict[str, Any]]) -> None:
    validator = jsonschema.Draft202012Validator(read_schema())
    for read in meter_reads.values():
        assert read["schema_version"] == "1.1"
        validator.validate(read)


@pytest.mark.parametrize("name", OWN)
def test_hand_written_meters_reach_the_read(
    meter_reads: dict[str, dict[str, Any]], name: str
) -> None:
    read = meter_reads[name]
    for meter, value in EXPECTED[name].items():
        assert read["counters"][meter] == value, meter
        assert meter in read["counter_sources"], meter
    if name == "canon_meters":
        assert read["counters"]["color"] is None  # colour large + small is not summed


@pytest.mark.parametrize("enterprise", GENERATED)
def test_every_vendor_meter_is_requested_and_decoded(
    meter_reads: dict[str, dict[str, Any]], enterprise: int
) -> None:
    read = meter_reads[f"vendor_{enterprise}"]
    offered: dict[str, set[str]] = {}
    for entry in VENDOR_SCALARS.get(enterprise, ()):
        offered.setdefault(entry.counter, set()).update(format_oid(oid) for oid in entry.oids)
    for table in VENDOR_TABLES.get(enterprise, ()):
        for name in table.types.values():
            offered.setdefault(name, set()).add(format_oid(table.value_column))
    for meter, oids in offered.items():
        assert read["counters"][meter] is not None, f"{enterprise} {meter}"
        source = read["counter_sources"][meter]
        assert any(part.startswith(tuple(oids)) for part in source.split("+")), (meter, source)
