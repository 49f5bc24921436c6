"""``fleet-agent billing``: the monthly billing export, from the backend's store or a file of reads.

    fleet-agent billing --period 2026-11 --policy policy.yaml --store sqlite:///fleet.db
    fleet-agent billing --period 2026-11 --policy policy.yaml --reads reads.jsonl --format json

One row per device under contract and contract meter type (the policy's
``billing`` block): serial, device id, model, location, start and end read (time,
value, whether estimated and how, device or manual), usage, anomalies.
docs/billing.md explains the computation (backend.billing.bill).

Exit status: 0 when the whole export was written and is consistent; 1 when some
rows cannot be billed (missing, invalid or duplicate serial, a meter that went
backwards, no usable reads...): each is named on stderr and nothing is written,
unless ``--rejects FILE`` writes them there apart from the export; 2 for a bad
argument, policy or reads file.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from agent.cli_help import add_command
from agent.commands.inventory import spreadsheet_safe
from agent.eligibility.policy import load_policy
from agent.eligibility.reads import iter_read_records
from agent.errors import ConfigError, UsageError
from backend.billing import (
    BillingExport,
    BillingLine,
    BillingRead,
    Period,
    Reject,
    bill,
    billing_read,
    parse_period,
)
from backend.billing_window import PeriodReads
from backend.store import open_store

LINE_COLUMNS = (
    "serial",
    "device_id",
    "vendor",
    "model",
    "location",
    "meter_type",
    "expression",
    "start_at",
    "start_value",
    "start_estimated",
    "start_method",
    "start_source",
    "end_at",
    "end_value",
    "end_estimated",
    "end_method",
    "end_source",
    "usage",
    "anomalies",
)
REJECT_COLUMNS = ("serial", "device_id", "model", "location", "meter_type", "reason", "detail")


def _period(text: str) -> Period:
    try:
        return parse_period(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "billing",
        help="monthly billing export: start and end meters per contract meter type",
        doc=__doc__,
    )
    parser.add_argument(
        "--period",
        required=True,
        type=_period,
        metavar="YYYY-MM",
        help="month, e.g. 2026-11 (UTC)",
    )
    parser.add_argument(
        "--policy",
        required=True,
        type=Path,
        metavar="FILE",
        help="contract policy with a billing block",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--store", metavar="DSN", help="the backend's store: sqlite:///file.db or postgresql://..."
    )
    source.add_argument(
        "--reads", metavar="FILE", help="JSON lines as 'fleet-agent scan --format json' prints"
    )
    parser.add_argument(
        "--format", choices=("csv", "json"), default="csv", help="csv (default) or JSON"
    )
    parser.add_argument(
        "--output", type=Path, metavar="FILE", help="write the export here instead of stdout"
    )
    parser.add_argument(
        "--rejects",
        type=Path,
        metavar="FILE",
        help="write rows that cannot be billed here (CSV), export the rest",
    )
    parser.add_argument(
        "--lookaround-days",
        type=int,
        default=45,
        metavar="DAYS",
        help="reads this far outside the period are used to estimate its boundaries (45)",
    )
    parser.set_defaults(handler=run)


def _file_reads(spec: str, period: Period, window: tuple[datetime, datetime]) -> PeriodReads:
    """The reads of ``spec`` billing can use, streamed: the file is never held whole."""
    path = Path(spec)
    kept = PeriodReads(period, *window)
    try:
        with path.open(encoding="utf-8") as stream:
            for device_id, read in iter_read_records(stream, source=str(path)):
                kept.add(billing_read(read, device_id))
    except FileNotFoundError:
        raise UsageError(f"--reads: {path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 ({exc.reason})", path=str(path)) from exc
    except OSError as exc:
        raise UsageError(f"--reads: {path}: {exc.strerror or exc}") from exc
    return kept


def _line_row(line: BillingLine) -> list[str]:
    cells: list[object] = [
        line.serial,
        line.device_id,
        line.vendor,
        line.model,
        line.location,
        line.meter_type,
        line.expression,
    ]
    for boundary in (line.start, line.end):
        cells += [
            boundary.at.isoformat(),
            boundary.value,
            boundary.estimated,
            boundary.method,
            boundary.source,
        ]
    cells += [line.usage, " ".join(line.anomalies)]
    return [spreadsheet_safe(cell) for cell in cells]


def _reject_row(reject: Reject) -> list[str]:
    return [spreadsheet_safe(getattr(reject, column)) for column in REJECT_COLUMNS]


def render_csv(rows: Iterable[list[str]], header: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def render(export: BillingExport, output: str) -> str:
    if output == "json":
        document = export.model_dump(mode="json", exclude={"rejects"})
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return render_csv((_line_row(line) for line in export.lines), LINE_COLUMNS)


def _write(path: Path, text: str) -> None:
    """All or nothing: a temporary file beside ``path``, renamed over it."""
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def describe(reject: Reject) -> str:
    where = f"device {reject.device_id}"
    if reject.serial:
        where += f" (serial {reject.serial})"
    if reject.meter_type:
        where += f", meter type {reject.meter_type}"
    return f"{where}: {reject.reason}: {reject.detail}"


def _reads(
    args: argparse.Namespace, period: Period, window: tuple[datetime, datetime]
) -> Iterator[BillingRead]:
    if args.reads is not None:
        yield from _file_reads(args.reads, period, window).reads()
        return
    store = open_store(args.store)
    try:
        yield from store.billing_reads(*window)
    finally:
        store.close()


def run(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    if not args.policy.is_file():
        raise UsageError(f"--policy: {args.policy}: file not found")
    if args.lookaround_days < 1:
        raise UsageError("--lookaround-days: must be at least 1")
    policy = load_policy(args.policy)
    billing = policy.billing
    if billing is None:
        raise ConfigError(
            f"{args.policy}: no billing block: map the contract's meter types under "
            "billing.meter_types (docs/eligibility.md)",
            path=str(args.policy),
        )
    contract = None if billing.under_contract == "all" else policy.managed
    if contract is not None and not contract:
        raise ConfigError(
            f"{args.policy}: billing.under_contract is managed but `managed` lists no device",
            path=str(args.policy),
        )
    period: Period = args.period
    window = period.window(timedelta(days=args.lookaround_days))
    export = bill(_reads(args, period, window), period=period, billing=billing, contract=contract)
    if export.rejects and args.rejects is None:
        count = len(export.rejects)
        print(
            f"fleet-agent billing: {count} row{'s' if count != 1 else ''} cannot be billed; "
            "nothing written (--rejects FILE writes them apart):",
            file=sys.stderr,
        )
        for reject in export.rejects:
            print(f"  {describe(reject)}", file=sys.stderr)
        return 1
    text = render(export, args.format)
    if args.rejects is not None:
        _write(args.rejects, render_csv(map(_reject_row, export.rejects), REJECT_COLUMNS))
        for reject in export.rejects:
            print(f"fleet-agent billing: written apart: {describe(reject)}", file=sys.stderr)
    if args.output is not None:
        _write(args.output, text)
    else:
        out.write(text)
    return 0
