"""``fleet-agent eligibility``: the managed-print eligibility report of one site.

    fleet-agent scan 10.20.0.0/24 --format json > reads.jsonl
    fleet-agent eligibility --policy policy.yaml --reads reads.jsonl
    fleet-agent eligibility --policy policy.yaml --state-dir /var/lib/fleet-agent --format csv

Per device: id, serial, model, location, start page count, verdict and every
reason; then the site summary (counts, duplicate serials, model groups left
incomplete, onboarding method). Reads come from ``--reads FILE`` (JSON lines
as printed by ``fleet-agent scan --format json``; ``-`` for standard input) or
from the inventory of ``--state-dir`` (the daemon's, or the one ``fleet-agent
discover --read`` fills). Contacts come from ``--contacts FILE.csv`` when
given, else from the policy. Devices come in address order, as in ``scan`` and
``inventory``.

``--format table`` shows the devices, then the site summary; ``json`` is one
document with ``devices`` and ``summary``; ``csv`` is one table (one header,
one row per device) and the site summary goes to stderr as ``label: value``
lines.

Exit status: 0 when the report was printed; 1 when there is nothing to judge
yet (no inventory, no device read, no reads in the file); 2 for a bad argument,
policy, contacts or reads file (the message names file, line and field).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

import structlog

from agent.cli_help import add_command
from agent.eligibility.contacts import load_contacts
from agent.eligibility.fleet import evaluate_fleet
from agent.eligibility.policy import load_policy
from agent.eligibility.reads import parse_reads
from agent.eligibility.report import ReportFormat, summary_lines, write_report
from agent.errors import ConfigError, NothingYet, UsageError
from agent.inventory import Inventory
from agent.logging import configure_logging
from agent.state import inventory_path
from mibs.models import PrinterRead

_log = structlog.get_logger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "eligibility", help="managed-print eligibility report of a site", doc=__doc__
    )
    parser.add_argument(
        "--policy", required=True, type=Path, metavar="FILE", help="contract policy (YAML)"
    )
    parser.add_argument(
        "--contacts",
        type=Path,
        metavar="FILE.csv",
        help="supplies delivery contacts (CSV); default: the contacts in the policy",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--reads",
        metavar="FILE",
        help="reads as JSON lines from 'fleet-agent scan --format json'; '-' for stdin",
    )
    source.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help="judge the devices in the inventory of this state directory (the daemon's, "
        "or the one 'fleet-agent discover --read' fills): last read for the verdict, "
        "first for the start page count",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default=None,
        help="table on a terminal, JSON otherwise (default); csv: one row per device, "
        "the site summary on stderr",
    )
    parser.set_defaults(handler=run)


def _reads(spec: str, stdin: TextIO) -> list[PrinterRead]:
    if spec == "-":
        return parse_reads(stdin, source="<stdin>")
    path = Path(spec)
    try:
        with path.open(encoding="utf-8") as stream:
            return parse_reads(stream, source=str(path))
    except FileNotFoundError:
        raise UsageError(f"--reads: {path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 ({exc.reason})", path=str(path)) from exc
    except OSError as exc:
        raise UsageError(f"--reads: {path}: {exc.strerror or exc}") from exc


def _inventory_reads(state_dir: Path) -> list[PrinterRead]:
    path = inventory_path(state_dir)
    if not path.is_file():
        raise NothingYet(
            f"--state-dir: {state_dir}: no inventory ({path.name}) there yet "
            "(run the daemon, or 'fleet-agent discover --read')"
        )
    with Inventory(path) as inventory:
        reads = inventory.stored_reads()
    if not reads:
        raise NothingYet(
            f"--state-dir: {state_dir}: no device has been read yet "
            "(run the daemon, or 'fleet-agent discover --read')"
        )
    return reads


def run(
    args: argparse.Namespace, *, stdout: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    out = stdout if stdout is not None else sys.stdout
    configure_logging("warning", stream=sys.stderr)
    if not args.policy.is_file():
        raise UsageError(f"--policy: {args.policy}: file not found")
    policy = load_policy(args.policy)
    contacts = None
    if args.contacts is not None:
        if not args.contacts.is_file():
            raise UsageError(f"--contacts: {args.contacts}: file not found")
        contacts = load_contacts(args.contacts)
    if args.state_dir is not None:
        reads = _inventory_reads(args.state_dir)
    else:
        reads = _reads(args.reads, stdin if stdin is not None else sys.stdin)
        if not reads:
            raise NothingYet(f"--reads: {args.reads}: holds no reads")
    report = evaluate_fleet(reads, policy, contacts=contacts)
    output: ReportFormat = args.format or ("table" if out.isatty() else "json")
    write_report(out, report, output)
    summary = report.summary
    if output == "csv":
        for line in summary_lines(summary):
            print(f"fleet-agent eligibility: {line}", file=sys.stderr)
    _log.info(
        "eligibility.reported",
        policy_version=policy.version,
        devices=summary.devices,
        eligible=summary.eligible,
        onboarding_method=summary.onboarding_method,
    )
    return 0
