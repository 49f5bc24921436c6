"""Records as a table (people), JSON lines or CSV (programs): ``--format table|json|csv``.

For the backend's listing commands (``enroll-token list``, ``keys list``): each
record is a flat mapping; ``columns`` names the fields in order.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal, TextIO

from rich.table import Table

from agent.commands.inventory import spreadsheet_safe
from agent.output import OutputError, json_line, print_table, write_line

__all__ = ["ListFormat", "cell", "write_records"]

ListFormat = Literal["table", "json", "csv"]


def cell(value: object) -> object:
    """A JSON-ready value: times in RFC 3339 UTC."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def write_records(
    stream: TextIO,
    records: Sequence[Mapping[str, object]],
    columns: Sequence[str],
    *,
    output: ListFormat,
    title: str,
) -> None:
    if output == "json":
        for record in records:
            write_line(stream, json_line({name: cell(record.get(name)) for name in columns}))
        return
    if output == "csv":
        writer = csv.writer(stream, lineterminator="\n")
        try:
            writer.writerow(columns)
            writer.writerows(
                [spreadsheet_safe(cell(record.get(name))) for name in columns] for record in records
            )
            stream.flush()
        except OSError as exc:
            raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc
        return
    table = Table(title=title)
    for name in columns:
        table.add_column(name.replace("_", " "))
    for record in records:
        table.add_row(*(str(cell(record.get(name)) or "-") for name in columns))
    print_table(stream, table)
