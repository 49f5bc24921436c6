"""Manual reads handed to the running daemon, which holds the outbox.

``fleet-agent meter add|import`` signs and queues reads in the agent's outbox. While
the daemon runs, it holds that outbox (an exclusive lock: one writer, one sequence
chain), so the command hands the validated entries to the daemon instead: one JSON
file per command in ``<state_dir>/manual-inbox/``, written to a temporary name,
synced, then renamed (the daemon never sees half a file). The daemon looks at the
inbox every second, turns each file into signed reads (and anomaly events, checked
against its inventory) exactly as the command does, commits them to the outbox in
one transaction and only then deletes the file. A file the daemon cannot use is
renamed to ``*.rejected`` with the reason beside it (``*.rejected.txt``), never
deleted.

Delivery is at least once: a daemon killed between its commit and the deletion
queues that file again at its next start (the backend keeps both reads; billing
gives the same usage from two equal reads). A file nobody took (the daemon stopped
first) is queued by the next ``meter`` command that gets the outbox, or by the
daemon when it starts.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from agent.inventory import Inventory
from agent.manual_meters import ManualRead, build_read
from agent.validation import describe
from mibs.events import ImplausibleJump, MeterBackwards, SerialChanged
from mibs.messages import ReadMessage
from mibs.meter_anomalies import anomaly_event, read_anomalies

log = structlog.get_logger("agent.manual_inbox")

INBOX = "manual-inbox"
ManualMessage = ReadMessage | MeterBackwards | ImplausibleJump | SerialChanged


class InboxFile(BaseModel):
    """One command's entries, as handed to the daemon."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    handed_at: datetime
    entries: tuple[ManualRead, ...]


def inbox_dir(state_dir: Path) -> Path:
    return state_dir / INBOX


def manual_messages(
    entries: tuple[ManualRead, ...] | list[ManualRead], inventory: Inventory, *, now: datetime
) -> list[ManualMessage]:
    """The signed-to-be reads of ``entries``, each followed by its anomaly events.

    An entry newer than the inventory's last read of its device is checked against that
    read like a device read (the command and the daemon both come here).
    """
    messages: list[ManualMessage] = []
    for entry in entries:
        device_id, read = build_read(entry, inventory, now=now)
        messages.append(ReadMessage.of(read, device_id=device_id, purpose="meters", verdict=None))
        previous = inventory.last_read(device_id)
        if previous is not None and previous.collected_at < read.collected_at:
            messages.extend(
                anomaly_event(anomaly, device_id, read)
                for anomaly in read_anomalies(previous, read, None)
            )
    return messages


def hand_over(entries: tuple[ManualRead, ...] | list[ManualRead], state_dir: Path) -> Path:
    """Write ``entries`` into the inbox, durably and atomically; returns the file."""
    directory = inbox_dir(state_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = datetime.now(UTC)
    document = InboxFile(handed_at=now, entries=tuple(entries)).model_dump_json(indent=1)
    name = f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.json"
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".incoming-", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(document)
            stream.flush()
            os.fsync(stream.fileno())
        target = directory / name
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)  # the rename itself survives a power cut
    finally:
        os.close(descriptor)
    return target


def pending(state_dir: Path) -> list[Path]:
    """Inbox files waiting for the outbox, oldest first (none when there is no inbox)."""
    try:
        names = os.listdir(inbox_dir(state_dir))
    except FileNotFoundError:
        return []
    return [inbox_dir(state_dir) / name for name in sorted(names) if name.endswith(".json")]


def load(path: Path) -> tuple[ManualRead, ...]:
    """The entries of an inbox file; ValueError naming the file and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from exc
    try:
        return InboxFile.model_validate_json(text).entries
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "file"
        raise ValueError(f"{path}: {where}: {describe(error)}") from exc


def reject(path: Path, reason: str) -> Path:
    """Set a file aside with the reason beside it; returns where it went."""
    target = path.with_name(path.name + ".rejected")
    os.replace(path, target)
    target.with_name(target.name + ".txt").write_text(reason + "\n", encoding="utf-8")
    return target


async def queue_pending(
    state_dir: Path,
    inventory: Inventory,
    submit: Callable[[ManualMessage], Awaitable[None]],
) -> int:
    """Queue every inbox file through ``submit`` (the daemon's outbox); returns the reads.

    A file that cannot be used is set aside (:func:`reject`) and logged; one whose
    messages could not all be committed stays, and is tried again next time.
    """
    count = 0
    for path in pending(state_dir):
        try:
            entries = load(path)
            messages = manual_messages(entries, inventory, now=datetime.now(UTC))
        except ValueError as exc:
            where = reject(path, str(exc))
            log.error("manual.rejected", file=str(where), error=str(exc))  # noqa: TRY400 - named
            continue
        # Submitted together, so the outbox commits them in one transaction.
        await asyncio.gather(*(submit(message) for message in messages))
        path.unlink(missing_ok=True)
        log.info(
            "manual.queued",
            file=path.name,
            reads=len(entries),
            events=len(messages) - len(entries),
        )
        count += len(entries)
    return count
