"""``fleet-agent scan``: read every printer among the targets once and print what was found.

One row (table) or one JSON line (``--format json``, the read schema in
``docs/schema/read.schema.json``) per printer. Devices that answer SNMP but are
not printers are skipped (named on stderr in table mode); silent addresses are
skipped quietly. A summary line on stderr counts both. Exit status: 0 when the
scan ran, even if a sweep found nothing; 1 when the targets name hosts one by
one and none of them answered (stderr says which, with a hint) or on any other
failure; 2 for a bad argument (the message names it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import structlog

from agent.commands._snmp_options import (
    add_config_options,
    add_snmp_options,
    add_target_options,
    bounded,
    config_from_args,
    snmp_config_from_args,
)
from agent.eligibility.policy import Policy
from agent.eligibility.scanning import (
    add_policy_option,
    policy_from_args,
    verdict_table,
    with_eligibility,
)
from agent.errors import UsageError
from agent.logging import configure_logging
from agent.output import (
    OutputFormat,
    default_format,
    json_line,
    print_table,
    printer_table,
    write_line,
)
from collectors.credentials import Credential
from collectors.reader import SessionSource, read_device
from collectors.targets import TargetError, validate_targets
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


async def run_scan(
    transport: SessionSource,
    addresses: Iterable[str],
    snmp: SnmpConfig,
    *,
    emit: Emit,
    note: Note,
) -> ScanSummary:
    """Read every address with at most ``snmp.concurrency`` devices in flight."""
    summary = ScanSummary()
    pending: Iterator[str] = iter(addresses)
    settings = snmp.transport_settings()

    async def worker() -> None:
        for address in pending:
            summary.addresses += 1
            with structlog.contextvars.bound_contextvars(address=address):
                outcome = await read_device(
                    address,
                    snmp.credentials,
                    full_read_plan(),
                    snmp.read_deadline,
                    sessions=transport,
                    settings=settings,
                )
            read = outcome.read
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
                continue
            if not read.identity.is_printer and _cut_short(read):
                summary.incomplete += 1
                note(f"{address}: answered, then fell silent before it could be identified")
                continue
            if not read.identity.is_printer:
                summary.not_printers += 1
                what = read.identity.sys_descr or read.identity.sys_object_id or "?"
                note(f"{address}: answers SNMP but is not a printer ({what[:60]}), skipped")
                continue
            summary.printers += 1
            emit(read)

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
    addresses: Iterable[str], snmp: SnmpConfig, *, emit: Emit, note: Note
) -> ScanSummary:
    from collectors.transport import SnmpTransport

    async with SnmpTransport(snmp.transport_settings()) as transport:
        return await run_scan(transport, addresses, snmp, emit=emit, note=note)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="read every printer among the targets once",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    add_target_options(parser)
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


def run(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    configure_logging("warning", stream=sys.stderr)
    snmp = snmp_config_from_args(
        args, config_from_args(args), concurrency=args.concurrency, read_deadline=args.deadline
    )
    try:
        targets = validate_targets(
            args.targets,
            exclude=args.exclude,
            allow_huge=args.allow_huge,
            allow_public=args.allow_public,
        )
    except TargetError as exc:
        option = "--exclude" if any(exc.spec == spec for spec in args.exclude) else "TARGET"
        raise UsageError(f"{option}: {exc}") from None
    output: OutputFormat = args.format or default_format(out)
    policy = policy_from_args(args)

    def note(message: str) -> None:
        if output == "table":
            print(f"fleet-agent scan: {message}", file=sys.stderr)

    table_rows: list[PrinterRead] = []

    def emit(read: PrinterRead) -> None:
        if output == "json":
            write_line(out, json_line(scan_record(read, policy)))
        else:
            table_rows.append(read)

    snmp = snmp.model_copy(update={"concurrency": min(snmp.concurrency, max(len(targets), 1))})
    result = asyncio.run(_scan(targets, snmp, emit=emit, note=note))
    if output == "table":
        table = printer_table(table_rows) if policy is None else verdict_table(table_rows, policy)
        print_table(out, table)
    print(f"fleet-agent scan: {result.line()}", file=sys.stderr)
    _log.info("scan.completed", addresses=result.addresses, printers=result.printers)
    named_hosts = len(targets) <= len(args.targets)  # one address per spec: not a sweep
    if named_hosts and result.silent:
        for hint in silent_hints(result, snmp.credentials, typed=args.community or ()):
            print(f"fleet-agent scan: {hint}", file=sys.stderr)
    if named_hosts and result.addresses and result.silent == result.addresses:
        return 1
    return 0
