"""The agent's side of enrollment and key rotation: build, send, wait, pin, explain.

Used by ``fleet-agent enroll`` and ``fleet-agent keys rotate``. The request is a
standalone signed envelope (``docs/enrollment.md``) published with the agent's
own broker settings (so TLS, WebSockets and proxies work as for uploads); the
reply must be signed by the backend: for enrollment by the key the token names
(or, for a token without one, by whichever backend answers first), for rotation
by the key pinned at enrollment in ``STATE_DIR/backend-key.jwk``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from agent.config import DEFAULT_CONFIG_PATH, AgentConfig, load_config
from agent.errors import ConfigError, UsageError
from agent.logging import configure_logging
from agent.output import write_line
from agent.state import write_atomically
from uploader.config import MqttSettings
from uploader.control import ControlRequest, request_reply
from uploader.enrollment import ControlReply, EnrollRequest, KeyRotationRequest, open_reply
from uploader.envelope import MessageKind, Signer
from uploader.errors import EnvelopeRejected, KeyFileError
from uploader.keys import AgentKey, PublicKey, load_public_key

__all__ = [
    "DEFAULT_TIMEOUT",
    "Exchange",
    "add_request_options",
    "ask_backend",
    "explain",
    "pin_backend_key",
    "pinned_backend_key",
    "prepare",
    "report",
    "settings_of",
]

DEFAULT_TIMEOUT = 30.0

#: What the agent says for each refusal, after the backend's own detail.
_ADVICE = {
    "unknown_token": "the backend does not know this token (mistyped, or issued by another "
    "backend)",
    "token_reused": "this token was already used; ask for a new one "
    "(fleet-agent enroll-token create --site SITE)",
    "token_expired": "this token expired; ask for a new one",
    "token_revoked": "this token was revoked; ask for a new one",
    "site_mismatch": "the token is for another site than this agent's",
    "key_in_use": "this key is registered for another agent or was revoked; make a new key "
    "(fleet-agent keys init --force) and enroll again",
    "key_not_active": "the backend no longer accepts this agent's key; enroll again with a "
    "new token",
    "bad_proof": "the backend could not verify the new key's proof",
}


@dataclass(frozen=True)
class Exchange:
    """A request sent and the verified reply (``None``: none came in time)."""

    request_id: str
    reply: ControlReply | None
    reply_topic: str


def settings_of(config: AgentConfig, *, what: str) -> MqttSettings:
    if config.upload.mqtt is None:
        raise ConfigError(f"upload.mqtt: {what} needs the broker the agent uploads to")
    return config.upload.mqtt


def add_request_options(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--timeout`` and ``--format``: the options of every request command."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"config file (default {DEFAULT_CONFIG_PATH}, or $FLEET_AGENT_CONFIG)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"wait this long for the reply (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or JSON"
    )


def prepare(args: argparse.Namespace, *, what: str) -> tuple[AgentConfig, MqttSettings]:
    """The configuration and the broker a request goes to; bad options first (exit 2)."""
    if args.timeout <= 0:
        raise UsageError("--timeout: must be positive")
    config = load_config(args.config)
    configure_logging("warning", stream=sys.stderr)
    return config, settings_of(config, what=what)


def pinned_backend_key(path: Path) -> PublicKey:
    """The backend key pinned at enrollment; :class:`KeyFileError` says how to get one."""
    if not path.exists():
        raise KeyFileError(
            "no pinned backend key: enroll first (fleet-agent enroll --token T), or copy the "
            "backend's public JWK (fleet-agent keys show --format jwk --state-dir BACKEND_DIR) "
            "here",
            path=path,
        )
    return load_public_key(path)


def pin_backend_key(path: Path, reply: ControlReply) -> None:
    """Write the backend's public JWK atomically: remote configuration verifies with it."""
    jwk = reply.backend_jwk.as_dict()
    data = json.dumps({**jwk, "use": "sig", "alg": "EdDSA"}, indent=2, sort_keys=True) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(path, data.encode("utf-8"))
    except OSError as exc:
        raise KeyFileError(f"cannot pin the backend key ({exc.strerror})", path=path) from exc


def ask_backend(
    settings: MqttSettings,
    *,
    key: AgentKey,
    agent_id: str,
    body: EnrollRequest | KeyRotationRequest,
    backend_key_id: str | None,
    pinned: PublicKey | None,
    within: float,
) -> Exchange:
    """Sign ``body`` as its request (``enroll`` or ``key_rotation``) with ``key``, send it,
    and wait (``within`` seconds at most) for the backend's verified reply."""
    kind: MessageKind = "enroll" if isinstance(body, EnrollRequest) else "key_rotation"
    signed = Signer(key, agent_id).sign(
        kind=kind,
        body=body.model_dump(mode="json", exclude_none=True),
        sequence=1,
        prev_hash=None,
    )
    expected = "enroll_reply" if kind == "enroll" else "key_rotation_reply"

    def accept(payload: bytes) -> ControlReply | None:
        try:
            reply = open_reply(payload, backend_key_id=backend_key_id, pinned=pinned)
        except EnvelopeRejected:
            return None  # not from our backend, or not a reply: keep waiting
        if reply.request_id != signed.message_id or reply.kind != expected:
            return None
        return reply

    request = ControlRequest(
        client_id=f"fleet-agent-{agent_id}-{kind.replace('_', '-')}",
        topic=settings.agent_topic(agent_id, kind),
        payload=signed.token.encode("ascii"),
        reply_topic=settings.replies_topic(agent_id),
    )
    reply = asyncio.run(request_reply(settings, request, accept, within=within))
    return Exchange(signed.message_id, reply, request.reply_topic)


def report(
    out: TextIO, record: dict[str, object], message: str, *, output: str, reply: ControlReply | None
) -> int:
    """Say what happened (``message``, or ``record`` with it as JSON); 0 only if accepted."""
    record["detail"] = message
    write_line(out, json.dumps(record, sort_keys=True) if output == "json" else message)
    return 0 if reply is not None and reply.accepted else 1


def explain(reply: ControlReply) -> str:
    """One sentence for a refusal: the backend's detail and what to do."""
    advice = _ADVICE.get(reply.outcome, "")
    return f"refused ({reply.outcome}): {reply.detail}" + (f"; {advice}" if advice else "")
