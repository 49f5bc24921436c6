"""Fleet rules across one site: duplicates, model groups, onboarding method, start counts."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from agent.eligibility.fleet import evaluate_fleet, group_devices
from agent.eligibility.models import FleetReport
from agent.eligibility.report import (
    CSV_COLUMNS,
    report_csv,
    report_json,
    summary_lines,
    write_report,
)
from mibs.models import PrinterRead
from tests.unit.test_eligibility_rules import WHEN, make_policy, make_read

HOUR = timedelta(hours=1)


def fleet(reads: list[PrinterRead], **policy: Any) -> FleetReport:
    return evaluate_fleet(reads, make_policy(**policy), agent_version="0.1.0")


def by_id(report: FleetReport) -> dict[str, Any]:
    return {row.device_id: row for row in report.devices}


def test_reads_of_one_device_are_one_row_latest_verdict_earliest_count() -> None:
    old = make_read(total=90_000, address="192.0.2.10", collected_at=WHEN)
    new = make_read(total=100_001, address="192.0.2.99", collected_at=WHEN + timedelta(days=30))
    report = fleet([new, old])  # input order does not matter
    (row,) = report.devices
    assert row.device_id == "sn:hp:CNB1234567"
    assert row.start_page_count == 90_000
    assert row.address == "192.0.2.99"  # the latest read (the device moved)
    assert row.verdict.codes == ("lifetime_count_over_max",)


def test_start_count_skips_reads_without_a_count() -> None:
    first = make_read(total=None, collected_at=WHEN)
    second = make_read(total=5_000, collected_at=WHEN + timedelta(hours=1))
    assert fleet([first, second]).devices[0].start_page_count == 5_000


def test_devices_without_any_stable_id_are_keyed_by_address() -> None:
    read = make_read(serial=None, mac=None, address="192.0.2.7")
    assert [d.device_id for d in group_devices([read])] == ["ip:192.0.2.7"]


def test_same_serial_on_two_devices_flags_both() -> None:
    one = make_read(address="192.0.2.1", mac="00:11:22:33:44:01")
    two = make_read(address="192.0.2.2", mac="00:11:22:33:44:02", collected_at=WHEN + HOUR)
    unknown_mac = make_read(address="192.0.2.1", collected_at=WHEN + 2 * HOUR)
    report = fleet([two, unknown_mac, one])
    rows = by_id(report)
    # The inventory's convention: the first seen keeps the id, the other gets "~<mac>".
    first = "sn:hp:CNB1234567"
    second = "sn:hp:CNB1234567~001122334402"
    assert set(rows) == {first, second}
    assert rows[first].address == "192.0.2.1"
    assert rows[first].verdict.codes == ("serial_duplicate",)
    assert rows[first].verdict.reasons[0].message == (
        f"Serial CNB1234567 is also reported by {second}; billing needs unique serials."
    )
    assert report.summary.duplicate_serials == {"CNB1234567": (first, second)}
    assert report.summary.reason_counts == {"serial_duplicate": 2}


def test_same_serial_across_vendors_is_a_duplicate_too() -> None:
    hp = make_read(address="192.0.2.1")
    brother = make_read(
        address="192.0.2.2", vendor="Brother", model="HL-5370DW", serial="cnb1234567"
    )
    rows = by_id(fleet([hp, brother]))
    assert rows["sn:hp:CNB1234567"].verdict.codes == ("serial_duplicate",)
    assert rows["sn:brother:cnb1234567"].verdict.codes == ("serial_duplicate",)


def test_same_device_at_two_addresses_is_not_a_duplicate() -> None:
    mac = "00:11:22:33:44:01"
    report = fleet(
        [make_read(address="192.0.2.1", mac=mac), make_read(address="192.0.2.2", mac=mac)]
    )
    assert len(report.devices) == 1
    assert report.devices[0].verdict.eligible


def _printer(n: int, **extra: Any) -> PrinterRead:
    extra.setdefault("serial", f"SN{n:04d}")
    return make_read(address=f"192.0.2.{n}", **extra)


def test_model_group_left_incomplete_flags_the_ones_left_out() -> None:
    reads = [_printer(1), _printer(2), _printer(3, total=200_000)]
    report = fleet(reads)
    rows = by_id(report)
    assert rows["sn:hp:SN0003"].flags[0].code == "model_group_incomplete"
    assert rows["sn:hp:SN0003"].flags[0].message == (
        "2 of 3 HP LaserJet M130nw at 'Berlin/Floor 2' are entitled; devices of one model at "
        "one location must be entitled together, and this one is left out."
    )
    assert rows["sn:hp:SN0001"].flags == ()
    (gap,) = report.summary.model_group_gaps
    assert gap.entitled == ("sn:hp:SN0001", "sn:hp:SN0002")
    assert gap.left_out == ("sn:hp:SN0003",)


def test_model_groups_are_per_location_and_managed_counts_as_entitled() -> None:
    reads = [
        _printer(1),
        _printer(2, location="Berlin/Floor 3", total=200_000),  # alone at its location
        _printer(3, location="berlin/floor 2 ", total=200_000),
    ]
    report = fleet(reads, managed=["SN0003"])
    assert report.summary.model_group_gaps == ()
    assert all(row.flags == () for row in report.devices)


def test_group_where_nobody_is_entitled_is_not_a_gap() -> None:
    reads = [_printer(1, total=200_000), _printer(2, total=300_000)]
    assert fleet(reads).summary.model_group_gaps == ()


def test_onboarding_method_boundary_at_ten_eligible_devices() -> None:
    ten = fleet([_printer(n) for n in range(1, 11)])
    assert (ten.summary.eligible, ten.summary.onboarding_method) == (10, "self_entitlement")
    eleven = fleet([_printer(n) for n in range(1, 12)])
    assert (eleven.summary.eligible, eleven.summary.onboarding_method) == (11, "technician_visit")
    custom = fleet([_printer(n) for n in range(1, 4)], technician_visit_threshold=2)
    assert custom.summary.onboarding_method == "technician_visit"


def test_summary_counts() -> None:
    reads = [
        _printer(1),
        _printer(2, model="LaserJet 1020", location="Lobby"),
        _printer(3, location="Lab"),
        _printer(4, location="Store", is_printer=False, vendor=None, model=None),
    ]
    summary = fleet(reads, managed=["SN0003"], max_lifetime_pages=None).summary
    assert (summary.devices, summary.eligible, summary.not_eligible) == (4, 1, 3)
    assert summary.already_managed == 1
    assert summary.reason_counts == {
        "already_managed": 1,
        "model_not_supported": 2,
        "not_a_printer": 1,
    }
    assert summary.policy_version == "2026.11-1"


def _mixed() -> FleetReport:
    reads = [_printer(1), _printer(2, total=250_000), _printer(3, serial=None, location="Lab")]
    return fleet(reads, site="Acme Berlin")


def test_json_report_is_the_fleet_report_model() -> None:
    document = json.loads(report_json(_mixed()))
    assert list(document) == ["devices", "summary"]
    first = document["devices"][0]
    assert first["verdict"] == {"eligible": True, "reasons": [], "policy_version": "2026.11-1"}
    assert first["start_page_count"] == 12_000
    assert document["summary"]["site"] == "Acme Berlin"
    assert document["summary"]["onboarding_method"] == "self_entitlement"
    assert FleetReport.model_validate(document) == _mixed()


def test_csv_report_is_one_table_and_the_summary_is_apart() -> None:
    rows = list(csv.reader(io.StringIO(report_csv(_mixed()))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1][:8] == [
        "sn:hp:SN0001", "192.0.2.1", "SN0001", "HP", "LaserJet M130nw", "Berlin/Floor 2",
        "12000", "yes",
    ]  # fmt: skip
    assert rows[2][7:9] == ["no", "lifetime_count_over_max"]
    assert "model_group_incomplete" not in rows[2][10]
    assert rows[2][10].startswith("1 of 2 HP LaserJet M130nw at 'Berlin/Floor 2' are entitled")
    assert rows[3][0] == "ip:192.0.2.3"
    assert rows[3][8] == "serial_missing"
    assert len(rows) == 4, "one header and one row per device, nothing under them"
    assert {len(row) for row in rows} == {len(CSV_COLUMNS)}
    summary = dict(line.split(": ", 1) for line in summary_lines(_mixed().summary))
    assert summary["devices"] == "3"
    assert summary["eligible"] == "1"
    assert summary["onboarding method"].startswith("self-entitlement packets (1 eligible;")
    assert summary["reason serial_missing"] == "1"


def test_devices_come_in_address_order_in_every_format() -> None:
    report = fleet([_printer(10), _printer(9, total=250_000), _printer(2)])
    addresses = [row.address for row in report.devices]
    assert addresses == ["192.0.2.2", "192.0.2.9", "192.0.2.10"]  # numeric, not text order
    csv_rows = list(csv.reader(io.StringIO(report_csv(report))))[1:]
    assert [row[1] for row in csv_rows] == addresses
    assert [row["address"] for row in json.loads(report_json(report))["devices"]] == addresses


def test_table_report_shows_verdicts_reasons_and_summary() -> None:
    out = io.StringIO()
    write_report(out, _mixed(), "table")
    text = out.getvalue()
    assert "sn:hp:SN0001" in text
    assert "not eligible" in text
    assert "Lifetime page count 250,000 is over the contract's maximum of 100,000." in text
    assert "Site summary" in text
    assert "self-entitlement packets" in text


def test_csv_neutralises_formulas_from_device_strings() -> None:
    hostile = _printer(1, location='=HYPERLINK("http://evil","x")', model="@SUM(A1)")
    rows = list(csv.reader(io.StringIO(report_csv(fleet([hostile])))))
    assert rows[1][4] == "'@SUM(A1)"
    assert rows[1][5] == '\'=HYPERLINK("http://evil","x")'
    assert rows[1][2] == "SN0001"  # ordinary text untouched


def test_table_shows_device_text_literally_not_as_markup() -> None:
    out = io.StringIO()
    write_report(out, fleet([_printer(1, location="[bold]Lobby[/bold] [link=x]")]), "table")
    assert "[bold]Lobby[/bold] [link=x]" in out.getvalue()
