"""Reads as ``fleet-agent scan --format json`` prints them: one JSON object a line.

An ``"eligibility"`` key (present when scan ran with ``--policy``) is dropped:
the report computes verdicts afresh under the policy it is given. Errors name
the source and line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from pydantic import ValidationError

from agent.errors import ConfigError
from agent.validation import describe, dotted
from mibs.models import PrinterRead

_MAX_ERRORS = 20


def parse_reads(lines: Iterable[str], *, source: str) -> list[PrinterRead]:
    """Every read in ``lines``; raises :class:`ConfigError` listing bad lines (up to 20)."""
    reads: list[PrinterRead] = []
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
        try:
            reads.append(PrinterRead.model_validate(record))
        except ValidationError as exc:
            errors.extend(
                f"{source}:{number}: {dotted(error['loc'])}: {describe(error)}"
                for error in exc.errors()
            )
    if errors:
        shown = errors[:_MAX_ERRORS]
        more = len(errors) - len(shown)
        if more:
            shown.append(f"... and {more} more")
        raise ConfigError("not a file of reads:\n  " + "\n  ".join(shown), path=source)
    return reads
