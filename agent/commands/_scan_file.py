"""``scan --file WALK``: decode a saved walk or recording as if the device answered now.

A ``snmpwalk -On`` output (:mod:`mibs.snmpwalk`) or an snmpsim ``.snmprec``
recording (:mod:`mibs.snmprec`) is served by a :class:`collectors.base.RecordedSession`
to the same reader, full read plan and decoders a live scan uses, so the read is
the one the device would have given when it was walked. The read's address is the
one TARGET given with a single ``--file``, else the file's name. A line the
parser cannot read is an error naming ``FILE:LINE``; nothing goes on the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent.commands._target_options import read_option_file
from agent.errors import LocalError, UsageError
from collectors.base import RecordedSession
from collectors.reader import read_session
from mibs.models import PrinterRead
from mibs.plan import full_read_plan
from mibs.snmprec import SnmprecError, load_varbinds
from mibs.snmpwalk import WalkError, looks_like_walk, parse_walk
from mibs.values import Oid, Value

if TYPE_CHECKING:
    from agent.commands.scan import _Output

#: A saved walk answers at once; this only bounds a pathological plan.
_OFFLINE_DEADLINE = 60.0


class SavedWalkError(LocalError):
    """A ``--file`` cannot be read or is not a walk or recording (the message names FILE:LINE)."""


def load_saved(path: Path) -> dict[Oid, Value]:
    """The varbinds of a saved walk or recording; errors name the file and line."""
    text = read_option_file(path, "--file", errors="surrogateescape")
    try:
        if path.suffix == ".snmprec" or not looks_like_walk(text):
            return load_varbinds(text)
        return parse_walk(text)
    except (SnmprecError, WalkError) as exc:
        line = getattr(exc, "line", None)
        message = str(exc).removeprefix(f"line {line}: ")
        raise SavedWalkError(f"{path}:{line}: {message}") from None


async def read_saved(path: Path, address: str) -> PrinterRead:
    session = RecordedSession(address, load_saved(path))
    return await read_session(session, full_read_plan(), deadline=_OFFLINE_DEADLINE)


def scan_files(paths: Sequence[Path], targets: Sequence[str], output: _Output) -> int:
    """Decode each saved file and print it like a scanned printer; exit 1 if none is one."""
    if targets and len(paths) != 1:
        raise UsageError("TARGET with --file: give one --file and at most one TARGET (its address)")
    if len(targets) > 1:
        raise UsageError("TARGET with --file: one address only (the device that was walked)")
    output.start(None, max(15, *(len(str(p.name)) for p in paths), *(len(t) for t in targets)))
    printers = 0
    for path in paths:
        address = targets[0] if targets else path.name
        read = asyncio.run(read_saved(path, address))
        if not read.identity.is_printer:
            what = read.identity.sys_descr or read.identity.sys_object_id or "no sysObjectID"
            output.note(f"{path}: not a printer's walk ({what[:60]})")
            continue
        printers += 1
        output.emit(read)
    output.finish()
    return 0 if printers else 1
