"""Rendering helpers: the lowest-supply cell, the table, JSON lines, the default format."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from agent.commands.scan import ScanSummary
from agent.output import (
    OutputError,
    default_format,
    json_line,
    lowest_supply,
    print_table,
    printer_table,
    write_line,
)
from collectors.targets import address_key
from mibs.models import Counters, Identity, PrinterRead, Supply, SupplyClass, SupplyState


def supply(
    index: int,
    description: str,
    percent: float | None,
    state: SupplyState = "ok",
    supply_class: SupplyClass = "consumed",
) -> Supply:
    return Supply(
        index=index,
        description=description,
        type="toner",
        supply_class=supply_class,
        max_capacity=100,
        level=None if percent is None else int(percent),
        percent=percent,
        state=state,
    )


def read(address: str, *supplies: Supply, total: int | None = 1234) -> PrinterRead:
    return PrinterRead(
        address=address,
        collected_at=datetime(2026, 11, 22, tzinfo=UTC),
        identity=Identity(vendor="HP", model="LaserJet M130nw", serial="VNCRC48198"),
        counters=Counters(total=total),
        supplies=list(supplies),
    )


def test_lowest_supply_ignores_receptacles_that_fill_up() -> None:
    r = read(
        "192.0.2.1",
        supply(1, "Black Toner", 40.0),
        supply(2, "Waste Toner", 2.0, supply_class="receptacle"),
        supply(3, "Drum", 71.0),
    )
    assert lowest_supply(r) == "Black Toner 40%"


def test_lowest_supply_falls_back_to_a_flagged_state() -> None:
    r = read("192.0.2.1", supply(1, "Cyan", None, "low"), supply(2, "Black", None, "empty"))
    assert lowest_supply(r) == "Black empty"
    only_some = read("192.0.2.1", supply(1, "Cyan", None, "some_remaining"))
    assert lowest_supply(only_some) == "Cyan some remaining"


def test_table_rows_sorted_by_address_numerically() -> None:
    stream = io.StringIO()
    print_table(
        stream,
        printer_table([read("192.0.2.10", total=None), read("192.0.2.9", supply(1, "K", 5.0))]),
    )
    text = stream.getvalue()
    assert text.index("192.0.2.9") < text.index("192.0.2.10")
    row = next(line for line in text.splitlines() if "192.0.2.10" in line)
    assert "VNCRC48198" in row
    assert " - " in row  # unknown lifetime count


def test_address_key_orders_ips_before_host_names() -> None:
    assert sorted(["printer-b", "10.0.0.2", "9.0.0.1"], key=address_key) == [
        "9.0.0.1",
        "10.0.0.2",
        "printer-b",
    ]


def test_json_line_is_one_line_and_round_trips() -> None:
    record = read("192.0.2.1", supply(1, "Black Toner — ß", 12.5)).model_dump(mode="json")
    line = json_line(record)
    assert "\n" not in line
    assert json.loads(line) == record
    assert record["counters"]["total"] == 1234


class _Broken(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_is_an_output_error() -> None:
    with pytest.raises(OutputError, match="Broken pipe"):
        write_line(_Broken(), "{}")


def test_default_format_is_json_off_a_terminal() -> None:
    assert default_format(io.StringIO()) == "json"

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert default_format(Tty()) == "table"


def test_summary_line_counts() -> None:
    summary = ScanSummary(addresses=256, printers=3, not_printers=1, silent=251, incomplete=1)
    assert summary.line() == (
        "256 addresses scanned, 3 printers, 1 not a printer, 251 silent, 1 incomplete"
    )


def test_device_text_is_not_rich_markup() -> None:
    import io
    from datetime import UTC, datetime

    from agent.output import print_table, printer_table
    from mibs.models import Counters, Identity, PrinterRead

    read = PrinterRead(
        address="127.0.0.9",
        collected_at=datetime(2026, 11, 22, tzinfo=UTC),
        identity=Identity(vendor="[bold]Evil[/bold]", model="[link=http://x]M1[/link]"),
        counters=Counters(),
    )
    stream = io.StringIO()
    print_table(stream, printer_table([read]))
    assert "[bold]Evil[/bold]" in stream.getvalue()
    assert "[link=http://x]M1[/link]" in stream.getvalue()
