"""Reads as ``fleet-agent scan --format json`` prints them: one JSON object a line.

An ``"eligibility"`` key (present when scan ran with ``--policy``) is dropped:
the report computes verdicts afresh under the policy it is given; so is the
``"purpose"`` of an uploaded read, whose ``"device_id"`` is kept by
:func:`parse_read_records`. Errors name the source and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from pydantic import ValidationError

from agent.errors import ConfigError
from agent.validation import describe, dotted
from mibs.models import PrinterRead

_MAX_ERRORS = 20


def parse_read_records(
    lines: Iterable[str], *, source: str
) -> list[tuple[str | None, PrinterRead]]:
    """Every read in ``lines`` with its ``device_id`` (uploads carry one; scan output does not).

    The keys an upload adds (``device_id``, ``purpose``, ``eligibility``) are accepted;
    raises :class:`ConfigError` listing bad lines (up to 20).
    """
    return list(iter_read_records(lines, source=source))


def iter_read_records(
    lines: Iterable[str], *, source: str
) -> Iterator[tuple[str | None, PrinterRead]]:
    """:func:`parse_read_records` one line at a time: each good read as soon as it is parsed.

    The :class:`ConfigError` listing the bad lines comes after the last read: a caller
    must not act on the reads before the iteration ends.
    """
    errors: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{source}:{number}: not JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(record, dict):
            errors.append(f"{source}:{number}: expected a JSON object per line")
            continue
        record.pop("eligibility", None)
        record.pop("purpose", None)
        device_id = record.pop("device_id", None)
        if device_id is not None and not (isinstance(device_id, str) and device_id):
            errors.append(f"{source}:{number}: device_id: must be a non-empty string")
            continue
        try:
            read = PrinterRead.model_validate(record)
        except ValidationError as exc:
            errors.extend(
                f"{source}:{number}: {dotted(error['loc'])}: {describe(error)}"
                for error in exc.errors()
            )
            continue
        yield device_id, read
    if errors:
        shown = errors[:_MAX_ERRORS]
        more = len(errors) - len(shown)
        if more:
            shown.append(f"... and {more} more")
        raise ConfigError("not a file of reads:\n  " + "\n  ".join(shown), path=source)


def parse_reads(lines: Iterable[str], *, source: str) -> list[PrinterRead]:
    """Every read in ``lines``; raises :class:`ConfigError` listing bad lines (up to 20)."""
    return [read for _device_id, read in parse_read_records(lines, source=source)]
