"""The billing export: usage per contract meter type, boundaries, refusals, the command."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.eligibility.policy import parse_policy
from backend.billing import BillingExport, BillingRead, bill, parse_period
from backend.store import StoredMessage, open_store
from mibs.metering import BillingPolicy
from mibs.models import Counters, Identity, ManualEntry, PrinterRead

NOV = parse_period("2026-11")
POLICY = """\
version: "2026.11"
models: [{vendor: HP, patterns: ["*"]}]
managed: [CNB0000001, CNB0000002, sn:hp:CNB0000003]
billing:
  meter_types:
    mono: mono
    colour: color
  pages_per_minute: 60
"""


def at(day: int, hour: int = 0, month: int = 11) -> datetime:
    if month == 12 and day == 0:
        return datetime(2026, 11, 30, hour, tzinfo=UTC)
    return datetime(2026, month, day, hour, tzinfo=UTC)


def billing_policy(text: str = POLICY) -> BillingPolicy:
    policy = parse_policy(text)
    assert policy.billing is not None
    return policy.billing


def read(
    when: datetime,
    *,
    serial: str | None = "CNB0000001",
    source: str = "device",
    device_id: str | None = None,
    **meters: int | None,
) -> BillingRead:
    return BillingRead(
        device_id=device_id or f"sn:hp:{serial}",
        collected_at=when,
        serial=serial,
        vendor="HP",
        model="Color LaserJet M477fdw",
        location="Berlin/2",
        source=source,
        meters=meters,
    )


def run_bill(reads: list[BillingRead], contract: list[str] | None = None) -> BillingExport:
    reads = sorted(reads, key=lambda r: (r.device_id, r.collected_at))
    return bill(reads, period=NOV, billing=billing_policy(), contract=contract)


def test_usage_is_exact_with_linear_estimates_at_both_boundaries() -> None:
    export = run_bill(
        [
            read(at(31, 12, month=10), mono=1000, color=100),
            read(at(15), mono=2000, color=100),
            read(at(1, 12, month=12), mono=3000, color=160),
        ]
    )
    assert export.rejects == ()
    mono = next(line for line in export.lines if line.meter_type == "mono")
    # 12 h of 348 h at the start: 1000 + 1000 * 12/348 = 1034.48 -> 1034
    assert (mono.start.value, mono.start.estimated) == (1034, True)
    assert mono.start.method.startswith("linear between 2026-10-31T12:00:00+00:00 (1000)")
    # 384 h of 396 h at the end: 2000 + 1000 * 384/396 = 2969.7 -> 2970
    assert (mono.end.value, mono.end.estimated, mono.end.at) == (2970, True, NOV.end)
    assert mono.usage == 2970 - 1034
    colour = next(line for line in export.lines if line.meter_type == "colour")
    # 100 + 60 * 384/396 = 158.18 -> 158 at the end; no change at the start.
    assert (colour.start.value, colour.end.value, colour.usage) == (100, 158, 58)


def test_reads_exactly_at_the_boundaries_are_not_estimated() -> None:
    export = run_bill(
        [
            read(NOV.start, mono=10, color=1),
            read(at(10), mono=50, color=2),
            read(NOV.end, mono=90, color=3),
        ]
    )
    mono = next(line for line in export.lines if line.meter_type == "mono")
    assert (mono.start.estimated, mono.start.method, mono.end.estimated) == (False, "read", False)
    assert mono.usage == 80


def test_a_device_first_read_inside_the_period_starts_there() -> None:
    export = run_bill([read(at(10), mono=50, color=2), read(at(20), mono=90, color=3)])
    mono = next(line for line in export.lines if line.meter_type == "mono")
    assert (mono.start.method, mono.end.method, mono.usage) == ("first_read", "last_read", 40)


def test_duplicate_serial_refuses_both_devices() -> None:
    export = run_bill(
        [
            read(at(2), device_id="sn:hp:CNB0000001", mono=1, color=1),
            read(at(20), device_id="sn:hp:CNB0000001", mono=5, color=1),
            read(at(2), device_id="sn:hp:CNB0000001~aabb", mono=7, color=1),
            read(at(20), device_id="sn:hp:CNB0000001~aabb", mono=9, color=1),
        ]
    )
    assert export.lines == ()
    assert sorted((r.device_id, r.reason) for r in export.rejects) == [
        ("sn:hp:CNB0000001", "serial_duplicate"),
        ("sn:hp:CNB0000001~aabb", "serial_duplicate"),
    ]


def test_missing_serial_is_refused() -> None:
    export = run_bill(
        [
            read(at(2), serial=None, device_id="mac:00:11:22:33:44:55", mono=1, color=1),
            read(at(9), serial=None, device_id="mac:00:11:22:33:44:55", mono=3, color=1),
        ]
    )
    assert [(r.device_id, r.reason) for r in export.rejects] == [
        ("mac:00:11:22:33:44:55", "serial_missing")
    ]


@pytest.mark.parametrize("serial", ["0000000000", "N/A", "SN 1234", "ab", "unknown", "-X1234"])
def test_invalid_serial_is_refused(serial: str) -> None:
    export = run_bill(
        [read(at(2), serial=serial, mono=1, color=1), read(at(9), serial=serial, mono=3, color=1)]
    )
    assert [r.reason for r in export.rejects] == ["serial_invalid"]
    assert export.lines == ()


def test_meter_going_backwards_inside_the_period_refuses_that_meter_type() -> None:
    export = run_bill(
        [
            read(at(2), mono=500, color=90),
            read(at(10), mono=600, color=3),
            read(at(20), mono=700, color=9),
        ]
    )
    assert [(r.meter_type, r.reason) for r in export.rejects] == [("colour", "meter_backwards")]
    assert "went from 90 back to 3" in export.rejects[0].detail
    assert [(line.meter_type, line.usage) for line in export.lines] == [("mono", 200)]


def test_a_device_with_only_manual_reads_is_billed_and_marked_manual() -> None:
    export = run_bill(
        [
            read(at(1, 9), source="manual", mono=100, color=10),
            read(at(30, 9), source="manual", mono=400, color=40),
        ]
    )
    assert export.rejects == ()
    assert {(line.start.source, line.end.source) for line in export.lines} == {("manual", "manual")}
    assert sorted(line.usage for line in export.lines) == [30, 300]


def test_a_device_with_a_single_manual_read_is_refused() -> None:
    export = run_bill([read(at(30, 9), source="manual", mono=400, color=40)])
    assert {(r.reason, r.meter_type) for r in export.rejects} == {
        ("single_read", "mono"),
        ("single_read", "colour"),
    }


def test_a_device_under_contract_without_reads_is_refused() -> None:
    export = run_bill(
        [read(at(2), mono=1, color=1), read(at(9), mono=3, color=1)],
        contract=["CNB0000001", "CNB0000002"],
    )
    assert [(r.device_id, r.reason) for r in export.rejects] == [("CNB0000002", "no_reads")]
    assert len(export.lines) == 2


def test_devices_not_under_contract_are_left_out() -> None:
    export = run_bill(
        [
            read(at(2), serial="CNB0000009", mono=1, color=1),
            read(at(9), serial="CNB0000009", mono=3, color=1),
        ],
        contract=["sn:hp:CNB0000009x"],
    )
    assert export.lines == ()
    assert [r.reason for r in export.rejects] == ["no_reads"]


def test_an_implausible_jump_is_billed_and_listed() -> None:
    # 60 pages a minute: one hour allows 3,600 pages.
    export = run_bill([read(at(2, 8), mono=0, color=0), read(at(2, 9), mono=5000, color=0)])
    mono = next(line for line in export.lines if line.meter_type == "mono")
    assert (mono.usage, mono.anomalies) == (5000, ("implausible_jump:mono",))
    assert export.rejects == ()


def test_a_serial_change_behind_one_device_id_is_refused() -> None:
    export = run_bill(
        [
            read(at(2), serial="CNB0000001", device_id="mac:00:11", mono=1, color=1),
            read(at(9), serial="CNB0000002", device_id="mac:00:11", mono=3, color=1),
        ]
    )
    assert [r.reason for r in export.rejects] == ["serial_changed"]


def test_a_model_override_changes_the_expression() -> None:
    policy = billing_policy(
        POLICY + "  models:\n    - vendor: HP\n      patterns: ['Color LaserJet*']\n"
        "      meter_types: {colour: total - mono}\n"
    )
    reads = [read(at(2), mono=10, total=15), read(at(9), mono=20, total=45)]
    export = bill(reads, period=NOV, billing=policy, contract=None)
    colour = next(line for line in export.lines if line.meter_type == "colour")
    assert (colour.expression, colour.usage) == ("total - mono", (45 - 20) - (15 - 10))


def test_a_meter_the_device_never_reports_is_refused() -> None:
    export = run_bill([read(at(2), mono=1), read(at(9), mono=3)])
    assert [(r.meter_type, r.reason) for r in export.rejects] == [
        ("colour", "billing_meter_missing")
    ]


# --- the command, from a file of reads and from the store ------------------------------


def printer_read(when: datetime, serial: str, mono: int, color: int, **extra: Any) -> PrinterRead:
    return PrinterRead(
        address="127.0.0.9",
        collected_at=when,
        identity=Identity(
            vendor="HP",
            model="Color LaserJet M477fdw",
            serial=serial,
            is_printer=True,
            location="=cmd|'/c calc'!A1",
        ),
        counters=Counters(total=mono + color, mono=mono, color=color),
        **extra,
    )


FLEET = [
    printer_read(at(31, 12, month=10), "CNB0000001", 1000, 100),
    printer_read(at(15), "CNB0000001", 2000, 150),
    printer_read(at(1, 12, month=12), "CNB0000001", 3000, 200),
    printer_read(at(3), "CNB0000002", 10, 1),
    printer_read(at(28), "CNB0000002", 110, 11),
    printer_read(
        at(2),
        "CNB0000003",
        50,
        5,
        source="manual",
        manual=ManualEntry(entered_by="Tom", reason="no SNMP", entered_at=at(2)),
    ),
    printer_read(
        at(29),
        "CNB0000003",
        80,
        9,
        source="manual",
        manual=ManualEntry(entered_by="Tom", reason="no SNMP", entered_at=at(29)),
    ),
]


def write_policy(tmp_path: Path, text: str = POLICY) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["billing", "--period", "2026-11", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def expected_usage() -> dict[tuple[str, str], int]:
    return {
        ("CNB0000001", "mono"): 2970 - 1034,
        ("CNB0000001", "colour"): 198 - 102,
        ("CNB0000002", "mono"): 100,
        ("CNB0000002", "colour"): 10,
        ("CNB0000003", "mono"): 30,
        ("CNB0000003", "colour"): 4,
    }


def usage_of(text: str) -> dict[tuple[str, str], int]:
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert all(len(row) == len(header) for row in rows)  # rectangular
    data = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    return {(row["serial"], row["meter_type"]): int(row["usage"]) for row in data}


def test_command_from_a_file_of_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reads = tmp_path / "reads.jsonl"
    reads.write_text("".join(r.model_dump_json() + "\n" for r in FLEET))
    code, out, err = run_cli(
        ["--policy", str(write_policy(tmp_path)), "--reads", str(reads)], capsys
    )
    assert (code, err) == (0, "")
    assert usage_of(out) == expected_usage()
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["location"].startswith("'=")  # a spreadsheet shows it, does not run it
    manual = [row for row in rows if row["serial"] == "CNB0000003"]
    assert {row["start_source"] for row in manual} == {"manual"}


def test_command_from_the_store_gives_the_same_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(dsn)
    with store.batch() as batch:
        for number, item in enumerate(FLEET, start=1):
            body = {**item.model_dump(mode="json"), "device_id": f"sn:hp:{item.identity.serial}"}
            batch.insert_message(
                StoredMessage(
                    message_id=f"m{number}",
                    agent_id="agent-1",
                    sequence=number,
                    kind="read",
                    created_at=item.collected_at,
                    received_at=item.collected_at,
                    body=json.dumps(body),
                    token="t",
                    hash=f"h{number}",
                    prev_hash=None,
                )
            )
    store.close()
    policy = str(write_policy(tmp_path))
    code, out, err = run_cli(["--policy", policy, "--store", dsn], capsys)
    assert (code, err) == (0, "")
    assert usage_of(out) == expected_usage()
    code, out, _ = run_cli(["--policy", policy, "--store", dsn, "--format", "json"], capsys)
    document = json.loads(out)
    assert document["period"] == "2026-11"
    assert {
        (line["serial"], line["meter_type"]): line["usage"] for line in document["lines"]
    } == expected_usage()


def test_store_indexes_reads_it_held_before_billing_existed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = open_store(f"sqlite:///{path}")
    with store.batch() as batch:
        body = {**FLEET[3].model_dump(mode="json"), "device_id": "sn:hp:CNB0000002"}
        batch.insert_message(
            StoredMessage(
                message_id="m1",
                agent_id="a",
                sequence=1,
                kind="read",
                created_at=at(3),
                received_at=at(3),
                body=json.dumps(body),
                token="t",
                hash="h",
                prev_hash=None,
            )
        )
    store.execute("DROP TABLE meter_reads")
    store.close()
    reopened = open_store(f"sqlite:///{path}")
    (row,) = list(reopened.billing_reads(at(1), at(30)))
    assert (row.device_id, row.meters["mono"]) == ("sn:hp:CNB0000002", 10)
    reopened.close()


def test_command_refuses_and_names_every_bad_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = [
        *FLEET,
        printer_read(at(3), "CNB0000002", 10, 1).model_copy(update={"address": "127.0.0.10"}),
    ]
    # A second device (another MAC) reporting CNB0000002, and CNB0000001's colour going back.
    lines = [r.model_dump(mode="json") for r in bad]
    lines[-1]["device_id"] = "sn:hp:CNB0000002~0a0b"
    extra = printer_read(at(20), "CNB0000002", 20, 2).model_dump(mode="json")
    extra["device_id"] = "sn:hp:CNB0000002~0a0b"
    lines.append(extra)
    lines[1]["counters"]["color"] = 50
    reads = tmp_path / "reads.jsonl"
    reads.write_text("".join(json.dumps(line) + "\n" for line in lines))
    output = tmp_path / "nov.csv"
    args = ["--policy", str(write_policy(tmp_path)), "--reads", str(reads), "--output", str(output)]
    code, out, err = run_cli(args, capsys)
    assert out == ""
    assert code == 1
    assert not output.exists()
    assert "3 rows cannot be billed; nothing written" in err
    assert "device sn:hp:CNB0000001 (serial CNB0000001), meter type colour: meter_backwards" in err
    assert "device sn:hp:CNB0000002 (serial CNB0000002): serial_duplicate" in err
    assert "device sn:hp:CNB0000002~0a0b (serial CNB0000002): serial_duplicate" in err
    rejects = tmp_path / "rejects.csv"
    code, _out, err = run_cli([*args, "--rejects", str(rejects)], capsys)
    assert code == 0
    written = usage_of(output.read_text())
    assert set(written) == {
        ("CNB0000001", "mono"),
        ("CNB0000003", "mono"),
        ("CNB0000003", "colour"),
    }
    rejected = list(csv.DictReader(rejects.open()))
    assert sorted(row["reason"] for row in rejected) == [
        "meter_backwards",
        "serial_duplicate",
        "serial_duplicate",
    ]


def test_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reads = tmp_path / "reads.jsonl"
    reads.write_text('{"address": 1}\n')
    code, _, err = run_cli(["--policy", str(write_policy(tmp_path)), "--reads", str(reads)], capsys)
    assert code == 2
    assert f"{reads}:1: " in err
    no_billing = write_policy(tmp_path, POLICY.split("billing:", 1)[0])
    code, _, err = run_cli(["--policy", str(no_billing), "--reads", str(reads)], capsys)
    assert code == 2
    assert "no billing block" in err
    with pytest.raises(SystemExit) as exited:
        main(["billing", "--period", "2026-13", "--policy", "p", "--reads", "r"])
    assert exited.value.code == 2
    assert "'2026-13' is not a month like 2026-11" in capsys.readouterr().err


def test_interpolation_rounds_half_up_exactly() -> None:
    # 1 page over 2 hours, asked at 1 hour: 0.5 -> 1 (integer arithmetic, no float drift)
    export = run_bill(
        [read(at(30, 23, month=11), mono=0, color=0), read(at(1, 1, month=12), mono=1, color=0)]
    )
    mono = next(line for line in export.lines if line.meter_type == "mono")
    assert (mono.end.value, mono.end.estimated) == (1, True)
