"""Target options shared by ``scan`` and ``discover``: nmap's and net-snmp's habits.

Targets come as words on the command line (each may be a comma list, see
:mod:`collectors.target_syntax`), from ``-iL FILE`` files (one or more a line,
``#`` comments, ``-`` for stdin), minus ``--exclude`` words and
``--exclude-file`` files. A spec read from a file that turns out to be wrong is
reported as ``FILE:LINE: target '...': why``. What a spec may name (reserved,
public space, size) is :func:`collectors.targets.validate_targets`'s business.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import UsageError
from collectors.targets import TargetError, expand_specs


def add_target_options(parser: argparse.ArgumentParser, *, default_help: str | None = None) -> None:
    """TARGET..., ``-iL``, ``--exclude``, ``--exclude-file``, ``--allow-*``, ``--format``.

    With ``default_help`` the help says where targets come from when none are given.
    """
    parser.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="address, host name, CIDR block (192.0.2.0/24), range (192.0.2.10-200), "
        "octet range (10.1.2-3.1-50), any of them as HOST:PORT ([2001:db8::7]:1161), "
        "several separated by commas" + (f"; default: {default_help}" if default_help else ""),
    )
    parser.add_argument(
        "-iL",
        "--input-list",
        dest="target_files",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="read targets from FILE (nmap's -iL): one or more a line, # comments; - is stdin",
    )
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="TARGET", help="skip these, repeatable"
    )
    parser.add_argument(
        "--exclude-file",
        dest="exclude_files",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="skip the targets listed in FILE (same format as -iL)",
    )
    parser.add_argument(
        "--allow-huge", action="store_true", help="accept sweeps of more than four /16 blocks"
    )
    parser.add_argument(
        "--allow-public",
        action="store_true",
        help="accept targets outside private, shared (100.64/10), link-local, loopback and "
        "unique-local space",
    )
    parser.add_argument(
        "--format",
        choices=("table", "json"),
        default=None,
        help="table on a terminal, JSON lines otherwise (default)",
    )


@dataclass
class TargetSpecs:
    """Target and exclusion specs from the command line and the files it names.

    ``origin`` says where each spec read from a file came from (``FILE:LINE``),
    so that an error names the line, not only the text.
    """

    targets: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)

    def usage_error(self, exc: TargetError) -> UsageError:
        """The command line's wording of a refused spec: file:line, --exclude or TARGET."""
        where = self.origin.get(exc.spec)
        if where is not None:
            return UsageError(f"{where}: {exc}")
        option = "--exclude" if exc.spec in self.exclude else "TARGET"
        return UsageError(f"{option}: {exc}")


def read_option_file(
    path: Path, option: str, *, stdin: bool = False, errors: str = "strict"
) -> str:
    """The text of a file an option names (``-``: stdin, if ``stdin``); else a UsageError."""
    try:
        return sys.stdin.read() if stdin and str(path) == "-" else path.read_text("utf-8", errors)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise UsageError(f"{option} {path}: cannot read ({reason})") from exc


def read_target_file(path: Path, option: str, specs: TargetSpecs, into: list[str]) -> None:
    """Append the specs of one ``-iL``/``--exclude-file`` file to ``into``, noting their lines."""
    text = read_option_file(path, option, stdin=True)
    name = "<stdin>" if str(path) == "-" else str(path)
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0]
        for word in content.replace(",", " ").split():
            specs.origin.setdefault(word, f"{name}:{number}")
            into.append(word)


def target_specs_from_args(args: argparse.Namespace) -> TargetSpecs:
    """TARGET words (and a word ``-v`` took), ``-iL`` files, ``--exclude``, ``--exclude-file``."""
    specs = TargetSpecs(
        targets=expand_specs([*args.targets, *(getattr(args, "extra_targets", None) or [])]),
        exclude=expand_specs(args.exclude),
    )
    for path in getattr(args, "target_files", []):
        read_target_file(path, "-iL", specs, specs.targets)
    for path in getattr(args, "exclude_files", []):
        read_target_file(path, "--exclude-file", specs, specs.exclude)
    return specs
