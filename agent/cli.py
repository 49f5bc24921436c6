"""``fleet-agent``: the command line. One sub-command per module in ``agent.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from agent import __version__
from agent.errors import FleetAgentError
from collectors.errors import SnmpError
from uploader.errors import UploadError

# Each module registers one or more sub-commands; order is the order of --help.
COMMAND_MODULES: tuple[str, ...] = (
    "agent.commands.scan",
    "agent.commands.discover",
    "agent.commands.inventory",
    "agent.commands.config",
    "agent.commands.keys",
    "agent.commands.eligibility",
    "agent.commands.ingest",
    "agent.commands.run",
    "agent.commands.demo",
)

Handler = Callable[[argparse.Namespace], int]


class _CommandModule(Protocol):
    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleet-agent",
        description="Open, vendor-neutral printer fleet collector.",
    )
    parser.add_argument("--version", action="version", version=f"fleet-agent {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = cast(_CommandModule, importlib.import_module(name))
        module.register(subparsers)
    return parser


KNOWN_ERRORS: tuple[type[BaseException], ...] = (FleetAgentError, SnmpError, UploadError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = cast(Handler | None, getattr(args, "handler", None))
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("fleet-agent: interrupted", file=sys.stderr)
        return 130
    except KNOWN_ERRORS as exc:
        print(f"fleet-agent {args.command}: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
