"""``fleet-agent scan --policy FILE``: a verdict on every read scan prints.

Each JSON line gets ``"eligibility": {"eligible", "reasons", "policy_version"}``
(per-device rules only: the fleet rules, such as duplicate serials, need the
whole site and live in ``fleet-agent eligibility``), and the table gets an
eligibility column.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from agent.eligibility.policy import Policy, load_policy
from agent.eligibility.report import verdict_cell
from agent.eligibility.rules import evaluate_read
from agent.errors import UsageError
from agent.output import lowest_supply
from collectors.targets import address_key
from mibs.identity import stable_device_id
from mibs.models import PrinterRead


def add_policy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        type=Path,
        default=None,
        metavar="FILE",
        help="eligibility policy (YAML): add a verdict to every read",
    )


def policy_from_args(args: argparse.Namespace) -> Policy | None:
    path: Path | None = getattr(args, "policy", None)
    if path is None:
        return None
    if not path.is_file():
        raise UsageError(f"--policy: {path}: file not found")
    return load_policy(path)


def with_eligibility(record: dict[str, Any], read: PrinterRead, policy: Policy) -> dict[str, Any]:
    """``record`` (a read's JSON object) with the read's verdict under ``"eligibility"``."""
    verdict = evaluate_read(read, policy, device_id=stable_device_id(read.identity))
    return record | {"eligibility": verdict.model_dump(mode="json")}


def verdict_table(reads: Iterable[PrinterRead], policy: Policy) -> Table:
    """scan's printer table with an eligibility column."""
    table = Table(title=f"Eligibility under policy {policy.version}")
    for name, justify in (
        ("Address", "left"),
        ("Vendor", "left"),
        ("Model", "left"),
        ("Serial", "left"),
        ("Lifetime pages", "right"),
        ("Lowest supply", "left"),
        ("Eligibility", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for read in sorted(reads, key=lambda r: address_key(r.address)):
        identity = read.identity
        total = read.counters.total
        verdict = evaluate_read(read, policy, device_id=stable_device_id(identity))
        cells = (
            read.address,
            identity.vendor or "-",
            identity.model or "-",
            identity.serial or "-",
            "-" if total is None else f"{total:,}",
            lowest_supply(read),
            verdict_cell(verdict),
        )
        table.add_row(*(Text(cell) for cell in cells))  # device text is not rich markup
    return table
