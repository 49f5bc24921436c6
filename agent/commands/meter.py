"""``fleet-agent meter add|import``: manual meter reads, signed and queued like any read.

    fleet-agent meter add CNB1234567 --at 2026-11-30T17:00Z --set mono=10234 --set color=880 \\
        --by "Tom Berg" --reason "USB printer, no network"
    fleet-agent meter import readings.csv

The device is a device id or a serial (the inventory's, when it knows the
device; ``--vendor/--model/--location`` describe one it does not). Each read is
marked ``source: manual`` with who entered it and why, queued in the agent's
outbox (``<state_dir>/outbox.db``) and uploaded by the daemon. A manual read
newer than the inventory's last read of the device is checked for meter
anomalies like a device read; each is queued as a signed event. The CSV format
is in docs/billing.md.

Exit status: 0 when every read was queued; 2 for a bad argument or file (all
problems listed, nothing queued); 1 when the outbox cannot be used (the running
daemon holds it: stop it for the entry, or enter the reads on another host).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from agent.cli_help import add_command
from agent.config import AgentConfig, load_config
from agent.errors import UsageError
from agent.inventory import Inventory
from agent.logging import configure_logging
from agent.manual_meters import ManualRead, build_read, load_meter_csv
from agent.state import inventory_path, load_or_create_key, outbox_path
from agent.validation import describe
from mibs.events import ImplausibleJump, MeterBackwards, SerialChanged
from mibs.messages import ReadMessage
from mibs.meter_anomalies import anomaly_event, read_anomalies
from uploader.envelope import Signer
from uploader.queue import Outbox


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    meter = add_command(
        subparsers,
        "meter",
        help="enter manual meter reads (devices that do not report counts)",
        doc=__doc__,
    )
    actions = meter.add_subparsers(dest="action", metavar="ACTION", required=True)
    config_help = "agent configuration (agent id, state directory, queue size)"
    add = actions.add_parser(
        "add",
        help="queue one manual read",
        description="Queue one manual read of DEVICE (a device id or serial): the meters "
        "read off its panel or configuration page, when, by whom and why.",
    )
    add.add_argument("device", metavar="DEVICE", help="device id or serial")
    add.add_argument(
        "--at",
        required=True,
        dest="read_at",
        metavar="TIME",
        help="read time, e.g. 2026-11-30T17:00Z",
    )
    add.add_argument(
        "--set",
        required=True,
        action="append",
        dest="meters",
        metavar="METER=VALUE",
        help="a meter value, e.g. mono=10234 (repeat for each meter)",
    )
    add.add_argument(
        "--by", required=True, dest="entered_by", metavar="NAME", help="who read the meters"
    )
    add.add_argument("--reason", required=True, metavar="TEXT", help="why the read is manual")
    unknown = "for a device the inventory does not know"
    add.add_argument("--vendor", metavar="NAME", help=f"its vendor, {unknown}")
    add.add_argument("--model", metavar="NAME", help=f"its model, {unknown}")
    add.add_argument("--location", metavar="TEXT", help=f"where it stands, {unknown}")
    add.add_argument("--config", type=Path, default=None, metavar="FILE", help=config_help)
    add.set_defaults(handler=run_add)
    importer = actions.add_parser(
        "import",
        help="queue the manual reads of a CSV file",
        description="Queue every manual read of FILE (CSV with a header: device, read_at, "
        "entered_by, reason and one column per meter; see docs/billing.md). Every row is "
        "checked first: one bad row queues nothing.",
    )
    importer.add_argument(
        "file", type=Path, metavar="FILE", help="CSV: device, read_at, entered_by, reason, meters"
    )
    importer.add_argument("--config", type=Path, default=None, metavar="FILE", help=config_help)
    importer.set_defaults(handler=run_import)


def _entry(args: argparse.Namespace) -> ManualRead:
    meters: dict[str, object] = {}
    for item in args.meters:
        name, equals, value = item.partition("=")
        if not equals or not value.strip().lstrip("-").isdigit():
            raise UsageError(f"--set {item!r}: expected METER=WHOLE_NUMBER, e.g. mono=10234")
        meters[name.strip()] = int(value)
    read_at = args.read_at.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(read_at)
    except ValueError:
        raise UsageError(f"--at {args.read_at!r}: not a time like 2026-11-30T17:00Z") from None
    fields = {
        "device": args.device,
        "read_at": moment,
        "entered_by": args.entered_by,
        "reason": args.reason,
        "vendor": args.vendor,
        "model": args.model,
        "location": args.location,
        "meters": meters,
    }
    try:
        return ManualRead.model_validate(fields)
    except ValidationError as exc:
        options = {"read_at": "--at", "meters": "--set", "entered_by": "--by"}
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "device"
        raise UsageError(f"{options.get(name, '--' + name)}: {describe(error)}") from exc


def _config(path: Path | None) -> AgentConfig:
    return load_config(path, require_file=path is not None)


def queue_manual(
    entries: tuple[ManualRead, ...] | list[ManualRead], config: AgentConfig, out: TextIO
) -> int:
    """Sign and queue ``entries`` (and their anomaly events) in one outbox transaction."""
    state_dir = config.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    messages: list[ReadMessage | MeterBackwards | ImplausibleJump | SerialChanged] = []
    with Inventory(inventory_path(state_dir)) as inventory:
        for entry in entries:
            device_id, read = build_read(entry, inventory, now=now)
            messages.append(
                ReadMessage.of(read, device_id=device_id, purpose="meters", verdict=None)
            )
            previous = inventory.last_read(device_id)
            if previous is not None and previous.collected_at < read.collected_at:
                messages.extend(
                    anomaly_event(anomaly, device_id, read)
                    for anomaly in read_anomalies(previous, read, None)
                )
    key = load_or_create_key(state_dir)
    with Outbox(
        outbox_path(state_dir),
        Signer(key, config.agent_id),
        max_messages=config.upload.queue_max_messages,
    ) as outbox:
        outbox.submit_many(messages)
    for message in messages:
        if isinstance(message, ReadMessage):
            print(
                f"queued manual read of {message.device_id} at {message.collected_at.isoformat()}",
                file=out,
            )
        else:
            print(f"queued {message.event} event: {message.detail}", file=out)
    return 0


def run_add(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    configure_logging("warning", stream=sys.stderr)
    entry = _entry(args)
    return queue_manual([entry], _config(args.config), stdout or sys.stdout)


def run_import(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    configure_logging("warning", stream=sys.stderr)
    if not args.file.is_file():
        raise UsageError(f"{args.file}: file not found")
    entries = load_meter_csv(args.file)
    return queue_manual(entries, _config(args.config), stdout or sys.stdout)
