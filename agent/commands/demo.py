"""``fleet-agent demo``: simulated printers, a local broker, the consumer and one agent cycle.

Everything runs on loopback (printers on 127.0.50.x, the broker on 127.0.0.1) in a
temporary directory that is removed at the end unless ``--keep``. Needs snmpsim
(``pip install -e '.[demo]'``) and a broker: Mosquitto when installed, else the
embedded amqtt (also in the ``demo`` extra); ``scripts/demo.sh`` installs them.
Exit status 0 when the consumer verified and stored one read per simulated printer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from agent.cli_help import add_command
from agent.errors import UsageError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "demo",
        help="run the whole pipeline once against simulated printers and a local broker",
        doc=__doc__,
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (config, state, consumer database, logs)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        metavar="PORT",
        help="TCP port of the local MQTT broker on 127.0.0.1 (default: a free port)",
    )
    parser.add_argument(
        "--policy",
        type=Path,
        default=None,
        metavar="FILE",
        help="contract policy (default: agent/demo/demo-policy.yaml)",
    )
    parser.add_argument(
        "--broker",
        choices=("auto", "mosquitto", "embedded"),
        default="auto",
        help="Mosquitto, or the embedded amqtt broker (MQTT 3.1.1); "
        "auto: Mosquitto when installed (default)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from agent.demo.run import DEFAULT_POLICY, DemoOptions, run_demo

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port: {args.port} is not a TCP port (1-65535, or 0 for a free one)")
    policy = args.policy or DEFAULT_POLICY
    if not policy.is_file():
        raise UsageError(
            f"--policy: {policy}: file not found"
            + ("" if args.policy else " (the demo policy ships in the source tree; pass --policy)")
        )
    options = DemoOptions(keep=args.keep, port=args.port, policy=policy, broker=args.broker)
    result = asyncio.run(run_demo(options, sys.stdout))
    return 0 if result.reads_stored == len(options.printers) and not result.rejected else 1
