"""``fleet-agent``: the command line. One sub-command per module in ``agent.commands``.

Start-up is lazy: :data:`COMMANDS` names each sub-command's module and one-line
help, so ``fleet-agent --help`` (and a mistyped command) imports no command
module and none of the heavy libraries they use (pysnmp, aiomqtt, rich,
pydantic models...). Only the module of the command being run is imported, and
it registers its full parser. ``tests/unit/test_cli.py`` checks that this table
says what the modules register.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol, cast

from agent.cli_help import Parser
from fleet_errors import FleetAgentError, describe, exit_code, known_error


class Command(NamedTuple):
    module: str
    help: str


# Order is the order of --help.
COMMANDS: dict[str, Command] = {
    "scan": Command("agent.commands.scan", "read every printer among the targets once"),
    "discover": Command(
        "agent.commands.discover", "sweep addresses for printers and record them in the inventory"
    ),
    "inventory": Command("agent.commands.inventory", "list the devices discovery has found"),
    "config": Command("agent.commands.config", "check, show or push the configuration"),
    "keys": Command(
        "agent.commands.keys", "the agent's signing key: create, show, rotate; list or revoke keys"
    ),
    "enroll": Command(
        "agent.commands.enroll", "enroll this agent's key with the backend (one-time token)"
    ),
    "eligibility": Command(
        "agent.commands.eligibility", "managed-print eligibility report of a site"
    ),
    "supplies": Command(
        "agent.commands.supplies", "supply levels, part numbers and days-to-empty forecasts"
    ),
    "ingest": Command(
        "agent.commands.ingest", "reference backend consumer: verify and store signed reads"
    ),
    "agents": Command(
        "agent.commands.agents",
        "agents and devices that fell silent, agents below a version (backend store)",
    ),
    "enroll-token": Command(
        "agent.commands.enroll_token",
        "issue, list or revoke one-time agent enrollment tokens (backend)",
    ),
    "billing": Command(
        "agent.commands.billing",
        "monthly billing export: start and end meters per contract meter type",
    ),
    "meter": Command(
        "agent.commands.meter", "enter manual meter reads (devices that do not report counts)"
    ),
    "run": Command("agent.commands.run", "run the daemon (discovery, reads, upload)"),
    "status": Command("agent.commands.run", "summarise what the running daemon is doing"),
    "demo": Command(
        "agent.commands.demo",
        "run the whole pipeline once against simulated printers and a local broker",
    ),
}

#: The exit status table, as in the README: 2 is for usage errors only.
EPILOG = """\
'fleet-agent COMMAND --help' shows a command's options, with examples.

exit status:
  0    done: the command did what was asked (a scan or discovery found printers)
  1    nothing found (no printer answered, no inventory or reads yet), a check that
       found problems (agents --check, billing rejects), or a failure on the way
       (a device, the broker, a store, the disk): named on stderr
  2    usage: a bad argument, or a bad file given (configuration, policy, reads)
  130  interrupted (Ctrl-C)
  141  the reader of the output went away (fleet-agent ... | head)
"""

Handler = Callable[[argparse.Namespace], int]


class _CommandModule(Protocol):
    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


def _version() -> str:
    from agent import __version__  # importlib.metadata: only when asked

    return f"fleet-agent {__version__}"


class _VersionAction(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kw: object) -> None:
        print(_version())
        parser.exit()


def build_parser(command: str | None = "*") -> argparse.ArgumentParser:
    """The parser with the full sub-parser of ``command`` (``"*"``: of every command).

    The other commands get a placeholder that carries only their name and help.
    """
    parser: argparse.ArgumentParser = Parser(  # its sub-parsers are Parsers too
        prog="fleet-agent",
        description="Open, vendor-neutral printer fleet collector.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", nargs=0, action=_VersionAction, help="show program's version number and exit"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = [entry.module for name, entry in COMMANDS.items() if command in ("*", name)]
    for module_name in dict.fromkeys(wanted):  # each module once, in --help order
        module = cast(_CommandModule, importlib.import_module(module_name))
        module.register(subparsers)
    for name, entry in COMMANDS.items():
        if name not in subparsers.choices:
            subparsers.add_parser(name, help=entry.help)
    return parser


#: A base64url id (a key's thumbprint: 43 characters) that starts with '-'.
_DASHED_ID = re.compile(r"-[A-Za-z0-9_-]{20,}")

#: What a shell reports for a command ended by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command named on the command line (top-level options take no value)."""
    for token in argv:
        if not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def _parser_of(parser: argparse.ArgumentParser, words: Sequence[str]) -> argparse.ArgumentParser:
    """The innermost (sub-)parser the command words name: ``config check`` -> its own."""
    current = parser
    for word in words:
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction) and word in action.choices:
                current = cast(argparse.ArgumentParser, action.choices[word])
                break
    return current


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _run(argv)
        sys.stdout.flush()  # inside the try: a reader that went away is handled below
    except BrokenPipeError:
        # `fleet-agent ... | head -1`: the reader stopped reading. Say nothing more and
        # keep Python's exit-time flush from printing a traceback of its own.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    return code


def _run(argv: Sequence[str] | None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(arguments))
    args, unknown = parser.parse_known_args(arguments)
    if unknown:
        # The sub-command's own usage, not the top level's: that is where the option belongs.
        message = f"unrecognized arguments: {' '.join(unknown)}"
        ids = [word for word in unknown if _DASHED_ID.fullmatch(word)]
        if ids:  # a key id (RFC 7638 thumbprint) may start with '-', read as an option
            message += f"; an id that starts with '-' goes after '--': ... -- {ids[0]}"
        _parser_of(parser, arguments).error(message)
    handler = cast(Handler | None, getattr(args, "handler", None))
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("fleet-agent: interrupted", file=sys.stderr)
        return 130
    except (FleetAgentError, ExceptionGroup) as exc:
        if known_error(exc) is None:  # a bug among the failures: crash loudly, traceback
            raise
        print(f"fleet-agent {args.command}: {describe(exc)}", file=sys.stderr)
        return exit_code(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
