"""``fleet-agent keys list|revoke``: the backend's registered keys (see ``keys --help``)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TextIO

from agent.commands.enroll_token import add_store_option
from agent.errors import UsageError
from agent.output import write_line
from agent.tabular import cell, write_records
from backend.keyring import KeyRing
from backend.store import open_store

KEY_COLUMNS = ("key_id", "agent_id", "site", "status", "source", "created_at", "changed_at")


def register_backend(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listing = actions.add_parser(
        "list",
        help="the backend's registered keys and their state",
        description="The keys the backend's store knows: key id, agent, site, state "
        "(active, retired, revoked), how it was registered, when.",
    )
    listing.add_argument("--agent", metavar="AGENT_ID", help="only this agent's keys")
    listing.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="table (default), JSON or CSV",
    )
    add_store_option(listing)
    listing.set_defaults(handler=run_list)

    revoke = actions.add_parser(
        "revoke",
        help="refuse every envelope signed by these keys from now on (backend)",
        description="Refuse every envelope signed by the keys given (KID, as 'keys list' "
        "shows them) or by every key of --agent, from now on (reason key_revoked).",
    )
    revoke.add_argument("key_ids", nargs="*", metavar="KID", help="key ids (keys list shows them)")
    revoke.add_argument("--agent", metavar="AGENT_ID", help="revoke every key of this agent")
    add_store_option(revoke)
    revoke.set_defaults(handler=run_revoke)


def run_list(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    store = open_store(args.store)
    try:
        bindings = KeyRing(store).bindings(args.agent)
    finally:
        store.close()
    records = [binding.model_dump() for binding in bindings]
    title = f"{len(records)} registered key{'s' if len(records) != 1 else ''}"
    write_records(out, records, KEY_COLUMNS, output=args.format, title=title)
    return 0


def run_revoke(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    if not args.key_ids and args.agent is None:
        raise UsageError("keys revoke: name key ids, or --agent AGENT_ID")
    store = open_store(args.store)
    try:
        with store.batch():
            revoked = KeyRing(store).revoke(
                key_ids=args.key_ids, agent_id=args.agent, now=datetime.now(UTC)
            )
    finally:
        store.close()
    for binding in revoked:
        write_line(
            out,
            f"revoked key {binding.key_id} (agent {binding.agent_id or '-'}) "
            f"at {cell(binding.changed_at)}",
        )
    return 0
