"""``fleet-agent agents``: which agents and devices have fallen silent, from the backend's store.

    fleet-agent agents --store sqlite:///fleet.db
    fleet-agent agents --store postgresql://... --silent-after 15m --min-version 0.9.0 --check

Lists every agent the consumer (``fleet-agent ingest``) heard from: its last
heartbeat, version, configuration version, upload queue and last good read;
agents not heard from for ``--silent-after`` (default 15m) are SILENT, agents
below ``--min-version`` are OUTDATED (an agent that never sent a heartbeat is
silent, and outdated when a minimum is given). Then the devices reported silent
(``device_silent`` with no ``device_back`` since), per site.

``--format table`` (default on a terminal), ``json`` (one document) or ``csv``
(one header, one row per agent and per silent device; ``record`` says which).

Exit status: 0; with ``--check``, 1 when something needs attention (a silent or
outdated agent, a silent device), so a cron job or a monitoring check can alert;
2 for a bad argument.
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from packaging.version import InvalidVersion, Version
from rich.table import Table

from agent.cli_help import add_command
from agent.commands.inventory import spreadsheet_safe
from agent.config import parse_duration
from agent.errors import UsageError
from agent.output import OutputError, print_table, write_line
from backend.agents import FleetLiveness, fleet_liveness, report_json
from backend.store import open_store

DEFAULT_SILENT_AFTER = 900.0
CSV_COLUMNS = (
    "record",
    "site",
    "agent_id",
    "device_id",
    "address",
    "agent_version",
    "config_version",
    "last_heartbeat_at",
    "last_heard_at",
    "age_s",
    "queue_depth",
    "queue_oldest_age_s",
    "last_good_read_at",
    "devices_silent",
    "silent",
    "below_min_version",
    "silent_since",
    "missed_reads",
    "reason",
)


def duration_arg(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return seconds


def version_arg(text: str) -> str:
    try:
        Version(text)
    except InvalidVersion:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version like 0.9.0") from None
    return text


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "agents",
        help="agents and devices that fell silent, agents below a version (backend store)",
        doc=__doc__,
    )
    parser.add_argument(
        "--store",
        "--db",
        dest="store",
        required=True,
        metavar="DSN",
        help="the backend's store: sqlite:///file.db or postgresql://...",
    )
    parser.add_argument(
        "--silent-after",
        type=duration_arg,
        default=DEFAULT_SILENT_AFTER,
        metavar="DURATION",
        help="an agent unheard this long is silent: 15m (default), 1h, 90s",
    )
    parser.add_argument(
        "--min-version", type=version_arg, metavar="X.Y.Z", help="flag agents below this version"
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default=None,
        help="table on a terminal, JSON otherwise (default); csv for spreadsheets",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when something needs attention"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    url: str = args.store
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise UsageError(f"--store {url!r}: expected sqlite:///file.db or postgresql://...")
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise UsageError(f"--store {url}: no such file (the store `fleet-agent ingest` writes)")
    store = open_store(url)
    try:
        report = fleet_liveness(
            store,
            now=datetime.now(UTC),
            silent_after=args.silent_after,
            min_version=args.min_version,
        )
    finally:
        store.close()
    output = args.format or ("table" if out.isatty() else "json")
    if output == "json":
        write_line(out, report_json(report))
    elif output == "csv":
        write_csv(out, report)
    else:
        print_table(out, agents_table(report))
        if report.silent_devices:
            print_table(out, devices_table(report))
        write_line(out, summary(report))
    return 1 if args.check and report.needs_attention else 0


def summary(report: FleetLiveness) -> str:
    sites = report.silent_devices_by_site()
    per_site = ", ".join(f"{site} {count}" for site, count in sites.items()) or "none"
    return (
        f"{len(report.agents)} agents: {len(report.silent_agents)} silent "
        f"(unheard for {report.silent_after_s:g} s), {len(report.outdated_agents)} below "
        f"{report.min_version or 'no minimum'}; silent devices by site: {per_site}"
    )


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def agents_table(report: FleetLiveness) -> Table:
    table = Table(title=f"{len(report.agents)} agents")
    columns = ("Site", "Agent", "Version", "Config", "Last heartbeat", "Heard", "Queue")
    for name in (*columns, "Last good read", "Silent devices", "State"):
        table.add_column(name, no_wrap=name in ("Agent", "Last heartbeat", "Last good read"))
    for agent in report.agents:
        state = [
            word
            for word, on in (("SILENT", agent.silent), ("OUTDATED", agent.below_min_version))
            if on
        ]
        queue = "-" if agent.queue_depth is None else str(agent.queue_depth)
        if agent.queue_oldest_age_s:
            queue += f" (oldest {_age(agent.queue_oldest_age_s)})"
        table.add_row(
            agent.site or "-",
            agent.agent_id,
            agent.agent_version or "-",
            agent.config_version or "-",
            _when(agent.last_heartbeat_at),
            _age(agent.age_s) + (" ago" if agent.age_s is not None else ""),
            queue,
            _when(agent.last_good_read_at),
            "-" if agent.devices_silent is None else str(agent.devices_silent),
            " ".join(state) or "ok",
        )
    return table


def devices_table(report: FleetLiveness) -> Table:
    table = Table(title=f"{len(report.silent_devices)} silent devices")
    for name in ("Site", "Agent", "Device id", "Address", "Silent since", "Missed", "Reason"):
        table.add_column(name, no_wrap=name in ("Device id", "Address", "Silent since"))
    for device in report.silent_devices:
        table.add_row(
            device.site,
            device.agent_id,
            device.device_id,
            device.address,
            _when(device.since),
            str(device.missed_reads),
            device.reason or "-",
        )
    return table


def csv_rows(report: FleetLiveness) -> list[list[str]]:
    """One row per agent, then one per silent device, in :data:`CSV_COLUMNS` order."""
    rows = []
    for agent in report.agents:
        cells = agent.model_dump(mode="json") | {"record": "agent"}
        rows.append([spreadsheet_safe(cells.get(column)) for column in CSV_COLUMNS])
    for device in report.silent_devices:
        cells = device.model_dump(mode="json") | {"record": "device", "silent": True}
        cells["silent_since"] = cells.pop("since")
        rows.append([spreadsheet_safe(cells.get(column)) for column in CSV_COLUMNS])
    return rows


def write_csv(stream: TextIO, report: FleetLiveness) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    try:
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_rows(report))
        stream.flush()
    except OSError as exc:
        raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc
