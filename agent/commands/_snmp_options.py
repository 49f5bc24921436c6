"""SNMP command-line options shared by ``scan`` and ``discover``.

``add_snmp_options(parser)`` declares them; ``credentials_from_args(args)``
turns them into credential profiles in the order they are tried, and
``settings_from_args(args)`` into :class:`SnmpSettings`. Every mistake becomes a
:class:`UsageError` naming the option; keys never appear in a message.

With ``--config FILE`` the agent configuration's credential profiles and SNMP
settings are used (``--profile NAME`` picks one profile); options given on the
command line win over the file, and what neither gives keeps the defaults of
:class:`agent.config.SnmpConfig`, the daemon's (:func:`snmp_config_from_args`).

Profile order: the SNMPv3 user first when one is given (it is the one the
operator went to the trouble of configuring), then each ``--community`` in the
order given. Without ``--v3-user`` and ``--community`` the single community
``public`` is tried. Keys are best passed in files (``--v3-auth-key-file``),
since command lines are visible to every local user.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, get_args

from pydantic import SecretStr, ValidationError

from agent.commands._target_options import read_option_file
from agent.errors import UsageError
from collectors.credentials import AuthProtocol, Credential, PrivProtocol, SnmpSettings

if TYPE_CHECKING:
    from agent.config import AgentConfig, SnmpConfig
    from collectors.trace import Exchange, Trace

DEFAULT_COMMUNITY = "public"
DEFAULT_AUTH_PROTOCOL = "SHA256"
DEFAULT_PRIV_PROTOCOL = "AES"


#: ``-v`` values that pick the SNMP version (net-snmp); any other use of ``-v`` is verbosity.
SNMP_VERSIONS = ("1", "2c", "3")
#: What ``-v WORD`` meant as a version rather than a target (no target is a bare number).
_VERSION_LIKE = re.compile(r"v?\d[a-z0-9]?", re.IGNORECASE)
SECURITY_LEVELS = ("noAuthNoPriv", "authNoPriv", "authPriv")


def _protocol(choices: tuple[str, ...]) -> Callable[[str], str]:
    """An argparse ``type`` taking net-snmp's spellings too: ``SHA-256`` is ``SHA256``."""

    def convert(text: str) -> str:
        name = text.upper().replace("-", "").replace("_", "")
        name = {"AES128": "AES", "SHA1": "SHA"}.get(name, name)
        if name not in choices:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not one of {', '.join(choices)} (net-snmp spellings such as "
                "SHA-256 and AES-256 are accepted too)"
            )
        return name

    return convert


class _VersionOrVerbose(argparse.Action):
    """``-v 1|2c|3`` picks the version (net-snmp); a bare ``-v`` (or ``-vv``) is verbosity.

    ``-v`` followed by anything else (``scan -v 10.0.0.7``) counts as verbosity and
    the word is kept as a target.
    """

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
        namespace.verbose = (getattr(namespace, "verbose", 0) or 0) + extra
        if value is not None and set(value) != {"v"}:
            namespace.extra_targets = [*(getattr(namespace, "extra_targets", None) or []), value]


def add_snmp_options(parser: argparse.ArgumentParser) -> None:
    """Declare the SNMP options on ``parser`` (one argument group).

    The short options are net-snmp's (``snmpwalk -v 2c -c public -t 2 -r 1``,
    ``-v 3 -u USER -l authPriv -a SHA-256 -A KEY -x AES -X KEY -n CONTEXT``).
    """
    group = parser.add_argument_group(
        "SNMP",
        "net-snmp's short options work as in snmpwalk. Keys and communities typed on the "
        "command line are visible to every local user (ps): prefer the -file forms.",
    )
    group.add_argument(
        "-c",
        "--community",
        action="append",
        default=None,
        metavar="NAME",
        help="v1/v2c community, repeatable; tried in order (default: public)",
    )
    group.add_argument(
        "--community-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="communities, one a line (# comments), tried after any -c",
    )
    group.add_argument(
        "-v",
        dest="snmp_version_or_verbose",
        nargs="?",
        action=_VersionOrVerbose,
        metavar="1|2c|3",
        help="SNMP version as in net-snmp (-v 2c); a bare -v is --verbose",
    )
    group.add_argument(
        "--snmp-version",
        choices=SNMP_VERSIONS,
        default="2c",
        metavar="1|2c|3",
        help="protocol version (default: 2c; 3 needs -u)",
    )
    group.add_argument(
        "--verbose",
        action="count",
        default=0,
        help="show every SNMP exchange on stderr: request, OIDs, answer or timeout, time "
        "(-vv: and the values answered)",
    )
    group.add_argument("--snmp-port", type=int, default=None, metavar="PORT", help="UDP port (161)")
    group.add_argument(
        "-t",
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait this long for each answer (2); each retry waits 1.5x longer",
    )
    group.add_argument("-r", "--retries", type=int, default=None, metavar="N", help="retries (1)")
    group.add_argument(
        "--max-repetitions", type=int, default=None, metavar="N", help="GETBULK size (10)"
    )
    group.add_argument(
        "--no-bulk", action="store_true", help="walk with GETNEXT only (devices without GETBULK)"
    )
    group.add_argument("-u", "--v3-user", default=None, metavar="USER", help="SNMPv3 user name")
    group.add_argument(
        "-l",
        "--v3-level",
        choices=SECURITY_LEVELS,
        default=None,
        metavar="LEVEL",
        help="SNMPv3 security level: noAuthNoPriv, authNoPriv or authPriv "
        "(default: from the keys given)",
    )
    group.add_argument(
        "-a",
        "--v3-auth-protocol",
        type=_protocol(get_args(AuthProtocol)),
        default=None,
        metavar="PROTOCOL",
        help=f"SNMPv3 authentication: {', '.join(get_args(AuthProtocol))} "
        f"(default {DEFAULT_AUTH_PROTOCOL} with a key)",
    )
    group.add_argument(
        "-A", "--v3-auth-key", default=None, metavar="KEY", help="prefer --v3-auth-key-file"
    )
    group.add_argument(
        "--v3-auth-key-file", type=Path, default=None, metavar="FILE", help="file holding the key"
    )
    group.add_argument(
        "-x",
        "--v3-priv-protocol",
        type=_protocol(get_args(PrivProtocol)),
        default=None,
        metavar="PROTOCOL",
        help=f"SNMPv3 privacy: {', '.join(get_args(PrivProtocol))} "
        f"(default {DEFAULT_PRIV_PROTOCOL} with a key)",
    )
    group.add_argument(
        "-X", "--v3-priv-key", default=None, metavar="KEY", help="prefer --v3-priv-key-file"
    )
    group.add_argument(
        "--v3-priv-key-file", type=Path, default=None, metavar="FILE", help="file holding the key"
    )
    group.add_argument("-n", "--v3-context", default="", metavar="NAME", help="SNMPv3 context name")
    parser.set_defaults(extra_targets=None)


def _key(args: argparse.Namespace, kind: str) -> SecretStr | None:
    inline: str | None = getattr(args, f"v3_{kind}_key", None)
    path: Path | None = getattr(args, f"v3_{kind}_key_file", None)
    if inline is not None and path is not None:
        raise UsageError(f"--v3-{kind}-key and --v3-{kind}-key-file exclude each other")
    if path is not None:
        text = read_option_file(path, f"--v3-{kind}-key-file").strip("\r\n")
        if not text:
            raise UsageError(f"--v3-{kind}-key-file {path}: file is empty")
        return SecretStr(text)
    return SecretStr(inline) if inline is not None else None


def _explain(exc: ValidationError) -> str:
    return "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())


def communities_from_args(args: argparse.Namespace) -> list[str] | None:
    """``-c`` values, then those of ``--community-file``; None when neither was given."""
    typed: list[str] | None = args.community
    path: Path | None = getattr(args, "community_file", None)
    if path is None:
        return typed
    found = [
        line.strip()
        for line in read_option_file(path, "--community-file").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not found:
        raise UsageError(f"--community-file {path}: holds no community")
    return [*(typed or []), *found]


def _check_level(level: str | None, auth: SecretStr | None, priv: SecretStr | None) -> None:
    """``-l`` as net-snmp means it: the level names which keys must (and may) be given."""
    if level is None:
        return
    wants_auth, wants_priv = level != "noAuthNoPriv", level == "authPriv"
    if wants_auth and auth is None:
        raise UsageError(f"-l {level} needs an authentication key (-A or --v3-auth-key-file)")
    if wants_priv and priv is None:
        raise UsageError(f"-l {level} needs a privacy key (-X or --v3-priv-key-file)")
    if not wants_auth and auth is not None:
        raise UsageError(f"-l {level} takes no authentication key")
    if not wants_priv and priv is not None:
        raise UsageError(f"-l {level} takes no privacy key")


def credentials_from_args(args: argparse.Namespace) -> list[Credential]:
    """The credential profiles the options describe, in the order to try them."""
    profiles: list[Credential] = []
    auth_key, priv_key = _key(args, "auth"), _key(args, "priv")
    user: str | None = args.v3_user
    level: str | None = getattr(args, "v3_level", None)
    communities = communities_from_args(args)
    if args.snmp_version == "3":
        if user is None:
            raise UsageError("-v 3 needs a user (-u USER)")
        if communities is not None:
            raise UsageError("-c/--community is for -v 1 and -v 2c, not with -v 3")
    if user is None and (
        auth_key or priv_key or args.v3_auth_protocol or args.v3_priv_protocol or level
    ):
        raise UsageError("--v3-auth-*/--v3-priv-*/-l options need --v3-user (-u)")
    if user is not None:
        _check_level(level, auth_key, priv_key)
        auth_protocol = args.v3_auth_protocol or (DEFAULT_AUTH_PROTOCOL if auth_key else None)
        priv_protocol = args.v3_priv_protocol or (DEFAULT_PRIV_PROTOCOL if priv_key else None)
        if auth_protocol and auth_key is None:
            raise UsageError("--v3-auth-protocol needs --v3-auth-key or --v3-auth-key-file")
        if priv_protocol and priv_key is None:
            raise UsageError("--v3-priv-protocol needs --v3-priv-key or --v3-priv-key-file")
        try:
            profiles.append(
                Credential(
                    name=f"v3:{user}",
                    version="v3",
                    username=user,
                    auth_protocol=auth_protocol,
                    auth_key=auth_key,
                    priv_protocol=priv_protocol,
                    priv_key=priv_key,
                    context_name=args.v3_context,
                )
            )
        except ValidationError as exc:
            raise UsageError(f"--v3-user {user}: {_explain(exc)}") from None
    if communities is None:
        communities = [] if user is not None else [DEFAULT_COMMUNITY]
    version = "v1" if args.snmp_version == "1" else "v2c"
    seen: set[str] = set()
    for number, community in enumerate(communities, start=1):
        if not community:
            raise UsageError(f"--community #{number} is empty")
        if community in seen:
            continue
        seen.add(community)
        profiles.append(
            Credential(name=f"{version}#{number}", version=version, community=SecretStr(community))
        )
    return profiles


_SETTING_OPTIONS = {
    "port": ("snmp_port", "--snmp-port"),
    "timeout": ("timeout", "--timeout"),
    "retries": ("retries", "--retries"),
    "max_repetitions": ("max_repetitions", "--max-repetitions"),
}


def settings_from_args(args: argparse.Namespace) -> SnmpSettings:
    """Transport settings; options left out keep the :class:`SnmpSettings` defaults."""
    values: dict[str, Any] = {"use_bulk": False} if args.no_bulk else {}
    for field, (attribute, _) in _SETTING_OPTIONS.items():
        value = getattr(args, attribute, None)
        if value is not None:
            values[field] = value
    try:
        return SnmpSettings(**values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        option = _SETTING_OPTIONS.get(field, (field, field))[1]
        raise UsageError(f"{option}: {error['msg']}") from None


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


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and ``--profile NAME``: the daemon's credentials and SNMP settings."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="agent config: its credential profiles and SNMP settings",
    )
    parser.add_argument(
        "--profile",
        default=None,
        metavar="NAME",
        help="use only this credential profile of --config",
    )


def config_from_args(args: argparse.Namespace) -> AgentConfig | None:
    """The agent configuration named by ``--config`` (its errors name file and line)."""
    path: Path | None = getattr(args, "config", None)
    if path is None:
        if getattr(args, "profile", None) is not None:
            raise UsageError("--profile needs --config (the file that defines the profiles)")
        return None
    from agent.config import load_config

    return load_config(path)


def snmp_config_from_args(
    args: argparse.Namespace, config: AgentConfig | None, **overrides: Any
) -> SnmpConfig:
    """Command line over ``config.snmp`` over the defaults: one merge for scan and discover.

    ``overrides`` are command-specific options already read (``concurrency``,
    ``read_deadline``); ``None`` values are left to the file or the defaults.
    """
    from agent.config import SnmpConfig

    base = config.snmp if config is not None else SnmpConfig()
    own_credentials = (
        args.community is not None
        or getattr(args, "community_file", None) is not None
        or args.v3_user is not None
    )
    if config is not None and not own_credentials:
        credentials = list(config.snmp.credentials)
        wanted: str | None = getattr(args, "profile", None)
        if wanted is not None:
            credentials = [c for c in credentials if c.name == wanted]
            if not credentials:
                names = ", ".join(c.name for c in config.snmp.credentials)
                raise UsageError(f"--profile {wanted}: no such profile in {args.config} ({names})")
    else:
        if getattr(args, "profile", None) is not None:
            raise UsageError(
                "--profile picks a profile of --config; not with --community/--v3-user"
            )
        credentials = credentials_from_args(args)
    given = settings_from_args(args).model_dump(exclude_unset=True)
    given.update({key: value for key, value in overrides.items() if value is not None})
    given["credentials"] = credentials
    return base.model_copy(update=given)


def exchange_printer(args: argparse.Namespace, stream: TextIO) -> Trace | None:
    """With ``-v``/``--verbose``: a trace that prints each SNMP exchange on ``stream``.

    ``-vv`` also prints every varbind of each answer (values as text, or hex).
    """
    if not getattr(args, "verbose", 0):
        return None
    from collectors.trace import describe_exchange, describe_varbind

    def show(exchange: Exchange) -> None:
        lines = [f"snmp: {describe_exchange(exchange)}"]
        if args.verbose > 1 and exchange.response is not None:  # -vv: the answer itself
            lines += [f"snmp:   {describe_varbind(vb)}" for vb in exchange.response.varbinds]
        print("\n".join(lines), file=stream, flush=True)

    return show
