"""``fleet-agent keys init|show|rotate|list|revoke``: signing keys, agent and backend side.

    fleet-agent keys init --state-dir /var/lib/fleet-agent
    fleet-agent keys show --format jwk > agent-7.jwk
    fleet-agent keys rotate
    fleet-agent keys list --store sqlite:///fleet.db

On the agent: ``init`` writes ``agent.key`` (PEM PKCS#8, mode 0600) into the
state directory and refuses to replace an existing key without ``--force``.
``show`` prints the public key as a JWK with its RFC 7638 thumbprint (the key
id); it never prints the private key. ``rotate`` makes a new key and asks the
backend to bind it in place of the current one (a request signed by the current
key, carrying the new key's proof); the agent switches to the new key only once
the backend's signed acknowledgement arrived.

On the backend: ``list`` shows the registered keys (agent, site, state);
``revoke KID...`` or ``revoke --agent AGENT_ID`` refuses their envelopes from
then on (reason ``key_revoked``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from agent.cli_help import add_command
from agent.commands.keys_backend import register_backend
from agent.commands.keys_rotate import register_rotation
from agent.config import DEFAULT_STATE_DIR
from agent.state import STATE_DIR_ENV, default_state_dir, key_path
from uploader.keys import AgentKey


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "keys",
        help="the agent's signing key: create, show, rotate; list or revoke keys",
        doc=__doc__,
    )
    actions = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    def add_state_dir(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--state-dir",
            type=Path,
            default=None,
            metavar="DIR",
            help=f"state directory (default: ${STATE_DIR_ENV} or {DEFAULT_STATE_DIR})",
        )

    init = actions.add_parser(
        "init",
        help="create a new key pair",
        description="Create the agent's Ed25519 key pair (DIR/agent.key, mode 0600) and print "
        "its key id. An existing key is kept unless --force.",
    )
    add_state_dir(init)
    init.add_argument(
        "--force",
        action="store_true",
        help="replace an existing key (the backend must then register the new key id)",
    )
    init.set_defaults(handler=run_init)

    show = actions.add_parser(
        "show",
        help="print the public key (JWK) and its key id",
        description="Print the public key as a JWK and its key id (RFC 7638 thumbprint), "
        "to register the agent with the backend. The private key is never printed.",
    )
    add_state_dir(show)
    show.add_argument(
        "--format",
        choices=("text", "jwk", "json"),
        default="text",
        help="text: for people; jwk: the bare public JWK (save as <name>.jwk for the backend); "
        'json: {"key_id": ..., "jwk": {...}}',
    )
    show.set_defaults(handler=run_show)
    register_rotation(actions)
    register_backend(actions)


def _state_dir(args: argparse.Namespace) -> Path:
    state_dir: Path | None = args.state_dir
    return state_dir if state_dir is not None else default_state_dir()


def run_init(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    path = key_path(_state_dir(args))
    key = AgentKey.generate()
    key.save(path, force=bool(args.force))
    print(f"created {path}", file=out)
    print(f"key id: {key.key_id}", file=out)
    print("register the public key with: fleet-agent keys show --format jwk", file=out)
    return 0


def run_show(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    path = key_path(_state_dir(args))
    key = AgentKey.load(path)
    jwk = key.public_jwk()
    if args.format == "jwk":
        print(json.dumps(jwk, indent=2, sort_keys=True), file=out)
    elif args.format == "json":
        print(json.dumps({"key_id": key.key_id, "jwk": jwk, "path": str(path)}), file=out)
    else:
        print(f"key file: {path}", file=out)
        print(f"key id (RFC 7638 thumbprint): {key.key_id}", file=out)
        print("public JWK:", file=out)
        print(json.dumps(jwk, indent=2, sort_keys=True), file=out)
    return 0
