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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from pydantic import SecretStr, ValidationError

from agent.errors import UsageError
from collectors.credentials import AuthProtocol, Credential, PrivProtocol, SnmpSettings

if TYPE_CHECKING:
    from agent.config import AgentConfig, SnmpConfig

DEFAULT_COMMUNITY = "public"
DEFAULT_AUTH_PROTOCOL = "SHA256"
DEFAULT_PRIV_PROTOCOL = "AES"


def add_snmp_options(parser: argparse.ArgumentParser) -> None:
    """Declare the SNMP options on ``parser`` (one argument group)."""
    group = parser.add_argument_group("SNMP")
    group.add_argument(
        "--community",
        action="append",
        default=None,
        metavar="NAME",
        help="v1/v2c community, repeatable; tried in order (default: public)",
    )
    group.add_argument(
        "--snmp-version",
        choices=("1", "2c"),
        default="2c",
        help="protocol version used with the communities (default: 2c)",
    )
    group.add_argument("--snmp-port", type=int, default=None, metavar="PORT", help="UDP port (161)")
    group.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait for an answer (2); each retry waits 1.5x longer",
    )
    group.add_argument("--retries", type=int, default=None, metavar="N", help="retries (1)")
    group.add_argument(
        "--max-repetitions", type=int, default=None, metavar="N", help="GETBULK size (10)"
    )
    group.add_argument(
        "--no-bulk", action="store_true", help="walk with GETNEXT only (devices without GETBULK)"
    )
    group.add_argument("--v3-user", default=None, metavar="USER", help="SNMPv3 user name")
    group.add_argument(
        "--v3-auth-protocol",
        choices=get_args(AuthProtocol),
        default=None,
        help=f"SNMPv3 authentication protocol (default {DEFAULT_AUTH_PROTOCOL} with a key)",
    )
    group.add_argument("--v3-auth-key", default=None, metavar="KEY", help="prefer the -file form")
    group.add_argument(
        "--v3-auth-key-file", type=Path, default=None, metavar="FILE", help="file holding the key"
    )
    group.add_argument(
        "--v3-priv-protocol",
        choices=get_args(PrivProtocol),
        default=None,
        help=f"SNMPv3 privacy protocol (default {DEFAULT_PRIV_PROTOCOL} with a key)",
    )
    group.add_argument("--v3-priv-key", default=None, metavar="KEY", help="prefer the -file form")
    group.add_argument(
        "--v3-priv-key-file", type=Path, default=None, metavar="FILE", help="file holding the key"
    )
    group.add_argument("--v3-context", default="", metavar="NAME", help="SNMPv3 context name")


def _key(args: argparse.Namespace, kind: str) -> SecretStr | None:
    inline: str | None = getattr(args, f"v3_{kind}_key", None)
    path: Path | None = getattr(args, f"v3_{kind}_key_file", None)
    if inline is not None and path is not None:
        raise UsageError(f"--v3-{kind}-key and --v3-{kind}-key-file exclude each other")
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--v3-{kind}-key-file {path}: cannot read ({exc})") from exc
        text = text.strip("\r\n")
        if not text:
            raise UsageError(f"--v3-{kind}-key-file {path}: file is empty")
        return SecretStr(text)
    return SecretStr(inline) if inline is not None else None


def _explain(exc: ValidationError) -> str:
    return "; ".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())


def credentials_from_args(args: argparse.Namespace) -> list[Credential]:
    """The credential profiles the options describe, in the order to try them."""
    profiles: list[Credential] = []
    auth_key, priv_key = _key(args, "auth"), _key(args, "priv")
    user: str | None = args.v3_user
    if user is None and (auth_key or priv_key or args.v3_auth_protocol or args.v3_priv_protocol):
        raise UsageError("--v3-auth-*/--v3-priv-* options need --v3-user")
    if user is not None:
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
    communities: list[str] | None = args.community
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


def add_target_options(parser: argparse.ArgumentParser, *, default_help: str | None = None) -> None:
    """TARGET..., ``--exclude``, ``--allow-huge``, ``--allow-public``, ``--format``: scan, discover.

    With ``default_help`` the targets are optional and the help says where they then come from.
    """
    parser.add_argument(
        "targets",
        nargs="*" if default_help else "+",
        metavar="TARGET",
        help="address, host name, CIDR block (192.0.2.0/24) or range (192.0.2.10-200)"
        + (f"; default: {default_help}" if default_help else ""),
    )
    parser.add_argument(
        "--exclude", action="append", default=[], metavar="TARGET", help="skip these, repeatable"
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
    own_credentials = args.community is not None or args.v3_user is not None
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
