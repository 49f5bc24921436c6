"""``fleet-agent supplies``: per device and supply, the level, part number and forecast.

One row per device and consumable: level, part number, days of history,
pages per day, predicted empty date with its interval, and the state
(``learning``, ``ok``, ``order_due``, ``ordered``, ``empty``). The history comes
from the agent's state database (``--state-dir``), the reference backend's store
(``--store``: the same forecast, computed from the stored reads), or a file of
reads (``--reads``: JSON lines with ``collected_at``, oldest first, as ``scan
--format json`` prints them or as the daemon uploads them). ``--policy`` takes
the replenishment settings of a contract policy; the defaults otherwise.
Exit status: 0 when the report was printed; 1 when there is no inventory in
``--state-dir`` yet, or on any other failure; 2 for a bad argument or file.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

from rich.table import Table

from agent.cli_help import add_command
from agent.eligibility.policy import ReplenishmentPolicy, load_policy
from agent.eligibility.reads import parse_reads
from agent.eligibility.report import spreadsheet_safe
from agent.errors import ConfigError, NothingYet, UsageError
from agent.inventory import Inventory
from agent.logging import configure_logging
from agent.output import json_line, print_table, write_line
from agent.state import inventory_path
from agent.supply_store import SupplyStore
from backend.store import open_store
from backend.supplies import stored_supply_rows
from mibs.identity import stable_device_id
from mibs.models import PrinterRead
from mibs.supply_report import SupplyRow, histories_from_reads, report_rows

COLUMNS = (
    "device_id",
    "address",
    "supply_index",
    "description",
    "colorant",
    "part_number",
    "level",
    "history_days",
    "pages_per_day",
    "predicted_empty",
    "empty_earliest",
    "empty_latest",
    "state",
    "method",
    "more_history_days",
    "note",
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "supplies",
        help="supply levels, part numbers and days-to-empty forecasts",
        doc=__doc__,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--state-dir", type=Path, metavar="DIR", help="the agent's state directory")
    source.add_argument(
        "--store",
        metavar="DSN",
        help="the reference backend's store (sqlite:///… or postgresql://…)",
    )
    source.add_argument(
        "--reads", metavar="FILE", help="reads as JSON lines, oldest first; '-' for stdin"
    )
    parser.add_argument(
        "--policy", type=Path, metavar="FILE", help="replenishment settings from this policy"
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default=None,
        help="table on a terminal, JSON otherwise",
    )
    parser.set_defaults(handler=run)


def _settings(policy: Path | None) -> ReplenishmentPolicy:
    if policy is None:
        return ReplenishmentPolicy()
    if not policy.is_file():
        raise UsageError(f"--policy: {policy}: file not found")
    return load_policy(policy).replenishment


def _reads_file(lines: Iterable[str], source: str) -> list[tuple[str, PrinterRead]]:
    """Reads (scan's or uploaded form) with the device id each names or implies."""
    ids: list[str | None] = []
    plain: list[str] = []
    for line in lines:
        ids_line, text = None, line
        try:
            record = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            ids_line = record.pop("device_id", None)
            record.pop("purpose", None)
            text = json.dumps(record)
        if line.strip():
            ids.append(ids_line if isinstance(ids_line, str) else None)
        plain.append(text)
    reads = parse_reads(plain, source=source)
    return [
        (given or stable_device_id(read.identity) or f"ip:{read.address}", read)
        for given, read in zip(ids, reads, strict=True)
    ]


def _rows_from_reads(spec: str, stdin: TextIO, settings: ReplenishmentPolicy) -> list[SupplyRow]:
    if spec == "-":
        pairs = _reads_file(stdin, "<stdin>")
    else:
        path = Path(spec)
        try:
            with path.open(encoding="utf-8") as stream:
                pairs = _reads_file(stream, str(path))
        except FileNotFoundError:
            raise UsageError(f"--reads: {path}: file not found") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 ({exc.reason})", path=str(path)) from exc
    reads = sorted(pairs, key=lambda pair: pair[1].collected_at)
    return report_rows(histories_from_reads(reads), settings.settings())


def _rows_from_state(state_dir: Path, settings: ReplenishmentPolicy) -> list[SupplyRow]:
    path = inventory_path(state_dir)
    if not path.is_file():
        raise NothingYet(
            f"--state-dir: {state_dir}: no inventory ({path.name}) there yet "
            "(run the daemon, or 'fleet-agent discover --read')"
        )
    with Inventory(path) as inventory:
        store = SupplyStore(inventory)
        return report_rows(store.histories(), settings.settings(), ordered=store.orders())


def _rows_from_store(dsn: str, settings: ReplenishmentPolicy) -> list[SupplyRow]:
    store = open_store(dsn)
    try:
        return stored_supply_rows(store, settings.settings())
    finally:
        store.close()


def _cells(row: SupplyRow) -> list[str]:
    record = row.model_dump(mode="json")
    return ["" if record[name] is None else str(record[name]) for name in COLUMNS]


def write_rows(out: TextIO, rows: Sequence[SupplyRow], output: str) -> None:
    if output == "json":
        for row in rows:
            write_line(out, json_line(row.model_dump(mode="json")))
        return
    if output == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows([spreadsheet_safe(cell) for cell in _cells(row)] for row in rows)
        out.write(buffer.getvalue())
        return
    table = Table(title="Supplies")
    for name in (
        "device",
        "supply",
        "part",
        "level %",
        "history d",
        "pages/day",
        "empty",
        "interval",
        "state",
    ):
        table.add_column(name)
    for row in rows:
        interval = f"{row.empty_earliest}..{row.empty_latest}" if row.empty_earliest else ""
        state = (
            row.state
            if row.more_history_days is None
            else f"learning ({row.more_history_days} d more)"
        )
        table.add_row(
            row.device_id,
            f"{row.supply_index} {row.description or row.type}",
            row.part_number or "",
            "" if row.level is None else f"{row.level:.1f}",
            f"{row.history_days:.0f}",
            "" if row.pages_per_day is None else f"{row.pages_per_day:.0f}",
            str(row.predicted_empty or ""),
            interval,
            state,
        )
    print_table(out, table)


def run(
    args: argparse.Namespace, *, stdout: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    out = stdout if stdout is not None else sys.stdout
    configure_logging("warning", stream=sys.stderr)
    settings = _settings(args.policy)
    if args.state_dir is not None:
        rows = _rows_from_state(args.state_dir, settings)
    elif args.store is not None:
        rows = _rows_from_store(args.store, settings)
    else:
        rows = _rows_from_reads(args.reads, stdin if stdin is not None else sys.stdin, settings)
    output = args.format or ("table" if out.isatty() else "json")
    write_rows(out, rows, output)
    return 0
