"""Manual meter reads: the CSV import (all or nothing), meter add, and what gets queued."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import OKPKey

from agent.cli import main
from agent.inventory import Inventory
from agent.manual_meters import MeterImportError, parse_meter_csv
from agent.state import inventory_path, load_or_create_key, outbox_path
from mibs.messages import ReadMessage, parse_body
from mibs.models import Counters, Identity, PrinterRead
from uploader.envelope import Signer, Verifier
from uploader.queue import Outbox

GOOD = (
    "Device,Read At,Entered By,Reason,mono,color,model\n"
    "CNB0000001,2026-11-25T17:00Z,Tom Berg,USB printer,10234,880,LaserJet P1102\n"
    "sn:hp:CNB0000002,2026-11-25T17:05+01:00,Tom Berg,no SNMP,5000,,\n"
)


@pytest.fixture(autouse=True)
def _keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command points structlog at stderr; under capsys that stream closes after the test."""
    monkeypatch.setattr("agent.commands.meter.configure_logging", lambda *a, **k: None)


def errors_of(text: str) -> list[str]:
    with pytest.raises(MeterImportError) as caught:
        parse_meter_csv(text.encode(), source="m.csv")
    return [str(error) for error in caught.value.errors]


def test_a_good_file_parses_every_row() -> None:
    first, second = parse_meter_csv(GOOD.encode(), source="m.csv")
    assert (first.device, first.meters, first.model) == (
        "CNB0000001",
        {"mono": 10234, "color": 880},
        "LaserJet P1102",
    )
    assert second.read_at == datetime(2026, 11, 25, 16, 5, tzinfo=UTC)
    assert second.meters == {"mono": 5000}


def test_every_bad_row_is_named_and_nothing_is_imported() -> None:
    text = (
        "device,read_at,entered_by,reason,mono,color\n"
        "CNB1,2026-11-25T17:00,Tom,x,10,1\n"  # no UTC offset
        "CNB2,2026-11-25T17:00Z,,x,10,1\n"  # nobody entered it
        "CNB3,2026-11-25T17:00Z,Tom,x,ten,1\n"  # not a number
        "CNB4,2026-11-25T17:00Z,Tom,x,-5,1\n"  # negative
        "CNB5,2026-11-25T17:00Z,Tom,x,,\n"  # no meter at all
        "CNB6,2099-01-01T00:00Z,Tom,x,1,1\n"  # in the future
        "CNB7,2026-11-25T17:00Z,Tom,x,1,1\n"
        "cnb7,2026-11-25T17:00Z,Tom,x,2,1\n"  # same device and time again
        "CNB8,2026-11-25T17:00Z,Tom,x,1,1,extra\n"
    )
    expected = [
        "row 2, column read_at: give the time with its UTC offset, e.g. 2026-11-30T17:00Z",
        "row 3, column entered_by: ",
        "row 4, column mono: not a whole number",
        "row 5, column meters: mono: a meter is never negative",
        "row 6, column meters: give at least one meter value",
        "row 7, column read_at: is in the future",
        "row 9, column device: duplicate of row 8 (same device and time)",
        "row 10: 7 fields but the header has 6",
    ]
    found = errors_of(text)
    assert len(found) == len(expected)
    for line, start in zip(found, expected, strict=True):
        assert line.startswith(start), (line, start)


def test_header_problems_name_the_columns() -> None:
    assert errors_of("device,when,entered_by,reason,pages\nx,y,z,w,1\n") == [
        "row 1, column read_at: required column is missing from the header",
        "row 1, column when: unknown column",
        "row 1, column pages: unknown column",
        "row 1: no meter column (one of "
        + ", ".join(__import__("mibs.metering").metering.METER_NAMES)
        + ")",
    ]


def test_latin1_file_is_refused_with_the_row() -> None:
    data = "device,read_at,entered_by,reason,mono\nCNB1,2026-11-25T17:00Z,Jürgen,x,1\n"
    with pytest.raises(MeterImportError) as caught:
        parse_meter_csv(data.encode("latin-1"), source="m.csv")
    assert "row 2: not UTF-8" in str(caught.value)


def queued(state_dir: Path) -> list[Any]:
    key = load_or_create_key(state_dir)
    verifier = Verifier({key.key_id: OKPKey.import_key(key.public_jwk())})
    with Outbox(outbox_path(state_dir), Signer(key, "site-1")) as outbox:
        pending = outbox.pending(100)
    result = []
    for message in pending:
        envelope = verifier.verify(message.token)
        result.append(parse_body(envelope.kind, envelope.body))
    return result


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"agent_id: site-1\nstate_dir: {tmp_path / 'state'}\nupload: {{enabled: false}}\n"
    )
    return path


def test_import_queues_signed_manual_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "m.csv"
    csv_file.write_text(GOOD)
    assert main(["meter", "import", str(csv_file), "--config", str(config_file(tmp_path))]) == 0
    assert "queued manual read of sn:-:CNB0000001" in capsys.readouterr().out
    reads = queued(tmp_path / "state")
    assert [(r.device_id, r.source, r.counters.mono) for r in reads] == [
        ("sn:-:CNB0000001", "manual", 10234),
        ("sn:hp:CNB0000002", "manual", 5000),
    ]
    assert all(isinstance(r, ReadMessage) and r.purpose == "meters" for r in reads)
    assert reads[0].manual is not None
    assert (reads[0].manual.entered_by, reads[0].manual.reason) == ("Tom Berg", "USB printer")
    assert reads[0].counter_sources == {"mono": "manual", "color": "manual"}


def test_a_bad_file_queues_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = tmp_path / "m.csv"
    csv_file.write_text(GOOD + "CNB9,yesterday,Tom,x,1,1,\n")
    assert main(["meter", "import", str(csv_file), "--config", str(config_file(tmp_path))]) == 2
    assert "1 problem, nothing queued" in capsys.readouterr().err
    assert not outbox_path(tmp_path / "state").exists()


def test_add_uses_the_inventory_and_flags_a_meter_going_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    with Inventory(inventory_path(state)) as inventory:
        outcome = inventory.record_discovery(
            "127.0.0.5",
            Identity(serial="CNB0000001", vendor="HP", model="LaserJet P1102", is_printer=True),
            device_key="sn:hp:CNB0000001",
            credential_profile=None,
        )
        inventory.record_read(
            outcome.device_id,
            PrinterRead(
                address="127.0.0.5",
                collected_at=datetime(2026, 11, 20, tzinfo=UTC),
                identity=Identity(serial="CNB0000001", vendor="HP", is_printer=True),
                counters=Counters(mono=9000),
            ),
        )
    args = ["meter", "add", "cnb0000001", "--at", "2026-11-25T17:00Z", "--set", "mono=8000"]
    args += ["--by", "Tom", "--reason", "network down", "--config", str(config_file(tmp_path))]
    assert main(args) == 0
    read, event = queued(state)
    assert (read.device_id, read.address, read.identity.model) == (
        "sn:hp:CNB0000001",
        "127.0.0.5",
        "LaserJet P1102",
    )
    assert (event.event, event.meter, event.previous, event.current) == (
        "meter_backwards",
        "mono",
        9000,
        8000,
    )
    assert "queued meter_backwards event" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "mono"], "--set 'mono': expected METER=WHOLE_NUMBER"),
        (["--set", "pages=5"], "--set: unknown meter pages"),
        (["--set", "mono=5", "--at", "2026-11-25T17:00"], "--at: give the time with its UTC"),
        (["--set", "mono=5", "--at", "soon"], "--at 'soon': not a time"),
    ],
)
def test_add_refuses_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    args = ["meter", "add", "CNB1", "--at", "2026-11-25T17:00Z", "--by", "Tom", "--reason", "x"]
    args += ["--config", str(config_file(tmp_path)), *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err
