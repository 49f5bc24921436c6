"""Target options shared by ``scan`` and ``discover``: nmap's and net-snmp's habits.

The forms and the file format: docs/discovery.md, "Targets". What a spec may name
(reserved, public space, size) is :func:`collectors.targets.validate_targets`'s business.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from agent.errors import UsageError
from collectors.target_syntax import split_list
from collectors.targets import TargetError

#: The target options' help texts, by destination.
_HELP = {
    "targets": "address, host name, CIDR block (192.0.2.0/24), range (192.0.2.10-200), "
    "octet range (10.1.2-3.1-50), any of them as HOST:PORT ([2001:db8::7]:1161), "
    "several separated by commas",
    "target_files": "read targets from FILE (nmap's -iL): one or more a line, # comments; "
    "- is stdin",
    "exclude": "skip these, repeatable",
    "exclude_files": "skip the targets listed in FILE (same format as -iL)",
    "allow_huge": "accept sweeps of more than four /16 blocks",
    "allow_public": "accept targets outside private, shared (100.64/10), link-local, loopback and "
    "unique-local space",
    "format": "table on a terminal, JSON lines otherwise (default)",
}


def option_adder(
    container: argparse._ActionsContainer, helps: dict[str, str]
) -> Callable[..., None]:
    """``container.add_argument`` taking each option's help text from ``helps`` by its dest."""

    def add(*flags: str, **keywords: Any) -> None:
        action = container.add_argument(*flags, **keywords)
        action.help = helps[action.dest]

    return add


def add_target_options(parser: argparse.ArgumentParser, *, default_help: str | None = None) -> None:
    """TARGET..., ``-iL``, ``--exclude``, ``--exclude-file``, ``--allow-*``, ``--format``.

    With ``default_help`` the help says where targets come from when none are given.
    """
    default = f"; default: {default_help}" if default_help else ""
    add = option_adder(parser, {**_HELP, "targets": _HELP["targets"] + default})
    listed = partial(add, action="append", type=Path, default=[], metavar="FILE")
    add("targets", nargs="*", metavar="TARGET")
    listed("-iL", "--input-list", dest="target_files")
    add("--exclude", action="append", default=[], metavar="TARGET")
    listed("--exclude-file", dest="exclude_files")
    add("--allow-huge", action="store_true")
    add("--allow-public", action="store_true")
    add("--format", choices=("table", "json"), default=None)


@dataclass
class TargetSpecs:
    """Target and exclusion specs; ``origin`` says where each spec read from a file came from."""

    targets: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)  # spec -> "FILE:LINE"

    def usage_error(self, exc: TargetError) -> UsageError:
        """The command line's wording of a refused spec: file:line, --exclude or TARGET."""
        where = self.origin.get(exc.spec) or ("--exclude" if exc.spec in self.exclude else "TARGET")
        return UsageError(f"{where}: {exc}")


def read_option_file(
    path: Path, option: str, *, stdin: bool = False, errors: str = "strict"
) -> str:
    """The text of a file an option names (``-``: stdin, if ``stdin``); else a UsageError."""
    try:
        return sys.stdin.read() if stdin and str(path) == "-" else path.read_text("utf-8", errors)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"{option} {path}: cannot read ({reason})") from exc


def target_specs_from_args(args: argparse.Namespace) -> TargetSpecs:
    """TARGET words (and a word ``-v`` took), ``-iL`` files, ``--exclude``, ``--exclude-file``."""
    specs = TargetSpecs(
        targets=list(split_list([*args.targets, *(getattr(args, "extra_targets", None) or [])])),
        exclude=list(split_list(args.exclude)),
    )
    for option, paths, into in (
        ("-iL", args.target_files, specs.targets),
        ("--exclude-file", args.exclude_files, specs.exclude),
    ):
        for path in paths:
            text = read_option_file(path, option, stdin=True)
            name = "<stdin>" if str(path) == "-" else str(path)
            for number, line in enumerate(text.splitlines(), start=1):
                for word in line.split("#", 1)[0].replace(",", " ").split():
                    specs.origin.setdefault(word, f"{name}:{number}")
                    into.append(word)
    return specs
