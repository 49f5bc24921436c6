"""``fleet-agent scan``: read every printer among the targets once and print what was found.

    fleet-agent scan 10.20.0.0/24 -c public
    fleet-agent scan -v 2c -c public 10.20.0.17 --format json
    fleet-agent scan 10.20.0.17,10.20.0.18:1161 -v
    fleet-agent scan -iL printers.txt --rate 50
    fleet-agent scan --file printer.walk

One row (table) or one JSON line (``--format json``, the read schema in
``docs/schema/read.schema.json``) per printer, printed as soon as the printer and
every address before it are done, so rows come while the scan runs and always in
address order. Devices that answer SNMP but are not printers are skipped (named
on stderr in table mode); silent addresses are skipped quietly. A summary line
on stderr counts both; on a terminal a progress bar shows while the scan runs.
``--rate`` caps the packets per second, as in discovery; ``-v`` prints every SNMP
exchange on stderr. ``--file WALK`` reads a saved ``snmpwalk -On`` output or an
``.snmprec`` recording instead of a device, through the same decoders.

Exit status: 0 when at least one printer was read; 1 when none was (a host
named on its own that never answered gets a hint on stderr: wrong community,
SNMP off, or a firewall) or on any other failure; 2 for a bad argument (the
message names it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import structlog
from rich.console import Console

from agent.cli_help import add_command
from agent.commands._scan_view import InOrder, RowPrinter, scan_progress
from agent.commands._snmp_options import (
    add_config_options,
    add_snmp_options,
    bounded,
    config_from_args,
    exchange_printer,
    snmp_config_from_args,
)
from agent.commands._target_options import add_target_options, target_specs_from_args
from agent.eligibility.policy import Policy
from agent.eligibility.scanning import add_policy_option, policy_from_args, with_eligibility
from agent.errors import UsageError
from agent.logging import configure_logging
from agent.output import OutputFormat, default_format, json_line, write_line
from collectors.credentials import Credential
from collectors.discovery import DEFAULT_RATE
from collectors.ratelimit import TokenBucket
from collectors.reader import ReadOutcome, SessionSource, read_device
from collectors.targets import TargetError, validate_targets
from collectors.trace import Exchange
from fleet_errors import known_error
from mibs.models import PrinterRead
from mibs.plan import full_read_plan

if TYPE_CHECKING:
    from agent.config import SnmpConfig

#: Silent addresses named in the "no answer" hint (a named-host scan names few).
_SILENT_NAMED = 20
_log = structlog.get_logger(__name__)


def scan_record(read: PrinterRead, policy: Policy | None = None) -> dict[str, Any]:
    """The JSON object printed for one printer: the read as the read schema describes it.

    With a ``policy`` (``--policy FILE``) it also carries the read's ``"eligibility"`` verdict.
    """
    record = read.model_dump(mode="json")
    return record if policy is None else with_eligibility(record, read, policy)


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


Emit = Callable[[PrinterRead], None]
Note = Callable[[str], None]
Tick = Callable[[ScanSummary], None]


async def run_scan(
    transport: SessionSource,
    addresses: Iterable[str],
    snmp: SnmpConfig,
    *,
    emit: Emit,
    note: Note,
    rate: float | None = None,
    tick: Tick | None = None,
) -> ScanSummary:
    """Read every address with at most ``snmp.concurrency`` devices in flight.

    ``emit`` gets the printers in the order of ``addresses``, each as soon as it and
    every address before it are done. With ``rate`` every packet (retries included)
    first takes a token from a packets-per-second bucket, as a discovery sweep does.
    ``tick`` is called after each address (the progress display).
    """
    summary = ScanSummary()
    pending: Iterator[tuple[int, str]] = enumerate(addresses)
    settings = snmp.transport_settings()
    in_order: InOrder[PrinterRead] = InOrder(emit)
    pace = TokenBucket(rate).acquire if rate else None

    async def worker() -> None:
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
            in_order.done(sequence, _printer(outcome, summary, note))
            if tick is not None:
                tick(summary)

    try:
        async with asyncio.TaskGroup() as group:
            for number in range(snmp.concurrency):
                group.create_task(worker(), name=f"scan-worker-{number}")
    except BaseExceptionGroup as failure:
        error = known_error(failure)  # a worker's deliberate error: the CLI reports one line
        if error is None:
            raise
        raise error from None
    return summary


def _printer(outcome: ReadOutcome, summary: ScanSummary, note: Note) -> PrinterRead | None:
    """The printer's read, or None after counting (and noting) why there is none."""
    address, read = outcome.address, outcome.read
    if read is None:
        if outcome.kind == "silent":
            summary.silent += 1
            if len(summary.silent_addresses) < _SILENT_NAMED:
                summary.silent_addresses.append(address)
        elif outcome.kind == "refused":
            summary.refused += 1
            note(f"{address}: every credential refused ({outcome.detail})")
        else:
            summary.failed += 1
            note(f"{address}: {outcome.detail}")
        return None
    if not read.identity.is_printer and _cut_short(read):
        summary.incomplete += 1
        note(f"{address}: answered, then fell silent before it could be identified")
        return None
    if not read.identity.is_printer:
        summary.not_printers += 1
        what = read.identity.sys_descr or read.identity.sys_object_id or "?"
        note(f"{address}: answers SNMP but is not a printer ({what[:60]}), skipped")
        return None
    summary.printers += 1
    return read


def credentials_text(credentials: Sequence[Credential], *, typed: Sequence[str] = ()) -> str:
    """How the credentials tried read in a hint. A community is shown only when it is in
    ``typed`` (the user's own command-line text); one from a file is named by its profile;
    a v3 profile by its user, never by its keys."""
    communities = [
        repr(secret) if secret in typed else f"of profile {c.name!r}"
        for c in credentials
        if c.community is not None
        for secret in [c.community.get_secret_value()]
    ]
    users = [c.username for c in credentials if c.version == "v3"]
    parts: list[str] = []
    if communities:
        version = next(c.version for c in credentials if c.community is not None)
        noun = "community" if len(communities) == 1 else "communities"
        parts.append(f"{version} {noun} " + ", ".join(communities))
    if users:
        parts.append("v3 user " + ", ".join(repr(u) for u in users))
    return " or ".join(parts)


def silent_hints(
    summary: ScanSummary, credentials: Sequence[Credential], *, typed: Sequence[str] = ()
) -> list[str]:
    """One line per silent address: what was tried and what usually causes the silence."""
    tried = credentials_text(credentials, typed=typed)
    return [
        f"no answer from {address} with {tried}: wrong community, SNMP off, or a firewall?"
        if any(c.community is not None for c in credentials)
        else f"no answer from {address} with {tried}: wrong user or keys, SNMP off, or a firewall?"
        for address in summary.silent_addresses
    ]


def _cut_short(read: PrinterRead) -> bool:
    """The read stopped early (silence or deadline), so "not a printer" is not known."""
    return any(problem.reason in ("timeout", "deadline") for problem in read.problems)


async def _scan(
    addresses: Iterable[str],
    snmp: SnmpConfig,
    *,
    emit: Emit,
    note: Note,
    rate: float | None,
    tick: Tick,
    trace: Callable[[Exchange], None] | None,
) -> ScanSummary:
    from collectors.transport import SnmpTransport

    async with SnmpTransport(snmp.transport_settings(), trace=trace) as transport:
        return await run_scan(
            transport, addresses, snmp, emit=emit, note=note, rate=rate, tick=tick
        )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "scan", help="read every printer among the targets once", doc=__doc__
    )
    add_target_options(parser)
    parser.add_argument(
        "--file",
        dest="walk_files",
        action="append",
        type=Path,
        default=[],
        metavar="WALK",
        help="read a saved 'snmpwalk -On' output or .snmprec recording instead of a device "
        "(repeatable; with one TARGET, that is the address the read carries)",
    )
    parser.add_argument(
        "--rate",
        type=bounded(float, 0, 100_000),
        default=None,
        metavar="PPS",
        help=f"packets per second for the whole scan (default {DEFAULT_RATE:g}; 0: no limit)",
    )
    parser.add_argument(
        "--concurrency",
        type=bounded(int, 1, 4096),
        default=None,
        metavar="N",
        help="devices read at once (default: snmp.concurrency, 64)",
    )
    parser.add_argument(
        "--deadline",
        type=bounded(float, 0.1, 600),
        default=None,
        metavar="SECONDS",
        help="cap on one device's whole read, every profile tried (default 30)",
    )
    add_config_options(parser)
    add_snmp_options(parser)
    add_policy_option(parser)
    parser.set_defaults(handler=run)


class _Output:
    """Where reads go: JSON lines, or table rows (through the progress bar's console)."""

    def __init__(self, out: TextIO, output: OutputFormat, policy: Policy | None) -> None:
        self.out, self.output, self.policy = out, output, policy
        self.rows: RowPrinter | None = None

    def start(self, console: Console | None, address_width: int) -> None:
        if self.output == "table":
            shared = console if console is not None and self.out.isatty() else None
            self.rows = RowPrinter(
                self.out, policy=self.policy, address_width=address_width, console=shared
            )

    def emit(self, read: PrinterRead) -> None:
        if self.rows is not None:
            self.rows.row(read)
        else:
            write_line(self.out, json_line(scan_record(read, self.policy)))

    def note(self, message: str) -> None:
        if self.output == "table":
            print(f"fleet-agent scan: {message}", file=sys.stderr)

    def finish(self) -> None:
        if self.rows is not None:
            self.rows.finish()


def run(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    configure_logging("warning", stream=sys.stderr)
    specs = target_specs_from_args(args)
    output = _Output(out, args.format or default_format(out), policy_from_args(args))
    if args.walk_files:
        from agent.commands._scan_file import scan_files

        return scan_files(args.walk_files, specs.targets, output)
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
    with scan_progress(len(targets), sys.stderr) as progress:
        output.start(progress.console, _address_width(specs.targets))
        result = asyncio.run(
            _scan(
                targets,
                snmp,
                emit=output.emit,
                note=output.note,
                rate=rate,
                tick=lambda summary: progress.update(summary.addresses, summary.printers),
                trace=trace,
            )
        )
    output.finish()
    print(f"fleet-agent scan: {result.line()}", file=sys.stderr)
    _log.info("scan.completed", addresses=result.addresses, printers=result.printers)
    named_hosts = len(targets) <= len(specs.targets)  # one address per spec: not a sweep
    if named_hosts and result.silent:
        for hint in silent_hints(result, snmp.credentials, typed=args.community or ()):
            print(f"fleet-agent scan: {hint}", file=sys.stderr)
    return 0 if result.printers else 1


def _address_width(specs: Sequence[str]) -> int:
    """15 for IPv4 addresses; wider when a target carries a port or is IPv6."""
    return 15 if not any(":" in spec for spec in specs) else 41
