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

While the daemon runs it holds the outbox; the reads are then handed to it
(``<state_dir>/manual-inbox/``, :mod:`agent.manual_inbox`): the daemon queues
them within a second or two, and the command waits for that (``--wait``, 30 s)
and says so.

Exit status: 0 when every read was queued (or handed to the running daemon, which
had not taken them yet when ``--wait`` ran out: they wait in its inbox); 2 for a
bad argument or file (all problems listed, nothing queued); 1 when the outbox
cannot be used or the daemon refused the reads (the file and reason are named).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from agent.cli_help import add_command
from agent.config import AgentConfig, load_config
from agent.errors import LocalError, UsageError
from agent.inventory import Inventory
from agent.logging import configure_logging
from agent.manual_inbox import hand_over, load, manual_messages, pending
from agent.manual_meters import ManualRead, load_meter_csv
from agent.state import inventory_path, load_or_create_key, outbox_path
from agent.validation import describe
from mibs.messages import ReadMessage
from uploader.envelope import Signer
from uploader.errors import QueueLocked
from uploader.queue import Outbox

#: How long ``meter add|import`` waits for the running daemon to take handed-over reads.
HAND_OVER_WAIT = 30.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    meter = add_command(
        subparsers,
        "meter",
        help="enter manual meter reads (devices that do not report counts)",
        doc=__doc__,
    )
    actions = meter.add_subparsers(dest="action", metavar="ACTION", required=True)
    config_help = "agent configuration (agent id, state directory, queue size)"
    wait_help = "while the daemon runs, wait this long for it to take the reads (default 30 s)"
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
    add.add_argument(
        "--wait", type=_seconds, default=HAND_OVER_WAIT, metavar="SECONDS", help=wait_help
    )
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
    importer.add_argument(
        "--wait", type=_seconds, default=HAND_OVER_WAIT, metavar="SECONDS", help=wait_help
    )
    importer.set_defaults(handler=run_import)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 to 3600 seconds")
    return value


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
    entries: tuple[ManualRead, ...] | list[ManualRead],
    config: AgentConfig,
    out: TextIO,
    *,
    wait: float = HAND_OVER_WAIT,
) -> int:
    """Sign and queue ``entries`` (and their anomaly events) in one outbox transaction.

    While the daemon holds the outbox they are handed to it instead
    (:mod:`agent.manual_inbox`), and the command waits up to ``wait`` seconds to say
    whether it took them.
    """
    state_dir = config.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    key = load_or_create_key(state_dir)
    try:
        outbox = Outbox(
            outbox_path(state_dir),
            Signer(key, config.agent_id),
            max_messages=config.upload.queue_max_messages,
        )
    except QueueLocked:
        return _hand_over(entries, state_dir, out, wait)
    with outbox:
        # Files handed to a daemon that stopped before taking them go first.
        left = pending(state_dir)
        earlier = [entry for path in left for entry in _load(path)]
        with Inventory(inventory_path(state_dir)) as inventory:
            messages = manual_messages([*earlier, *entries], inventory, now=datetime.now(UTC))
        outbox.submit_many(messages)
    for path in left:
        path.unlink(missing_ok=True)
        print(f"queued the reads a stopped daemon had not taken: {path.name}", file=out)
    for message in messages:
        if isinstance(message, ReadMessage):
            print(
                f"queued manual read of {message.device_id} at {message.collected_at.isoformat()}",
                file=out,
            )
        else:
            print(f"queued {message.event} event: {message.detail}", file=out)
    return 0


def _load(path: Path) -> tuple[ManualRead, ...]:
    try:
        return load(path)
    except ValueError as exc:
        raise LocalError(f"manual inbox: {exc}", path=str(path)) from exc


def _hand_over(
    entries: tuple[ManualRead, ...] | list[ManualRead], state_dir: Path, out: TextIO, wait: float
) -> int:
    path = hand_over(entries, state_dir)
    count = f"{len(entries)} manual read{'s' if len(entries) != 1 else ''}"
    print(f"the running daemon holds the outbox: {count} handed to it ({path})", file=out)
    rejected = path.with_name(path.name + ".rejected")
    deadline = time.monotonic() + wait
    while True:
        if rejected.exists():
            reason_file = rejected.with_name(rejected.name + ".txt")
            reason = reason_file.read_text(encoding="utf-8").strip() if reason_file.exists() else ""
            raise LocalError(
                f"{rejected}: the daemon refused these reads: {reason or 'no reason given'}",
                path=str(rejected),
            )
        if not path.exists():
            for entry in entries:
                print(
                    f"queued by the running daemon: manual read of {entry.device} "
                    f"at {entry.read_at.isoformat()}",
                    file=out,
                )
            return 0
        if time.monotonic() >= deadline:
            print(
                f"the daemon has not taken them within {wait:g} s (busy, or stopping); they "
                f"stay in {path} and are queued when it does, or by the next meter command "
                "run while it is stopped",
                file=out,
            )
            return 0
        time.sleep(0.2)


def run_add(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    configure_logging("warning", stream=sys.stderr)
    entry = _entry(args)
    return queue_manual([entry], _config(args.config), stdout or sys.stdout, wait=args.wait)


def run_import(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    configure_logging("warning", stream=sys.stderr)
    if not args.file.is_file():
        raise UsageError(f"{args.file}: file not found")
    entries = load_meter_csv(args.file)
    return queue_manual(entries, _config(args.config), stdout or sys.stdout, wait=args.wait)
