"""Command-line options shared by ``scan`` and ``discover``: targets, SNMP, ``--config``.

Every mistake is a :class:`UsageError` naming the option; keys never appear in a message.
Target forms and files, and the order profiles are tried in: docs/discovery.md ("Targets",
"Credentials"); what a spec may name: :func:`collectors.targets.validate_targets`.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, get_args

from pydantic import SecretStr, ValidationError

from agent.errors import UsageError
from collectors.credentials import AuthProtocol, Credential, PrivProtocol
from collectors.targets import TargetError, split_list

if TYPE_CHECKING:
    from agent.config import AgentConfig, SnmpConfig
    from collectors.transport import Exchange, Trace

DEFAULT_AUTH = "SHA256"
DEFAULT_PRIV = "AES"
#: ``-v`` values that pick the SNMP version (net-snmp); any other use of ``-v`` is verbosity.
SNMP_VERSIONS = ("1", "2c", "3")
#: What ``-v WORD`` meant as a version rather than a target (no target is a bare number).
_VERSION_LIKE = re.compile(r"v?\d[a-z0-9]?", re.IGNORECASE)


def _protocol(choices: tuple[str, ...], text: str) -> str:
    """An argparse ``type`` (with ``choices`` bound) taking net-snmp's spellings too:
    ``SHA-256`` is ``SHA256``."""
    name = text.upper().replace("-", "").replace("_", "")
    name = {"AES128": "AES", "SHA1": "SHA"}.get(name, name)
    if name not in choices:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not one of {', '.join(choices)} (net-snmp spellings such as "
            "SHA-256 and AES-256 are accepted too)"
        )
    return name


class _VersionOrVerbose(argparse.Action):
    """``-v 1|2c|3`` picks the version (net-snmp); a bare ``-v`` (or ``-vv``) is verbosity,
    and so is ``-v WORD`` (``scan -v 10.0.0.7``), the word kept as a target."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        value = values if isinstance(values, str) else None
        if value in SNMP_VERSIONS:
            namespace.snmp_version = value
            return
        if value is not None and _VERSION_LIKE.fullmatch(value):  # -v 4, -v 2, -v v2c
            parser.error(f"-v {value}: not an SNMP version: 1, 2c or 3 (a bare -v is --verbose)")
        extra = 1 if value is None or set(value) != {"v"} else 1 + len(value)
        namespace.verbose += extra
        if value is not None and set(value) != {"v"}:
            namespace.extra_targets = [*(namespace.extra_targets or []), value]


_AUTH, _PRIV = get_args(AuthProtocol), get_args(PrivProtocol)
#: The options' help texts, by destination.
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
    "community": "v1/v2c community, repeatable; tried in order (default: public)",
    "community_file": "communities, one a line (# comments), tried after any -c",
    "snmp_version_or_verbose": "SNMP version as in net-snmp (-v 2c); a bare -v is --verbose",
    "snmp_version": "protocol version (default: 2c; 3 needs -u)",
    "verbose": "show every SNMP exchange on stderr: request, OIDs, answer or timeout, time "
    "(-vv: and the values answered)",
    "snmp_port": "UDP port (161)",
    "timeout": "wait this long for each answer (2); each retry waits 1.5x longer",
    "retries": "retries (1)",
    "max_repetitions": "GETBULK size (10)",
    "no_bulk": "walk with GETNEXT only (devices without GETBULK)",
    "v3_user": "SNMPv3 user name",
    "v3_level": "SNMPv3 security level: noAuthNoPriv, authNoPriv or authPriv "
    "(default: from the keys given)",
    "v3_auth_protocol": f"SNMPv3 authentication: {', '.join(_AUTH)} "
    f"(default {DEFAULT_AUTH} with a key)",
    "v3_auth_key": "prefer --v3-auth-key-file",
    "v3_auth_key_file": "file holding the key",
    "v3_priv_protocol": f"SNMPv3 privacy: {', '.join(_PRIV)} (default {DEFAULT_PRIV} with a key)",
    "v3_priv_key": "prefer --v3-priv-key-file",
    "v3_priv_key_file": "file holding the key",
    "v3_context": "SNMPv3 context name",
    "config": "agent config: its credential profiles and SNMP settings",
    "profile": "use only this credential profile of --config",
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


def add_snmp_options(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--profile``, then the SNMP options (one group, short options as in
    snmpwalk) on ``parser``."""
    add = option_adder(parser, _HELP)
    add("--config", type=Path, metavar="FILE")
    add("--profile", metavar="NAME")
    group = parser.add_argument_group(
        "SNMP",
        "net-snmp's short options work as in snmpwalk. Keys and communities typed on the "
        "command line are visible to every local user (ps): prefer the -file forms.",
    )
    add = option_adder(group, _HELP)
    add("-c", "--community", action="append", metavar="NAME")
    add("--community-file", type=Path, metavar="FILE")
    add("-v", dest="snmp_version_or_verbose", nargs="?", action=_VersionOrVerbose, metavar="1|2c|3")
    add("--snmp-version", choices=SNMP_VERSIONS, default="2c", metavar="1|2c|3")
    add("--verbose", action="count", default=0)
    add("--snmp-port", type=int, metavar="PORT")
    add("-t", "--timeout", type=float, metavar="SECONDS")
    add("-r", "--retries", type=int, metavar="N")
    add("--max-repetitions", type=int, metavar="N")
    add("--no-bulk", action="store_true")
    add("-u", "--v3-user", metavar="USER")
    add("-l", "--v3-level", choices=("noAuthNoPriv", "authNoPriv", "authPriv"), metavar="LEVEL")
    add("-a", "--v3-auth-protocol", type=partial(_protocol, _AUTH), metavar="PROTOCOL")
    add("-A", "--v3-auth-key", metavar="KEY")
    add("--v3-auth-key-file", type=Path, metavar="FILE")
    add("-x", "--v3-priv-protocol", type=partial(_protocol, _PRIV), metavar="PROTOCOL")
    add("-X", "--v3-priv-key", metavar="KEY")
    add("--v3-priv-key-file", type=Path, metavar="FILE")
    add("-n", "--v3-context", default="", metavar="NAME")
    parser.set_defaults(extra_targets=None)


def _key(args: argparse.Namespace, kind: str) -> SecretStr | None:
    inline: str | None = getattr(args, f"v3_{kind}_key")
    path: Path | None = getattr(args, f"v3_{kind}_key_file")
    if inline is not None and path is not None:
        raise UsageError(f"--v3-{kind}-key and --v3-{kind}-key-file exclude each other")
    if path is not None:
        inline = read_option_file(path, f"--v3-{kind}-key-file").strip("\r\n")
        if not inline:
            raise UsageError(f"--v3-{kind}-key-file {path}: file is empty")
    return SecretStr(inline) if inline is not None else None


def _communities(args: argparse.Namespace) -> list[str] | None:
    """``-c`` values, then those of ``--community-file``; None when neither was given."""
    typed: list[str] | None = args.community
    path: Path | None = args.community_file
    if path is None:
        return typed
    text = read_option_file(path, "--community-file")
    found = [word for line in text.splitlines() if (word := line.strip()) and word[0] != "#"]
    if not found:
        raise UsageError(f"--community-file {path}: holds no community")
    return [*(typed or []), *found]


def _check_level(level: str, auth: SecretStr | None, priv: SecretStr | None) -> None:
    """``-l`` as net-snmp means it: the level names which keys must (and may) be given."""
    for article, kind, options, key, wanted in (
        ("an", "authentication", "-A or --v3-auth-key-file", auth, level != "noAuthNoPriv"),
        ("a", "privacy", "-X or --v3-priv-key-file", priv, level == "authPriv"),
    ):
        if wanted and key is None:
            raise UsageError(f"-l {level} needs {article} {kind} key ({options})")
        if not wanted and key is not None:
            raise UsageError(f"-l {level} takes no {kind} key")


def credentials_from_args(args: argparse.Namespace) -> list[Credential]:
    """The credential profiles the options describe, in the order to try them."""
    profiles: list[Credential] = []
    auth_key, priv_key = _key(args, "auth"), _key(args, "priv")
    user: str | None = args.v3_user
    communities = _communities(args)
    if args.snmp_version == "3":
        if user is None:
            raise UsageError("-v 3 needs a user (-u USER)")
        if communities is not None:
            raise UsageError("-c/--community is for -v 1 and -v 2c, not with -v 3")
    v3_options = (auth_key, priv_key, args.v3_auth_protocol, args.v3_priv_protocol, args.v3_level)
    if user is None and any(v3_options):
        raise UsageError("--v3-auth-*/--v3-priv-*/-l options need --v3-user (-u)")
    if user is not None:
        if args.v3_level is not None:
            _check_level(args.v3_level, auth_key, priv_key)
        if args.v3_auth_protocol and auth_key is None:
            raise UsageError("--v3-auth-protocol needs --v3-auth-key or --v3-auth-key-file")
        if args.v3_priv_protocol and priv_key is None:
            raise UsageError("--v3-priv-protocol needs --v3-priv-key or --v3-priv-key-file")
        try:
            profiles.append(
                Credential(
                    name=f"v3:{user}",
                    version="v3",
                    username=user,
                    auth_protocol=args.v3_auth_protocol or (DEFAULT_AUTH if auth_key else None),
                    auth_key=auth_key,
                    priv_protocol=args.v3_priv_protocol or (DEFAULT_PRIV if priv_key else None),
                    priv_key=priv_key,
                    context_name=args.v3_context,
                )
            )
        except ValidationError as exc:
            why = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            raise UsageError(f"--v3-user {user}: {why}") from None
    if communities is None:
        communities = [] if user is not None else ["public"]
    version = "v1" if args.snmp_version == "1" else "v2c"
    for number, community in enumerate(communities, start=1):
        if not community:
            raise UsageError(f"--community #{number} is empty")
        if community not in communities[: number - 1]:  # a repeated one is tried once
            secret = SecretStr(community)
            profiles.append(
                Credential(name=f"{version}#{number}", version=version, community=secret)
            )
    return profiles


def bounded(kind: Callable[[str], Any], low: float, high: float) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind(text)`` within ``low..high``, else a message naming both."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is outside {low:g}..{high:g}")
        return value

    return convert


def config_from_args(args: argparse.Namespace) -> AgentConfig | None:
    """The agent configuration named by ``--config`` (its errors name file and line)."""
    if args.config is None:
        if args.profile is not None:
            raise UsageError("--profile needs --config (the file that defines the profiles)")
        return None
    from agent.config import load_config

    return load_config(args.config)


def snmp_config_from_args(
    args: argparse.Namespace, config: AgentConfig | None, **overrides: Any
) -> SnmpConfig:
    """Command line over ``config.snmp`` over the defaults: one merge for scan and discover.

    ``overrides`` are command-specific options already read (``concurrency``,
    ``read_deadline``); ``None`` values are left to the file or the defaults.
    """
    from agent.config import SnmpConfig

    own = args.community is not None or args.community_file is not None or args.v3_user is not None
    if config is None or own:
        if args.profile is not None:
            raise UsageError(
                "--profile picks a profile of --config; not with --community/--v3-user"
            )
        credentials = credentials_from_args(args)
    else:
        credentials = [c for c in config.snmp.credentials if args.profile in (None, c.name)]
        if not credentials:
            names = ", ".join(c.name for c in config.snmp.credentials)
            raise UsageError(
                f"--profile {args.profile}: no such profile in {args.config} ({names})"
            )
    given = {
        "port": args.snmp_port,
        "timeout": args.timeout,
        "retries": args.retries,
        "max_repetitions": args.max_repetitions,
        "use_bulk": False if args.no_bulk else None,
        **overrides,
    }
    merged = (config.snmp if config is not None else SnmpConfig()).model_dump()
    merged.update({key: value for key, value in given.items() if value is not None})
    try:
        return SnmpConfig.model_validate({**merged, "credentials": credentials})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0])
        option = "--snmp-port" if field == "port" else "--" + field.replace("_", "-")
        raise UsageError(f"{option}: {error['msg']}") from None


def exchange_printer(args: argparse.Namespace, stream: TextIO) -> Trace | None:
    """With ``-v``: a trace printing each SNMP exchange on ``stream`` (-vv: the varbinds too)."""
    if not args.verbose:
        return None
    from collectors.transport import describe_exchange, describe_varbind

    def show(exchange: Exchange) -> None:
        lines = [f"snmp: {describe_exchange(exchange)}"]
        if args.verbose > 1 and exchange.response is not None:  # -vv: the answer itself
            lines += [f"snmp:   {describe_varbind(vb)}" for vb in exchange.response.varbinds]
        print("\n".join(lines), file=stream, flush=True)

    return show
