"""The side-by-side column walk as a state machine: varbinds in, rows out, no I/O.

:class:`ColumnWalk` holds one cursor per requested column. The session asks it
which OIDs to send next, feeds it each GETNEXT/GETBULK answer, and reads a
:class:`collectors.base.WalkResult` at the end. A column ends when an answer
leaves its prefix (or says endOfMibView); it *fails*, keeping the rows read so
far, on a non-increasing OID, a varbind whose name is not an OID, an exception
value no GETNEXT may carry, or an absurd number of rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from collectors._pysnmp_types import RawVarbind, Special
from collectors.base import WalkResult
from mibs.values import Oid, Value, is_under

MAX_ROWS_PER_COLUMN = 10_000  # far beyond any printer table; stops an endless responder

# Why a column failed: the reason codes that land in WalkResult.failed.
NOT_INCREASING = "not_increasing"
BAD_INDEX = "bad_index"
UNEXPECTED_EXCEPTION = "unexpected_exception"
TOO_MANY_ROWS = "too_many_rows"
SHORT_RESPONSE = "short_response"
NO_PROGRESS = "no_progress"
TIMEOUT = "timeout"
TOO_BIG = "too_big"


@dataclass
class _Cursor:
    prefix: Oid
    last: Oid
    rows: list[tuple[Oid, Value]] = field(default_factory=list)
    open: bool = True


class ColumnWalk:
    def __init__(self, columns: Sequence[Oid]) -> None:
        self._cursors: dict[Oid, _Cursor] = {}
        for prefix in columns:
            if prefix not in self._cursors:
                self._cursors[prefix] = _Cursor(prefix=prefix, last=prefix)
        self._failed: dict[Oid, str] = {}

    @property
    def open_columns(self) -> list[Oid]:
        return [c.prefix for c in self._cursors.values() if c.open]

    def next_oids(self, columns: Sequence[Oid]) -> list[Oid]:
        """The OIDs to send GETNEXT/GETBULK for: each column's last OID."""
        return [self._cursors[prefix].last for prefix in columns]

    @property
    def rows_read(self) -> int:
        return sum(len(c.rows) for c in self._cursors.values())

    def finish(self, prefix: Oid) -> None:
        """The column ended normally (v1 noSuchName on GETNEXT means end of MIB)."""
        self._cursors[prefix].open = False

    def fail(self, prefix: Oid, reason: str) -> None:
        cursor = self._cursors[prefix]
        if cursor.open:
            cursor.open = False
            self._failed[prefix] = reason

    def fail_open(self, reason: str) -> None:
        for prefix in self.open_columns:
            self.fail(prefix, reason)

    def feed(self, columns: Sequence[Oid], varbinds: Sequence[RawVarbind], *, bulk: bool) -> None:
        """One answer to a request for ``columns`` (in request order).

        GETNEXT answers carry one varbind per column; GETBULK answers carry
        rows of ``len(columns)`` varbinds, possibly truncated by the agent.
        """
        width = len(columns)
        before = [(self._cursors[p].last, self._cursors[p].open) for p in columns]
        for position, (oid, value) in enumerate(varbinds):
            if not bulk and position >= width:
                break
            self._accept(self._cursors[columns[position % width]], oid, value)
        if not bulk and len(varbinds) < width:
            for prefix in columns[len(varbinds) :]:
                self.fail(prefix, SHORT_RESPONSE)
        after = [(self._cursors[p].last, self._cursors[p].open) for p in columns]
        if before == after:
            for prefix in columns:
                self.fail(prefix, NO_PROGRESS)

    def _accept(self, cursor: _Cursor, oid: Oid, value: Value | Special) -> None:
        if not cursor.open:
            return
        if value is Special.BAD_NAME:
            self.fail(cursor.prefix, BAD_INDEX)
            return
        if value is Special.END_OF_MIB_VIEW or not is_under(oid, cursor.prefix):
            cursor.open = False
            return
        if oid <= cursor.last:
            self.fail(cursor.prefix, NOT_INCREASING)
            return
        cursor.last = oid
        if value is Special.NO_SUCH_OBJECT or value is Special.NO_SUCH_INSTANCE:
            self.fail(cursor.prefix, UNEXPECTED_EXCEPTION)
            return
        if isinstance(value, Special):
            return  # NULL / unsupported type: the row is absent, the walk goes on
        cursor.rows.append((oid, value))
        if len(cursor.rows) > MAX_ROWS_PER_COLUMN:
            self.fail(cursor.prefix, TOO_MANY_ROWS)

    def result(self) -> WalkResult:
        return WalkResult(
            rows={prefix: list(c.rows) for prefix, c in self._cursors.items()},
            failed=dict(self._failed),
        )
