"""``fleet-agent keys rotate``: replace the agent's key without ever stranding it.

1. A new key is made and kept beside the current one as ``agent.key.next``
   (or the one left there by an unanswered rotation is used again).
2. A ``key_rotation`` request signed by the current key, carrying the new public
   key and the new key's own signature over the rotation, goes to the backend.
3. Only when the backend's reply, signed with the key pinned at enrollment,
   says ``accepted`` does ``agent.key.next`` replace ``agent.key`` (a running
   daemon picks it up within seconds). Refused: the new key is discarded. No
   reply: both stay, and running ``keys rotate`` again asks for the same new key.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TextIO

from agent import __version__
from agent.cli_help import plain
from agent.enrolling import (
    add_request_options,
    ask_backend,
    explain,
    pinned_backend_key,
    prepare,
    report,
)
from agent.state import backend_key_path, key_path, next_key_path
from uploader.enrollment import KeyRotationRequest, PublicJwk, key_proof
from uploader.keys import AgentKey


def register_rotation(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rotate = actions.add_parser(
        "rotate",
        help="replace the agent's key (the backend acknowledges first)",
        description=plain(__doc__.split("\n\n", 1)[1] if __doc__ else None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_request_options(rotate)
    rotate.set_defaults(handler=run_rotate)


def _next_key(path: Path) -> AgentKey:
    if path.exists():
        return AgentKey.load(path)  # an unanswered rotation: ask for the same key again
    key = AgentKey.generate()
    key.save(path)
    return key


def run_rotate(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    config, settings = prepare(args, what="key rotation")
    state = config.state_dir
    pinned = pinned_backend_key(backend_key_path(state))
    current = AgentKey.load(key_path(state))
    pending = next_key_path(state)
    new = _next_key(pending)
    body = KeyRotationRequest(
        new_jwk=PublicJwk.model_validate(new.public_jwk()),
        new_key_proof=key_proof(new, agent_id=config.agent_id, old_key_id=current.key_id),
        agent_version=__version__,
    )
    exchange = ask_backend(
        settings,
        key=current,
        agent_id=config.agent_id,
        body=body,
        backend_key_id=None,
        pinned=pinned,
        within=args.timeout,
    )
    reply = exchange.reply
    record: dict[str, object] = {
        "agent_id": config.agent_id,
        "old_key_id": current.key_id,
        "new_key_id": new.key_id,
        "outcome": "timeout" if reply is None else reply.outcome,
    }
    if reply is None:
        message = (
            f"no reply from the backend within {args.timeout:g} s on {exchange.reply_topic}; "
            f"still using key {current.key_id}. Run `fleet-agent keys rotate` again: it asks "
            f"for the same new key (kept in {pending})"
        )
    elif reply.accepted:
        new.save(key_path(state), force=True)
        with contextlib.suppress(FileNotFoundError):
            pending.unlink()
        message = (
            f"rotated: key {new.key_id} replaces {current.key_id} for agent {config.agent_id} "
            f"(acknowledged by the backend); a running daemon switches to it within seconds"
        )
    else:
        with contextlib.suppress(FileNotFoundError):
            pending.unlink()
        message = f"{explain(reply)}; still using key {current.key_id}"
    return report(out, record, message, output=args.format, reply=reply)
