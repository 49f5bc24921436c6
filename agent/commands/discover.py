"""``fleet-agent discover``: sweep targets, identify printers, keep them in the inventory.

Targets come from the command line, or from ``discovery.targets`` of ``--config``.
Each printer found is recorded in ``<state-dir>/inventory.db`` (the daemon polls from it).

    fleet-agent discover 10.20.0-3.1-254 --exclude 10.20.1.0/24 -c public
    fleet-agent discover -iL ranges.txt --exclude-file printers-we-skip.txt --rate 50
    fleet-agent discover --config /etc/fleet-agent/config.yaml --read

Exit status: 0 when the sweep found a printer, 1 when it found none (or on a failure),
2 for a bad argument or configuration. Output: docs/discovery.md, "Output".
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import structlog
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
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
    snmp_config_from_args,
    target_specs_from_args,
)
from agent.config import DiscoveryConfig, SnmpConfig
from agent.errors import UsageError
from agent.inventory import DiscoveryOutcome, Inventory
from agent.logging import configure_logging
from agent.output import default_format, json_line, print_table, write_line
from agent.state import default_state_dir, inventory_path
from collectors.discovery import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_RATE,
    AddressResult,
    DiscoveryOptions,
    Sweep,
    SweepStats,
)
from collectors.targets import TargetError, TargetSet, address_key, validate_targets

if TYPE_CHECKING:
    from collectors.transport import Trace


#: A fresh logger per event: each CLI run (a test's too) configures logging anew.
_log = partial(structlog.get_logger, __name__)
PROGRESS_LOG_INTERVAL = 5.0  # seconds between discovery.progress events off a terminal
#: Help texts of discover's own options, by destination.
_HELP = {
    "rate": f"packets per second for the whole sweep (default {DEFAULT_RATE:g}; 0: no limit)",
    "max_in_flight": f"addresses probed at once (default {DEFAULT_MAX_IN_FLIGHT})",
    "read": "also read meters, supplies and status of each printer (lifetime pages)",
    "state_dir": "holds inventory.db (default $FLEET_AGENT_STATE_DIR or /var/lib/fleet-agent)",
}


@dataclass(frozen=True)
class Plan:
    """Everything the sweep needs, merged from the command line and the configuration."""

    targets: TargetSet
    snmp: SnmpConfig
    options: DiscoveryOptions
    state_dir: Path
    read_printers: bool = False


def build_plan(args: argparse.Namespace) -> Plan:
    """Command line over configuration over defaults; :class:`UsageError` names the option."""
    config = config_from_args(args)
    found = config.discovery if config is not None else DiscoveryConfig()
    given = target_specs_from_args(args)
    specs = given.targets or list(found.targets)
    exclude = given.exclude or list(found.exclude)
    if not specs:
        where = f"discovery.targets in {args.config}" if config is not None else "TARGET"
        raise UsageError(f"nothing to sweep: give targets (none in {where})")
    try:
        targets = validate_targets(
            specs,
            exclude=exclude,
            allow_huge=args.allow_huge or found.allow_huge,
            allow_public=args.allow_public or found.allow_public,
        )
    except TargetError as exc:
        if exc.spec in given.origin or exc.spec in given.exclude or exc.spec in given.targets:
            raise given.usage_error(exc) from None
        where = f"discovery.exclude in {args.config}" if exc.spec in exclude else "TARGET"
        if exc.spec in found.targets:
            where = f"discovery.targets in {args.config}"
        raise UsageError(f"{where}: {exc}") from None
    state_dir = args.state_dir or (config.state_dir if config is not None else default_state_dir())
    rate = found.rate if args.rate is None else args.rate
    options = DiscoveryOptions(
        rate=rate or None, max_in_flight=args.max_in_flight or found.max_in_flight
    )
    return Plan(targets, snmp_config_from_args(args, config), options, state_dir, args.read)


def discover_record(result: AddressResult, outcome: DiscoveryOutcome) -> dict[str, Any]:
    """The JSON object printed for one printer."""
    identity = result.identity
    return {
        "address": result.address,
        "device_id": outcome.device_id,
        **{
            name: getattr(identity, name) if identity else None
            for name in ("vendor", "model", "serial", "mac", "sys_object_id")
        },
        "credential": result.credential,
        "new": outcome.new,
        "moved_from": outcome.moved_from,
        "duplicate_serial": outcome.duplicate_serial,
        "lifetime_pages": result.read.counters.total if result.read else None,
    }


def summary_line(stats: SweepStats) -> str:
    parts = [
        f"{stats.done} address{'es' if stats.done != 1 else ''} tried",
        f"{stats.printers} printer{'s' if stats.printers != 1 else ''}",
        f"{stats.others} other SNMP device{'s' if stats.others != 1 else ''}",
        f"{stats.silent} silent",
    ]
    if stats.refused:
        parts.append(f"{stats.refused} refused every credential")
    parts.append(f"{stats.elapsed:.1f} s")
    return ", ".join(parts)


def _found_table(records: list[dict[str, Any]]) -> Table:
    table = Table(title="Printers found")
    for name in ("Address", "Device id", "Vendor", "Model", "Serial", "Note"):
        table.add_column(name, no_wrap=name in ("Address", "Device id", "Serial"))
    for record in records:
        notes = {
            "new": record["new"],
            f"moved from {record['moved_from']}": record["moved_from"],
            "DUPLICATE SERIAL": record["duplicate_serial"],
        }
        # Device text as Text: a model like "[bold]x" is printed literally, not as rich markup.
        cells = [Text(record[key] or "-") for key in ("device_id", "vendor", "model", "serial")]
        table.add_row(record["address"], *cells, ", ".join(n for n, on in notes.items() if on))
    return table


@contextmanager
def _progress(stats_of: Callable[[], SweepStats], stream: TextIO) -> Iterator[Callable[[], None]]:
    """A rich progress bar on a terminal, ``discovery.progress`` events otherwise."""
    shown = stream.isatty()
    with Progress(
        TextColumn("[bold]discover"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TextColumn("{task.fields[printers]} printers"),
        TextColumn("{task.fields[rate]:,.0f} addr/s"),
        TextColumn("ETA {task.fields[eta]}"),
        TimeElapsedColumn(),
        console=Console(file=stream),
        disable=not shown,
    ) as bar:
        task = bar.add_task("sweep", total=stats_of().total, printers=0, rate=0.0, eta="-")

        def tick() -> None:
            stats = stats_of()
            if shown:
                eta = "-" if stats.eta is None else f"{stats.eta:,.0f}s"
                bar.update(
                    task, completed=stats.done, printers=stats.printers, rate=stats.rate, eta=eta
                )
                return
            _log().info(
                "discovery.progress",
                done=stats.done,
                total=stats.total,
                printers=stats.printers,
                rate=round(stats.rate, 1),
                eta=None if stats.eta is None else round(stats.eta, 1),
            )

        yield tick
        if shown:
            tick()


async def _sweep(
    plan: Plan,
    inventory: Inventory,
    records: list[dict[str, Any]],
    stream: TextIO,
    trace: Trace | None,
) -> SweepStats:
    """Sweep, record each printer in ``inventory`` and its output record in ``records``."""
    from collectors.transport import SnmpTransport

    started = datetime.now(UTC)
    settings = plan.snmp.transport_settings()
    async with SnmpTransport(settings, trace=trace) as transport:
        sweep = Sweep(
            plan.targets,
            plan.snmp.credentials,
            settings,
            transport=transport,
            options=plan.options,
            known_profiles=inventory.known_profiles(),
            read_printers=plan.read_printers,
        )

        def on_result(result: AddressResult) -> None:
            if result.status == "printer" and result.identity is not None:
                outcome = inventory.record_discovery(
                    result.address,
                    result.identity,
                    device_key=result.device_id,
                    credential_profile=result.credential,
                    sweep_started=started,
                )
                if result.read is not None:
                    inventory.record_read(outcome.device_id, result.read)
                records.append(discover_record(result, outcome))
            elif result.status == "refused":
                _log().warning("discovery.refused", address=result.address, why=result.refusals)

        with _progress(lambda: sweep.stats, stream) as tick:
            interval = 0.2 if stream.isatty() else PROGRESS_LOG_INTERVAL
            ticker = asyncio.create_task(_tick(tick, interval), name="discovery-progress")
            try:
                return await sweep.run(on_result)
            finally:
                ticker.cancel()


async def _tick(tick: Callable[[], None], interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        tick()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "discover",
        help="sweep addresses for printers and record them in the inventory",
        doc=__doc__,
    )
    add_target_options(parser, default_help="discovery.targets of --config")
    add = option_adder(parser, _HELP)
    add("--rate", type=bounded(float, 0, 100_000), default=None, metavar="PPS")
    add("--max-in-flight", type=bounded(int, 1, 8192), default=None, metavar="N")
    add("--read", action="store_true")
    add("--state-dir", type=Path, default=None, metavar="DIR")
    add_snmp_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out, err = sys.stdout, sys.stderr
    configure_logging("info" if not err.isatty() else "warning", stream=err)
    plan = build_plan(args)
    records: list[dict[str, Any]] = []
    with Inventory(inventory_path(plan.state_dir)) as inventory:
        stats = asyncio.run(_sweep(plan, inventory, records, err, exchange_printer(args, err)))
    # Printers answer in any order; both formats list them in address order, as scan does.
    records.sort(key=lambda r: address_key(r["address"]))
    if (args.format or default_format(out)) == "table":
        print_table(out, _found_table(records))
    else:
        for record in records:
            write_line(out, json_line(record))
    print(f"fleet-agent discover: {summary_line(stats)}", file=err)
    return 0 if stats.printers else 1
