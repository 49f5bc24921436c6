"""Cartridge identity end to end: ``fleet-agent scan`` against snmpsim serving the vendor tables.

Proves the poll plan asks each vendor's cartridge data (HP consumable-status
columns, Brother's maintenance and next-care scalars, Lexmark's
currentSuppliesTable) and that it reaches the
read. Expected values: see tests/unit/test_cartridges.py and
tests/data/recordings/README.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agent.schema import read_schema
from tests.support.snmpsim_fleet import Fleet, run_scan, start_fleet

pytestmark = pytest.mark.integration

RECORDINGS = (
    "hp_futuresmart_cartridges.snmprec",
    "brother_maintenance.snmprec",
    "lexmark_cartridges.snmprec",
)
HP_OID = "1.3.6.1.4.1.11.2.3.9.4.2.1.4.1.10.1.1"
LEXMARK_OID = "1.3.6.1.4.1.641.6.4.4.1.1"


@pytest.fixture(scope="module")
def cartridge_reads(
    own_recordings: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Fleet, dict[str, dict[str, Any]]]:
    fleet = start_fleet(
        [own_recordings / name for name in RECORDINGS],
        tmp_path_factory.mktemp("cartridges"),
        first_host=171,
    )
    try:
        run = run_scan(
            f"127.0.1.171-{170 + len(RECORDINGS)}",
            "--snmp-port",
            str(fleet.port),
            "--format",
            "json",
            "--timeout",
            "1",
            "--retries",
            "1",
        )
    finally:
        fleet.stop()
    assert run.returncode == 0, run.stderr
    return fleet, {read["address"]: read for read in run.reads()}


def test_reads_validate_against_schema_1_1(cartridge_reads: Any) -> None:
    _, reads = cartridge_reads
    validator = jsonschema.Draft202012Validator(read_schema())
    assert len(reads) == len(RECORDINGS)
    for read in reads.values():
        assert read["schema_version"] == "1.1"
        validator.validate(read)


def test_hp_cartridge_identity_over_snmp(cartridge_reads: Any) -> None:
    fleet, reads = cartridge_reads
    toner, fuser = reads[fleet.address_of("hp_futuresmart_cartridges.snmprec")]["supplies"]
    assert toner["part_number"] == "W9008MC"
    assert toner["cartridge_serial"] == "CNB6A12345"
    assert toner["installed_on"] == "2026-09-14"
    assert toner["pages_printed"] == 6712
    assert toner["rated_yield"] is None
    assert toner["identity_sources"]["pages_printed"] == f"{HP_OID}.12.1.0"
    assert (fuser["part_number"], fuser["cartridge_serial"]) == ("L0H25A", None)


def test_brother_maintenance_over_snmp(cartridge_reads: Any) -> None:
    fleet, reads = cartridge_reads
    toner, drum = reads[fleet.address_of("brother_maintenance.snmprec")]["supplies"]
    assert (toner["percent"], toner["quirk"]) == (75.0, "brother_maintenance_level")
    assert (drum["pages_printed"], drum["rated_yield"]) == (986, 12000)


def test_lexmark_current_supplies_over_snmp(cartridge_reads: Any) -> None:
    """LEXMARK-MPS-MIB rows synthesised in lexmark_cartridges.snmprec (see its README entry)."""
    fleet, reads = cartridge_reads
    supplies = {
        s["index"]: s for s in reads[fleet.address_of("lexmark_cartridges.snmprec")]["supplies"]
    }
    black = supplies[1]
    assert (black["part_number"], black["cartridge_serial"]) == ("84C2HK0", "CAS250912345678")
    assert black["installed_on"] == "2026-08-03"
    assert black["identity_sources"] == {
        "part_number": f"{LEXMARK_OID}.7.1.1",
        "cartridge_serial": f"{LEXMARK_OID}.6.1.1",
        "installed_on": f"{LEXMARK_OID}.10.1.1",
    }
    assert (supplies[5]["part_number"], supplies[5]["cartridge_serial"]) == ("74C0ZV0", None)
    assert supplies[3]["part_number"] is None  # no Lexmark row names the magenta cartridge
