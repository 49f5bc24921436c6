"""``fleet-agent config check|example``."""

from __future__ import annotations

import argparse
import json
import sys
from importlib.resources import files
from pathlib import Path

from agent.config import DEFAULT_CONFIG_PATH, load_config


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


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("config", help="check or print the configuration")
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate the configuration without running")
    check.add_argument(
        "--config", type=Path, default=None, help=f"config file (default {DEFAULT_CONFIG_PATH})"
    )
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(handler=_check)
    example = actions.add_parser("example", help="print a commented example covering every option")
    example.set_defaults(handler=_example)
