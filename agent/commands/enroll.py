"""``fleet-agent enroll --token T``: bind this agent's key to its agent id and site at the backend.

    fleet-agent enroll --token "$(cat token.txt)" --config /etc/fleet-agent/config.yaml

Sends a signed enrollment request (agent id, public key, token, agent version)
to the configured broker (``upload.mqtt``: TCP or WebSockets, TLS, proxy),
waits for the backend's signed reply, and on acceptance pins the backend's
public key in ``STATE_DIR/backend-key.jwk``. Creates the agent key first if
there is none. Says what happened: accepted for site S, token reused, token
expired, unknown token, site mismatch, or no reply (is the backend consumer
running?). Exit status 0 when accepted, 1 when refused or unanswered, 2 for a
bad argument or configuration.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from agent import __version__
from agent.cli_help import add_command
from agent.enrolling import (
    add_request_options,
    ask_backend,
    explain,
    pin_backend_key,
    prepare,
    report,
)
from agent.errors import UsageError
from agent.state import backend_key_path, load_or_create_key
from uploader.enrollment import EnrollmentToken, EnrollRequest, PublicJwk


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "enroll",
        help="enroll this agent's key with the backend (one-time token)",
        doc=__doc__,
    )
    parser.add_argument(
        "--token",
        required=True,
        metavar="TOKEN",
        help="the token 'fleet-agent enroll-token create' printed",
    )
    add_request_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    try:
        token = EnrollmentToken.parse(args.token)
    except ValueError as exc:
        raise UsageError(f"--token: {exc}") from None
    config, settings = prepare(args, what="enrollment")
    key = load_or_create_key(config.state_dir)
    body = EnrollRequest(
        token=token.secret,
        public_jwk=PublicJwk.model_validate(key.public_jwk()),
        agent_version=__version__,
        site=settings.site,
    )
    exchange = ask_backend(
        settings,
        key=key,
        agent_id=config.agent_id,
        body=body,
        backend_key_id=token.backend_key_id,
        pinned=None,
        within=args.timeout,
    )
    reply = exchange.reply
    record: dict[str, object] = {
        "agent_id": config.agent_id,
        "key_id": key.key_id,
        "outcome": "timeout" if reply is None else reply.outcome,
    }
    if reply is None:
        message = (
            f"no reply from the backend within {args.timeout:g} s on {exchange.reply_topic} "
            f"({settings.endpoint}): is the backend consumer running (fleet-agent ingest "
            "--backend-key ...) on this broker with the same topic prefix?"
        )
    elif reply.accepted:
        pinned = backend_key_path(config.state_dir)
        pin_backend_key(pinned, reply)
        record.update(site=reply.site, backend_key_id=reply.backend_jwk.as_dict()["kid"])
        message = (
            f"enrolled: agent {config.agent_id}, key {key.key_id}, accepted for site "
            f"{reply.site}; backend key {record['backend_key_id']} pinned in {pinned}"
        )
    else:
        message = explain(reply)
    return report(out, record, message, output=args.format, reply=reply)
