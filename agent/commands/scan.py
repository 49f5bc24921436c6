"""``fleet-agent scan``: read every printer among the targets once and print what was found.

    fleet-agent scan 10.20.0.0/24 -c public
    fleet-agent scan -v 2c -c public 10.20.0.17 --format json
    fleet-agent scan 10.20.0.17,10.20.0.18:1161 -v
    fleet-agent scan -iL printers.txt --rate 50
    fleet-agent scan --file printer.walk

Exit status: 0 when at least one printer was read, 1 when none was (or on a failure),
2 for a bad argument. Output, summary and hints: docs/discovery.md, "Output".
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TextIO, TypeVar

import structlog
from rich.console import Console, JustifyMethod, OverflowMethod
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agent.cli_help import add_command
from agent.commands._snmp_options import (
    add_snmp_options,
    add_target_options,
    bounded,
    config_from_args,
    exchange_printer,
    option_adder,
    read_option_file,
    snmp_config_from_args,
    target_specs_from_args,
)
from agent.eligibility.policy import Policy
from agent.eligibility.report import verdict_cell
from agent.eligibility.rules import evaluate_read
from agent.eligibility.scanning import add_policy_option, policy_from_args, with_eligibility
from agent.errors import LocalError, UsageError
from agent.logging import configure_logging
from agent.output import OutputError, default_format, json_line, printer_cells, write_line
from collectors.credentials import Credential
from collectors.discovery import DEFAULT_RATE
from collectors.reader import ReadOutcome, read_device, read_session
from collectors.targets import TargetError, validate_targets
from collectors.udp import TokenBucket
from collectors.walk import RecordedSession
from mibs.identity import stable_device_id
from mibs.models import PrinterRead
from mibs.plan import full_read_plan
from mibs.snmprec import SnmprecError, load_varbinds
from mibs.snmpwalk import WalkError, looks_like_walk, parse_walk

if TYPE_CHECKING:
    from agent.config import SnmpConfig
    from collectors.transport import Trace

#: Silent addresses named in the "no answer" hint (a named-host scan names few).
_SILENT_NAMED = 20
_log = structlog.get_logger(__name__)
T = TypeVar("T")
#: Help texts of scan's own options, by destination.
_HELP = {
    "walk_files": "read a saved 'snmpwalk -On' output or .snmprec recording instead of a device "
    "(repeatable; with one TARGET, that is the address the read carries)",
    "rate": f"packets per second for the whole scan (default {DEFAULT_RATE:g}; 0: no limit)",
    "concurrency": "devices read at once (default: snmp.concurrency, 64)",
    "deadline": "cap on one device's whole read, every profile tried (default 30)",
}


@dataclass
class InOrder(Generic[T]):
    """Hands results to ``release`` in sequence (target) order, each as soon as its turn comes."""

    release: Callable[[T], None]
    _next: int = 0
    _held: dict[int, T | None] = field(default_factory=dict)

    def done(self, sequence: int, item: T | None) -> None:
        """Result number ``sequence`` is in (``None``: nothing to show for it)."""
        self._held[sequence] = item
        while self._next in self._held:
            ready = self._held.pop(self._next)
            self._next += 1
            if ready is not None:
                self.release(ready)


#: The columns after the address: (header, width or None for "as wide as needed", justify).
_COLUMNS: list[tuple[str, int | None, JustifyMethod]] = [
    ("Vendor", 12, "left"),
    ("Model", 26, "left"),
    ("Serial", 16, "left"),
    ("Lifetime pages", 14, "right"),
    ("Lowest supply", None, "left"),
]


class ScanOutput:
    """Prints reads one by one: JSON lines, or table rows under one header, columns fixed.

    In a table, ``console`` (the progress bar's, on a terminal) prints the rows above the
    bar, and notes (why an address shows nothing) go to stderr; JSON lines get no notes.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        table: bool = True,
        policy: Policy | None = None,
        address_width: int = 15,
        console: Console | None = None,
    ) -> None:
        if console is None or not stream.isatty():  # piped: do not squeeze into 80 columns
            width = None if stream.isatty() else 250
            console = Console(file=stream, width=width, soft_wrap=False, highlight=False)
        self._console = console
        self._stream, self._table, self._policy = stream, table, policy
        self._columns = [("Address", address_width, "left"), *_COLUMNS]
        if policy is not None:
            self._columns[-1:] = [("Lowest supply", 24, "left"), ("Eligibility", None, "left")]
        self._printed = 0

    def _grid(self, *, header: bool) -> Table:
        grid = Table(box=None, show_header=header, header_style="bold", pad_edge=False)
        for name, width, justify in self._columns:
            overflow: OverflowMethod = "ellipsis" if width else "fold"
            grid.add_column(name, width=width, no_wrap=True, overflow=overflow, justify=justify)
        return grid

    def row(self, read: PrinterRead) -> None:
        if not self._table:
            record = read.model_dump(mode="json")  # the read schema, a policy's verdict too
            if self._policy is not None:
                record = with_eligibility(record, read, self._policy)
            write_line(self._stream, json_line(record))
            return
        cells = printer_cells(read)
        if self._policy is not None:
            verdict = evaluate_read(read, self._policy, device_id=stable_device_id(read.identity))
            cells.append(Text(verdict_cell(verdict)))
        grid = self._grid(header=self._printed == 0)
        grid.add_row(*cells)
        self._print(grid)
        self._printed += 1

    def note(self, message: str) -> None:
        if self._table:
            print(f"fleet-agent scan: {message}", file=sys.stderr)

    def finish(self) -> None:
        """A header even when nothing answered, so that an empty table says so."""
        if self._table and self._printed == 0:
            self._print(self._grid(header=True))

    def _print(self, grid: Table) -> None:
        try:
            self._console.print(grid)
            self._stream.flush()
        except OSError as exc:
            raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc


@dataclass
class ScanProgress:
    update: Callable[[int, int], None]  # (addresses done, printers found)
    console: Console | None  # the live display's console (prints above the bar), if any


@contextmanager
def scan_progress(total: int, stream: TextIO) -> Iterator[ScanProgress]:
    """A progress bar on ``stream`` when it is a terminal; otherwise nothing is shown."""
    shown = stream.isatty()
    with Progress(
        TextColumn("[bold]scan"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[printers]} printers"),
        TimeElapsedColumn(),
        console=Console(file=stream),
        transient=True,
        disable=not shown,
    ) as progress:
        task = progress.add_task("scan", total=total, printers=0)
        yield ScanProgress(
            update=lambda done, printers: progress.update(task, completed=done, printers=printers),
            console=progress.console if shown else None,
        )


@dataclass
class ScanSummary:
    addresses: int = 0
    printers: int = 0
    not_printers: int = 0
    silent: int = 0
    incomplete: int = 0
    refused: int = 0
    failed: int = 0
    silent_addresses: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [
            f"{self.addresses} address{'es' if self.addresses != 1 else ''} scanned",
            f"{self.printers} printer{'s' if self.printers != 1 else ''}",
            f"{self.not_printers} not a printer",
            f"{self.silent} silent",
        ]
        if self.incomplete:
            parts.append(f"{self.incomplete} incomplete")
        if self.refused:
            parts.append(f"{self.refused} refused every credential")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts)

    def count(self, outcome: ReadOutcome, note: Callable[[str], None]) -> PrinterRead | None:
        """The printer's read, or None after counting (and noting) why there is none."""
        address, read = outcome.address, outcome.read
        if read is None:
            if outcome.kind == "silent":
                self.silent += 1
                if len(self.silent_addresses) < _SILENT_NAMED:
                    self.silent_addresses.append(address)
            elif outcome.kind == "refused":
                self.refused += 1
                note(f"{address}: every credential refused ({outcome.detail})")
            else:
                self.failed += 1
                note(f"{address}: {outcome.detail}")
            return None
        if read.identity.is_printer:
            self.printers += 1
            return read
        if any(problem.reason in ("timeout", "deadline") for problem in read.problems):
            # The read stopped early (silence or deadline), so "not a printer" is not known.
            self.incomplete += 1
            note(f"{address}: answered, then fell silent before it could be identified")
        else:
            self.not_printers += 1
            what = read.identity.sys_descr or read.identity.sys_object_id or "?"
            note(f"{address}: answers SNMP but is not a printer ({what[:60]}), skipped")
        return None

    def hints(self, credentials: Sequence[Credential], typed: Sequence[str]) -> Iterator[str]:
        """One line per silent address: what was tried and what usually causes the silence.

        A community is shown only when it is in ``typed`` (the user's own command-line text);
        one from a file is named by its profile; a v3 profile by its user, never by its keys.
        """
        communities = [
            repr(secret) if secret in typed else f"of profile {c.name!r}"
            for c in credentials
            if c.community is not None
            for secret in [c.community.get_secret_value()]
        ]
        users = [repr(c.username) for c in credentials if c.version == "v3"]
        parts: list[str] = []
        if communities:
            version = next(c.version for c in credentials if c.community is not None)
            noun = "community" if len(communities) == 1 else "communities"
            parts.append(f"{version} {noun} " + ", ".join(communities))
        if users:
            parts.append("v3 user " + ", ".join(users))
        cause = "wrong community" if communities else "wrong user or keys"
        tried = " or ".join(parts)
        for address in self.silent_addresses:
            yield f"no answer from {address} with {tried}: {cause}, SNMP off, or a firewall?"


async def run_scan(
    addresses: Iterable[str],
    snmp: SnmpConfig,
    output: ScanOutput,
    progress: ScanProgress,
    *,
    rate: float | None,
    trace: Trace | None,
) -> ScanSummary:
    """Read every address, ``snmp.concurrency`` devices at a time; printers go to ``output``
    in address order, each once it and every address before it are done. With ``rate``,
    every packet (retries included) waits for a token of a packets-per-second bucket."""
    from collectors.transport import SnmpTransport

    summary = ScanSummary()
    pending = enumerate(addresses)
    settings = snmp.transport_settings()
    in_order: InOrder[PrinterRead] = InOrder(output.row)
    pace = TokenBucket(rate).acquire if rate else None

    async def worker(transport: SnmpTransport) -> None:
        for sequence, address in pending:
            summary.addresses += 1
            with structlog.contextvars.bound_contextvars(address=address):
                outcome = await read_device(
                    address,
                    snmp.credentials,
                    full_read_plan(),
                    snmp.read_deadline,
                    sessions=transport,
                    settings=settings,
                    pace=pace,
                )
            in_order.done(sequence, summary.count(outcome, output.note))
            progress.update(summary.addresses, summary.printers)

    # A worker's deliberate error reaches the CLI in an exception group: it reports one line.
    async with SnmpTransport(settings, trace=trace) as transport, asyncio.TaskGroup() as group:
        for number in range(snmp.concurrency):
            group.create_task(worker(transport), name=f"scan-worker-{number}")
    return summary


async def read_saved(path: Path, address: str) -> PrinterRead:
    """The read of a saved walk or recording; a line it cannot parse is an error (FILE:LINE)."""
    text = read_option_file(path, "--file", errors="surrogateescape")
    parse = load_varbinds if path.suffix == ".snmprec" or not looks_like_walk(text) else parse_walk
    try:
        varbinds = parse(text)
    except (SnmprecError, WalkError) as exc:
        line = getattr(exc, "line", None)
        raise LocalError(f"{path}:{line}: {str(exc).removeprefix(f'line {line}: ')}") from None
    # A saved walk answers at once: the deadline only bounds a pathological plan.
    return await read_session(RecordedSession(address, varbinds), full_read_plan(), deadline=60.0)


def scan_files(
    paths: Sequence[Path], targets: Sequence[str], show: Callable[..., ScanOutput]
) -> int:
    """Print each file like a scanned printer (``show(address_width=N)``), at the one TARGET
    given with a single ``--file`` or else at the file's name; exit 1 if none is a printer."""
    if targets and len(paths) != 1:
        raise UsageError("TARGET with --file: give one --file and at most one TARGET (its address)")
    if len(targets) > 1:
        raise UsageError("TARGET with --file: one address only (the device that was walked)")
    output = show(address_width=max(15, *(len(p.name) for p in paths), *(len(t) for t in targets)))
    printers = 0
    for path in paths:
        read = asyncio.run(read_saved(path, targets[0] if targets else path.name))
        if read.identity.is_printer:
            printers += 1
            output.row(read)
        else:
            what = read.identity.sys_descr or read.identity.sys_object_id or "no sysObjectID"
            output.note(f"{path}: not a printer's walk ({what[:60]})")
    output.finish()
    return 0 if printers else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "scan", help="read every printer among the targets once", doc=__doc__
    )
    add_target_options(parser)
    add = option_adder(parser, _HELP)
    add("--file", dest="walk_files", action="append", type=Path, default=[], metavar="WALK")
    add("--rate", type=bounded(float, 0, 100_000), metavar="PPS")
    add("--concurrency", type=bounded(int, 1, 4096), metavar="N")
    add("--deadline", type=bounded(float, 0.1, 600), metavar="SECONDS")
    add_snmp_options(parser)
    add_policy_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    configure_logging("warning", stream=sys.stderr)
    specs = target_specs_from_args(args)
    table = (args.format or default_format(sys.stdout)) == "table"
    show = partial(ScanOutput, sys.stdout, table=table, policy=policy_from_args(args))
    if args.walk_files:
        return scan_files(args.walk_files, specs.targets, show)
    if not specs.targets:
        raise UsageError("TARGET: give at least one target (or -iL FILE, or --file WALK)")
    snmp = snmp_config_from_args(
        args, config_from_args(args), concurrency=args.concurrency, read_deadline=args.deadline
    )
    try:
        targets = validate_targets(
            specs.targets,
            exclude=specs.exclude,
            allow_huge=args.allow_huge,
            allow_public=args.allow_public,
        )
    except TargetError as exc:
        raise specs.usage_error(exc) from None
    rate = DEFAULT_RATE if args.rate is None else (args.rate or None)
    trace = exchange_printer(args, sys.stderr)
    snmp = snmp.model_copy(update={"concurrency": min(snmp.concurrency, max(len(targets), 1))})
    width = 41 if any(":" in spec for spec in specs.targets) else 15  # a port, or IPv6
    with scan_progress(len(targets), sys.stderr) as progress:
        output = show(address_width=width, console=progress.console)
        result = asyncio.run(run_scan(targets, snmp, output, progress, rate=rate, trace=trace))
    output.finish()
    print(f"fleet-agent scan: {result.line()}", file=sys.stderr)
    _log.info("scan.completed", addresses=result.addresses, printers=result.printers)
    if len(targets) <= len(specs.targets):  # one address per spec: named hosts, not a sweep
        for hint in result.hints(snmp.credentials, args.community or ()):
            print(f"fleet-agent scan: {hint}", file=sys.stderr)
    return 0 if result.printers else 1
