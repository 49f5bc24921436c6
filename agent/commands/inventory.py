"""``fleet-agent inventory``: list the known devices from ``<state-dir>/inventory.db``.

    fleet-agent inventory
    fleet-agent inventory --format csv > fleet.csv
    fleet-agent inventory --state-dir /var/lib/fleet-agent --format json

A table on a terminal, JSON lines (``--format json``: every field the inventory
keeps), or CSV for onboarding spreadsheets
(``--format csv``: one header, then one row per device: device id, serial,
vendor, model, address, MAC, first seen, last seen, lifetime pages, duplicate
serial, sysName, location, start page count). Devices come in address order
(numeric, IPv4 before IPv6; devices without an address last), as in ``scan``
and ``eligibility``. Times are RFC 3339 in UTC. Text the devices sent is
neutralised for spreadsheets: a cell starting with ``= + - @`` gets a leading
apostrophe (CSV formula injection).

Exit status: 0 when the inventory was listed; 1 when there is none yet
(run ``fleet-agent discover`` first) or it cannot be read; 2 for a bad argument.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any, TextIO

from rich.table import Table

from agent.cli_help import add_command
from agent.errors import NothingYet
from agent.inventory import Inventory, InventoryDevice
from agent.output import OutputError, json_line, print_table, write_line
from agent.state import default_state_dir, inventory_path
from collectors.targets import address_key

CSV_COLUMNS = (
    "device_id",
    "serial",
    "vendor",
    "model",
    "address",
    "mac",
    "first_seen",
    "last_seen",
    "lifetime_pages",
    "duplicate_serial",
    "sys_name",
    "location",
    "start_page_count",
)
_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """The cell text; device-supplied text that a spreadsheet would run as a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_LEADS):
        return "'" + text
    return text


def csv_row(device: InventoryDevice) -> list[str]:
    data = device.model_dump(mode="json")
    return [spreadsheet_safe(data[column]) for column in CSV_COLUMNS]


def write_csv(stream: TextIO, devices: list[InventoryDevice]) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    try:
        writer.writerow(CSV_COLUMNS)
        writer.writerows(csv_row(device) for device in devices)
        stream.flush()
    except OSError as exc:
        raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc


def device_table(devices: list[InventoryDevice]) -> Table:
    table = Table(title=f"{len(devices)} known device{'s' if len(devices) != 1 else ''}")
    for name in ("Device id", "Address", "Vendor", "Model", "Serial", "Last seen", "Pages", "Note"):
        table.add_column(name, no_wrap=name in ("Device id", "Address", "Serial"))
    for device in devices:
        table.add_row(
            device.device_id,
            ", ".join(device.addresses) or "-",
            device.vendor or "-",
            device.model or "-",
            device.serial or "-",
            device.last_seen.strftime("%Y-%m-%d %H:%M"),
            "-" if device.lifetime_pages is None else f"{device.lifetime_pages:,}",
            "DUPLICATE SERIAL" if device.duplicate_serial else "",
        )
    return table


def _sorted(devices: list[InventoryDevice]) -> list[InventoryDevice]:
    return sorted(devices, key=lambda d: (address_key(d.address or "~"), d.device_id))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "inventory", help="list the devices discovery has found", doc=__doc__
    )
    parser.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default=None,
        help="table on a terminal, JSON lines otherwise (default); csv for spreadsheets",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="holds inventory.db (default $FLEET_AGENT_STATE_DIR or /var/lib/fleet-agent)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    path = inventory_path(args.state_dir or default_state_dir())
    if not path.exists():
        raise NothingYet(f"no inventory at {path} yet: run 'fleet-agent discover' first")
    with Inventory(path) as inventory:
        devices = _sorted(inventory.devices())
    output: Any = args.format or ("table" if out.isatty() else "json")
    if output == "csv":
        write_csv(out, devices)
    elif output == "json":
        for device in devices:
            write_line(out, json_line(device.model_dump(mode="json")))
    else:
        print_table(out, device_table(devices))
    return 0
