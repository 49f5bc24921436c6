"""``fleet-agent enroll-token create|list|revoke``: one-time enrollment tokens (backend side).

    fleet-agent enroll-token create --site berlin --store sqlite:///fleet.db
    fleet-agent enroll-token list --store sqlite:///fleet.db

``create --site S`` issues a token for one agent of site S, valid ``--expires``
(default 24h), and prints it once: only its SHA-256 is stored. With
``--backend-key FILE`` (the key ``ingest --backend-key`` signs replies with) the
token ends with that key's id, so the agent accepts replies from that backend
only and pins its key; without it the agent pins the first backend key that
answers. ``list`` shows every token and its state (unused, used by which agent,
expired, revoked); ``revoke TOKEN_ID`` (the id ``list`` shows) makes one unusable.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from agent.cli_help import add_command
from agent.config import parse_duration
from agent.errors import UsageError
from agent.output import json_line, write_line
from agent.tabular import cell, write_records
from backend.keyring import KeyRing, TokenInfo
from backend.store import DEFAULT_STORE, open_store
from uploader.enrollment import EnrollmentToken
from uploader.keys import AgentKey

TOKEN_COLUMNS = ("token_id", "site", "state", "created_at", "expires_at", "used_by", "used_at")


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=DEFAULT_STORE,
        metavar="DSN",
        help=f"the backend's store: sqlite:///file.db or postgresql://... "
        f"(default {DEFAULT_STORE})",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "enroll-token",
        help="issue, list or revoke one-time agent enrollment tokens (backend)",
        doc=__doc__,
    )
    actions = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create",
        help="issue a token for one agent of a site",
        description="Issue a one-time token for one agent of --site and print it once (only "
        "its SHA-256 is stored). Give it to the agent's 'fleet-agent enroll --token'.",
    )
    create.add_argument(
        "--site", required=True, metavar="SITE", help="the site the enrolled key may publish for"
    )
    create.add_argument(
        "--expires",
        default="24h",
        metavar="DURATION",
        help="validity: 30m, 24h, 7d (default 24h)",
    )
    create.add_argument(
        "--backend-key", type=Path, metavar="FILE", help="the backend's key (PEM) the agent pins"
    )
    create.add_argument(
        "--format", choices=("text", "json"), default="text", help="text (default) or JSON"
    )
    add_store_option(create)
    create.set_defaults(handler=run_create)

    listing = actions.add_parser(
        "list",
        help="every token and its state",
        description="Every token issued and its state: unused, used (by which agent, when), "
        "expired or revoked.",
    )
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
        help="make a token unusable",
        description="Make a token unusable before it expires (an agent that already enrolled "
        "with it stays enrolled).",
    )
    revoke.add_argument(
        "token_id", metavar="TOKEN_ID", help="the id 'fleet-agent enroll-token list' shows"
    )
    add_store_option(revoke)
    revoke.set_defaults(handler=run_revoke)


def _site(value: str) -> str:
    if not value or len(value) > 128 or any(ch in value for ch in "/#+ \t\n") or value[0] == "$":
        raise UsageError(f"--site {value!r}: one MQTT topic level (no '/', '+', '#' or spaces)")
    return value


def _expiry(value: str) -> timedelta:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"--expires {value!r}: {exc}") from None
    if seconds <= 0:
        raise UsageError(f"--expires {value!r}: must be positive")
    return timedelta(seconds=seconds)


def token_record(info: TokenInfo, now: datetime) -> dict[str, object]:
    return {**info.model_dump(), "state": info.state(now)}


def run_create(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    site = _site(args.site)
    lifetime = _expiry(args.expires)
    backend_key = AgentKey.load(args.backend_key) if args.backend_key is not None else None
    token = EnrollmentToken.new(backend_key.key_id if backend_key is not None else None)
    now = datetime.now(UTC)
    store = open_store(args.store)
    try:
        info = KeyRing(store).add_token(
            token_hash=token.hash,
            site=site,
            expires_at=now + lifetime,
            backend_key_id=token.backend_key_id,
            now=now,
        )
    finally:
        store.close()
    if args.format == "json":
        record = {**token_record(info, now), "token": str(token)}
        write_line(out, json_line({k: cell(v) for k, v in record.items()}))
        return 0
    write_line(out, str(token))
    print(
        f"token {info.token_id} for site {site}, valid until {cell(info.expires_at)}, one use.\n"
        f"On the agent: fleet-agent enroll --token {token}",
        file=sys.stderr,
    )
    return 0


def run_list(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    store = open_store(args.store)
    try:
        tokens = KeyRing(store).tokens()
    finally:
        store.close()
    now = datetime.now(UTC)
    records = [token_record(info, now) for info in tokens]
    title = f"{len(records)} enrollment token{'s' if len(records) != 1 else ''}"
    write_records(out, records, TOKEN_COLUMNS, output=args.format, title=title)
    return 0


def run_revoke(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    store = open_store(args.store)
    try:
        info = KeyRing(store).revoke_token(args.token_id.lower(), datetime.now(UTC))
    finally:
        store.close()
    write_line(out, f"token {info.token_id} (site {info.site}) revoked")
    return 0
