"""``fleet-agent config check|show|example|push``: the configuration, local and remote.

    fleet-agent config check --config /etc/fleet-agent/config.yaml
    fleet-agent config show
    fleet-agent config example > config.yaml

``check`` validates the local configuration; ``show`` prints the effective
configuration (the local file merged with the last good remote document in the
state directory) and where every value came from: ``file:line``, an environment
variable, ``remote config vN (...)`` or ``default``. ``push`` is the backend's
side of remote configuration (``docs/remote-config.md``): it signs a document
with the backend key and publishes it, retained, for a site or one agent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

from agent.cli_help import add_command
from agent.config import DEFAULT_CONFIG_PATH, load_config, read_local
from agent.errors import ConfigError, UsageError


def example_text() -> str:
    return files("agent").joinpath("data/config.example.yaml").read_text(encoding="utf-8")


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.format == "json":
        # SecretStr fields dump as "**********": secrets never leave through this command.
        print(json.dumps(config.model_dump(mode="json"), indent=2))
    else:
        where = args.config or DEFAULT_CONFIG_PATH
        creds = ", ".join(f"{c.name} ({c.version})" for c in config.snmp.credentials)
        upload = (
            config.upload.mqtt.endpoint if config.upload.enabled and config.upload.mqtt else "off"
        )
        print(f"{where}: OK")
        print(f"  agent {config.agent_id} at site {config.site}, state in {config.state_dir}")
        print(f"  {len(config.discovery.targets)} target specs, credential profiles: {creds}")
        print(f"  upload: {upload}; policy: {config.eligibility.policy or 'none'}")
    return 0


def _example(args: argparse.Namespace) -> int:
    sys.stdout.write(example_text())
    return 0


def _show(args: argparse.Namespace) -> int:
    from agent.logging import configure_logging
    from agent.remote_agent import RemoteConfigReceiver
    from agent.remote_config import effective_config, provenance, pushed_policy

    configure_logging("warning", stream=sys.stderr)  # a stale remote document is said there
    local = read_local(args.config)
    config = effective_config(local, None)
    site = config.upload.mqtt.site if config.upload.mqtt is not None else config.site
    receiver = RemoteConfigReceiver(config.state_dir, site=site, agent_id=config.agent_id)
    last = receiver.load_last_good()
    document = last.document if last is not None else None
    if document is not None:
        config = effective_config(local, document)
    rows = provenance(config, local, document)
    pushed = pushed_policy(local, document)
    policy: dict[str, Any] | None = None
    if config.eligibility.policy is not None:
        policy = {"from": "local_file", "source": str(config.eligibility.policy)}
    elif pushed is not None:
        policy = {
            "from": "remote",
            "source": pushed.label,
            "remote_version": pushed.document.version,
            "version": pushed.policy.version,
        }
    if args.format == "json":
        print(
            json.dumps(
                {
                    "remote_version": document.version if document else None,
                    "policy": policy,
                    "values": [{"key": r.key, "value": r.value, "source": r.source} for r in rows],
                },
                indent=2,
            )
        )
        return 0
    from rich.table import Table

    from agent.output import print_table

    title = f"effective configuration ({local.path}"
    title += f" + {document.label})" if document is not None else ")"
    table = Table(title=title)
    table.add_column("Key", no_wrap=True)
    table.add_column("Value")
    table.add_column("Source")
    for row in rows:
        table.add_row(row.key, json.dumps(row.value), row.source)
    print_table(sys.stdout, table)
    return 0


def _push(args: argparse.Namespace) -> int:
    from agent.broker_options import settings_from_args
    from agent.logging import configure_logging
    from agent.remote_config import check_json, check_policy, check_settings
    from agent.yamlconf import read_yaml
    from backend.config_push import push
    from uploader.keys import AgentKey

    if args.version is not None and args.version < 1:
        raise UsageError("--version: must be at least 1")
    settings = settings_from_args(args)
    key = AgentKey.load(args.backend_key)
    document = read_yaml(args.file, what="configuration document")
    document_settings = document.data
    check_json(document_settings, document.place, source=str(args.file))
    try:
        check_settings(document_settings, str(args.file))
    except ConfigError as exc:
        raise ConfigError(str(exc), path=args.file) from None
    # The policy as the agents will validate it, its errors naming this file's lines.
    check_policy(document_settings, document.place, source=str(args.file))
    configure_logging(args.log_level, stream=sys.stderr)
    try:
        pushed = asyncio.run(
            push(
                settings,
                key,
                document_settings,
                site=args.site,
                agent_id=args.agent,
                version=args.version,
                client_id=args.client_id,
            )
        )
    except ValueError as exc:
        raise UsageError(f"--version: {exc}") from None
    if args.format == "json":
        print(json.dumps({"topic": pushed.topic, "version": pushed.version}))
    else:
        print(f"published version {pushed.version} for {pushed.document.scope} on {pushed.topic}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers, "config", help="check, show or push the configuration", doc=__doc__
    )
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    config_help = f"config file (default {DEFAULT_CONFIG_PATH})"
    check = actions.add_parser(
        "check",
        help="validate the configuration without running",
        description="Validate the configuration file and everything it names (key files, "
        "credential profiles, targets) without running. Exit status 0 when it is valid, 2 "
        "when it is not (each problem named as file:line: field).",
    )
    check.add_argument("--config", type=Path, default=None, metavar="FILE", help=config_help)
    check.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or JSON"
    )
    check.set_defaults(handler=_check)
    show = actions.add_parser(
        "show",
        help="the effective configuration and where every value came from",
        description="The local configuration merged with the last good remote document "
        "(STATE_DIR/remote-config.json); each value's source: file:line, environment "
        "variable, remote config version, or default. Secrets are masked.",
    )
    show.add_argument("--config", type=Path, default=None, metavar="FILE", help=config_help)
    show.add_argument(
        "--format", choices=("table", "json"), default="table", help="table (default) or JSON"
    )
    show.set_defaults(handler=_show)
    example = actions.add_parser(
        "example",
        help="print a commented example covering every option",
        description="Print a commented configuration file with every option and its "
        "default, to start /etc/fleet-agent/config.yaml from.",
    )
    example.set_defaults(handler=_example)
    _register_push(actions)


def _register_push(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from agent.broker_options import add_broker_options

    push = actions.add_parser(
        "push",
        help="backend: sign a configuration document and publish it for a site or an agent",
        description="Sign FILE (YAML: discovery, schedule and snmp settings; credential "
        "profiles by name only; the contract policy inline under 'policy') with the backend "
        "key and publish it retained, so agents that "
        "connect later get it too. The version is one above the newest document retained for "
        "the site unless --version is given. See docs/remote-config.md.",
    )
    push.add_argument("file", type=Path, metavar="FILE", help="the settings (YAML)")
    push.add_argument("--site", required=True, metavar="SITE", help="the site the document is for")
    push.add_argument("--agent", metavar="AGENT_ID", help="only this agent of the site")
    push.add_argument(
        "--backend-key",
        type=Path,
        required=True,
        metavar="FILE",
        help="the backend's signing key (PEM)",
    )
    push.add_argument(
        "--version", type=int, metavar="N", help="document version (default: newest + 1)"
    )
    push.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or JSON"
    )
    push.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="warning",
        help="structured log events on stderr from this level (default warning)",
    )
    add_broker_options(push, client_id_help="MQTT client id (default fleet-config-push-<time>)")
    push.set_defaults(handler=_push)
