"""Rendering of printer reads for the terminal and for pipes.

Shared by the commands that show printers (``scan``, and later ``discover``,
``inventory``, ``eligibility``): a rich table for people, one JSON object per
line for programs. Nothing here talks to the network.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Literal, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from agent.errors import LocalError
from collectors.targets import address_key
from mibs.models import PrinterRead, Supply

OutputFormat = Literal["table", "json"]


class OutputError(LocalError):
    """Standard output could not be written (closed pipe, full disk, read-only descriptor)."""


def default_format(stream: TextIO) -> OutputFormat:
    """``table`` on a terminal, ``json`` when piped or redirected."""
    try:
        return "table" if stream.isatty() else "json"
    except ValueError:  # a closed stream
        return "json"


def json_line(record: Mapping[str, object]) -> str:
    """One compact JSON object, keys in a stable order, no trailing newline."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def write_line(stream: TextIO, line: str) -> None:
    """Write and flush one line so a consumer sees each record as it is produced."""
    try:
        stream.write(line + "\n")
        stream.flush()
    except OSError as exc:
        raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc


def _supply_name(supply: Supply) -> str:
    return supply.description or " ".join(p for p in (supply.colorant, supply.type) if p)


def lowest_supply(read: PrinterRead) -> str:
    """The consumable closest to running out, and any whose level is not known in percent.

    ``"Black Toner 12%"``, ``"Cyan Ink low"``, ``"Black Toner 12%, Yellow Toner some
    remaining"`` (a toner that reports only "some remaining", RFC 3805's -3, may be the
    lowest of all: it is named rather than hidden), or ``"-"`` when nothing is known.
    Receptacles (waste toner) fill up rather than run out and are left out.
    """
    consumed = [s for s in read.supplies if s.supply_class == "consumed"]
    urgency = {"empty": 0, "low": 1}
    candidates = [s for s in consumed if s.percent is not None or s.state in urgency]
    parts: list[str] = []
    if candidates:
        lowest = min(
            candidates,
            key=lambda s: (
                urgency.get(s.state, 2),
                -1.0 if s.percent is None else s.percent,
                s.index,
            ),
        )
        level = lowest.state if lowest.percent is None else f"{lowest.percent:.0f}%"
        parts.append(f"{_supply_name(lowest)} {level}")
    parts += [
        f"{_supply_name(s)} some remaining"
        for s in sorted(consumed, key=lambda s: s.index)
        if s.percent is None and s.state == "some_remaining"
    ]
    return ", ".join(parts) or "-"


def _cell(value: object) -> Text:
    """Device text printed literally: a location like ``[link=...]`` is not rich markup."""
    return Text("-" if value is None or value == "" else str(value))


def printer_cells(read: PrinterRead) -> list[Text]:
    """Address, vendor, model, serial, lifetime pages, lowest supply: one printer's row."""
    identity = read.identity
    total = read.counters.total
    return [
        _cell(read.address),
        _cell(identity.vendor),
        _cell(identity.model),
        _cell(identity.serial),
        _cell(None if total is None else f"{total:,}"),
        _cell(lowest_supply(read)),
    ]


def printer_table(reads: Iterable[PrinterRead], *, title: str | None = None) -> Table:
    """One row per printer (:func:`printer_cells`), by address numerically."""
    table = Table(title=title, show_lines=False)
    table.add_column("Address", no_wrap=True)
    table.add_column("Vendor")
    table.add_column("Model")
    table.add_column("Serial", no_wrap=True)
    table.add_column("Lifetime pages", justify="right")
    table.add_column("Lowest supply")
    for read in sorted(reads, key=lambda r: address_key(r.address)):
        table.add_row(*printer_cells(read))
    return table


def print_table(stream: TextIO, table: Table) -> None:
    width = None if stream.isatty() else 200  # piped: do not squeeze into 80 columns
    console = Console(file=stream, width=width, soft_wrap=False, highlight=False)
    try:
        console.print(table)
        stream.flush()
    except OSError as exc:
        raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc
