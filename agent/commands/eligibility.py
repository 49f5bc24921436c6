"""``fleet-agent eligibility``: the managed-print eligibility report of one site.

Per device: id, serial, model, location, start page count, verdict and every
reason; then the site summary (counts, duplicate serials, model groups left
incomplete, onboarding method). Reads come from ``--reads FILE`` (JSON lines
as printed by ``fleet-agent scan --format json``; ``-`` for standard input).
Contacts come from ``--contacts FILE.csv`` when given, else from the policy.
Exit status: 0 when the report was printed; 2 for a bad argument, policy,
contacts or reads file (the message names file, line and field).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

import structlog

from agent.eligibility.contacts import load_contacts
from agent.eligibility.fleet import evaluate_fleet
from agent.eligibility.policy import load_policy
from agent.eligibility.reads import parse_reads
from agent.eligibility.report import ReportFormat, write_report
from agent.errors import ConfigError, UsageError
from agent.inventory import Inventory
from agent.logging import configure_logging
from agent.state import inventory_path
from mibs.models import PrinterRead

_log = structlog.get_logger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "eligibility",
        help="managed-print eligibility report of a site",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
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
        "or `fleet-agent discover --read`'s): last read for the verdict, first for the "
        "start page count",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default=None,
        help="table on a terminal, JSON otherwise (default)",
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
        raise UsageError(f"--state-dir: {state_dir}: no inventory ({path.name}) there")
    with Inventory(path) as inventory:
        reads = inventory.stored_reads()
    if not reads:
        raise UsageError(
            f"--state-dir: {state_dir}: no device has been read yet "
            "(run the daemon, or `fleet-agent discover --read`)"
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
            raise UsageError(f"--reads: {args.reads}: holds no reads")
    report = evaluate_fleet(reads, policy, contacts=contacts)
    output: ReportFormat = args.format or ("table" if out.isatty() else "json")
    write_report(out, report, output)
    summary = report.summary
    _log.info(
        "eligibility.reported",
        policy_version=policy.version,
        devices=summary.devices,
        eligible=summary.eligible,
        onboarding_method=summary.onboarding_method,
    )
    return 0
