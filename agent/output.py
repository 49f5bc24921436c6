"""Rendering of printer reads for the terminal and for pipes.

Shared by the commands that show printers (``scan``, and later ``discover``,
``inventory``, ``eligibility``): a rich table for people, one JSON object per
line for programs. Nothing here talks to the network.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping
from typing import Literal, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from agent.errors import LocalError
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


def address_key(address: str) -> tuple[int, int, str]:
    """Sort key: IP addresses numerically, host names after them."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return (1, 0, address)
    return (0, int(ip), address)


def _consumable_shortest(supplies: Iterable[Supply]) -> Supply | None:
    """The consumed supply with the lowest known percentage (receptacles fill up, not down)."""
    known = [s for s in supplies if s.supply_class == "consumed" and s.percent is not None]
    if known:
        return min(known, key=lambda s: (s.percent, s.index))
    flagged = [s for s in supplies if s.supply_class == "consumed" and s.state in ("empty", "low")]
    if flagged:
        return min(flagged, key=lambda s: (s.state != "empty", s.index))
    return None


def lowest_supply(read: PrinterRead) -> str:
    """``"Black Toner 12%"``, ``"Cyan Ink low"`` or ``"-"`` when nothing is known."""
    supply = _consumable_shortest(read.supplies)
    if supply is None:
        return "-"
    name = supply.description or " ".join(p for p in (supply.colorant, supply.type) if p)
    if supply.percent is not None:
        return f"{name} {supply.percent:.0f}%"
    return f"{name} {supply.state}"


def _cell(value: object) -> Text:
    """Device text printed literally: a location like ``[link=...]`` is not rich markup."""
    return Text("-" if value is None or value == "" else str(value))


def printer_table(reads: Iterable[PrinterRead], *, title: str | None = None) -> Table:
    """One row per printer: address, vendor, model, serial, lifetime pages, lowest supply."""
    table = Table(title=title, show_lines=False)
    table.add_column("Address", no_wrap=True)
    table.add_column("Vendor")
    table.add_column("Model")
    table.add_column("Serial", no_wrap=True)
    table.add_column("Lifetime pages", justify="right")
    table.add_column("Lowest supply")
    for read in sorted(reads, key=lambda r: address_key(r.address)):
        identity = read.identity
        total = read.counters.total
        table.add_row(
            _cell(read.address),
            _cell(identity.vendor),
            _cell(identity.model),
            _cell(identity.serial),
            "-" if total is None else f"{total:,}",
            _cell(lowest_supply(read)),
        )
    return table


def print_table(stream: TextIO, table: Table) -> None:
    width = None if stream.isatty() else 200  # piped: do not squeeze into 80 columns
    console = Console(file=stream, width=width, soft_wrap=False, highlight=False)
    try:
        console.print(table)
        stream.flush()
    except OSError as exc:
        raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc
