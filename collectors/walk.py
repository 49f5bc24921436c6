"""The GET and column-walk strategy (docs/reading.md) over a :class:`Requester`, wire-independent.

:class:`Session` (v1/v2c, v3) and :class:`RecordedSession` (a saved walk) are what reads run over.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from collectors.credentials import SnmpSettings
from collectors.errors import SnmpProtocolError, SnmpTimeout
from collectors.snmp_message import (
    NO_SUCH_NAME,
    TOO_BIG,
    PduKind,
    RawVarbind,
    Response,
    Special,
    error_status_name,
)
from mibs.reasons import Reason, error_status_reason
from mibs.values import Oid, Value, format_oid, is_under

_log = structlog.get_logger(__name__)


@dataclass
class WalkResult:
    """Rows per requested column prefix, in OID order; a failed column keeps its rows so far."""

    rows: dict[Oid, list[tuple[Oid, Value]]] = field(default_factory=dict)
    failed: dict[Oid, Reason] = field(default_factory=dict)


@dataclass
class _Cursor:
    prefix: Oid
    last: Oid
    rows: list[tuple[Oid, Value]] = field(default_factory=list)
    open: bool = True


class ColumnWalk:
    """The cursors of columns walked side by side; a column that misbehaves stops alone."""

    def __init__(self, columns: Sequence[Oid]) -> None:
        self._cursors = {prefix: _Cursor(prefix=prefix, last=prefix) for prefix in columns}
        self._failed: dict[Oid, Reason] = {}

    @property
    def open_columns(self) -> list[Oid]:
        return [c.prefix for c in self._cursors.values() if c.open]

    def next_oids(self, columns: Sequence[Oid]) -> list[Oid]:
        """The OIDs to send GETNEXT/GETBULK for: each column's last OID."""
        return [self._cursors[prefix].last for prefix in columns]

    def fail(self, prefix: Oid, reason: Reason | None) -> None:
        """Close the column; ``None``: it ended normally (v1 noSuchName on GETNEXT)."""
        cursor = self._cursors[prefix]
        if cursor.open:
            cursor.open = False
            if reason is not None:
                self._failed[prefix] = reason

    def feed(self, columns: Sequence[Oid], varbinds: Sequence[RawVarbind], *, bulk: bool) -> None:
        """One answer for ``columns``: a varbind each (GETNEXT), or rows of them (GETBULK)."""
        width = len(columns)
        before = [(self._cursors[p].last, self._cursors[p].open) for p in columns]
        for position, (oid, value) in enumerate(varbinds):
            if not bulk and position >= width:
                break
            self._accept(self._cursors[columns[position % width]], oid, value)
        if not bulk and len(varbinds) < width:
            for prefix in columns[len(varbinds) :]:
                self.fail(prefix, "short_response")
        after = [(self._cursors[p].last, self._cursors[p].open) for p in columns]
        if before == after:
            for prefix in columns:
                self.fail(prefix, "no_progress")

    def _accept(self, cursor: _Cursor, oid: Oid, value: Value | Special) -> None:
        if not cursor.open:
            return
        if value is Special.BAD_NAME:
            self.fail(cursor.prefix, "bad_index")
        elif value is Special.END_OF_MIB_VIEW or not is_under(oid, cursor.prefix):
            cursor.open = False
        elif oid <= cursor.last:
            self.fail(cursor.prefix, "not_increasing")
        else:
            cursor.last = oid
            if value is Special.NO_SUCH_OBJECT or value is Special.NO_SUCH_INSTANCE:
                self.fail(cursor.prefix, "unexpected_exception")
            elif not isinstance(value, Special):  # NULL / unsupported type: no row, walk on
                cursor.rows.append((oid, value))
                if len(cursor.rows) > 10_000:  # beyond any printer table: an endless responder
                    self.fail(cursor.prefix, "too_many_rows")

    def result(self) -> WalkResult:
        return WalkResult({prefix: c.rows for prefix, c in self._cursors.items()}, self._failed)


class Requester(Protocol):
    """One PDU out, its answer back; raises ``SnmpTimeout`` (no answer after the retries),
    ``SnmpAuthError`` (SNMPv3 security) or ``SnmpProtocolError`` (an unusable answer)."""

    async def request(
        self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> Response: ...


class Session:
    def __init__(
        self,
        requester: Requester,
        *,
        address: str,
        version: str,
        settings: SnmpSettings,
        no_bulk: set[str] | None = None,
        key: str | None = None,
    ) -> None:
        """``no_bulk``: the keys of devices seen to ignore GETBULK, shared by a transport."""
        self.address = address
        self._requester = requester
        self._settings = settings
        self._no_bulk = no_bulk if no_bulk is not None else set()
        self._key = key or address
        self._bulk = version != "v1" and settings.use_bulk
        self._get_batch = 24  # varbinds per GET/GETNEXT: ~24 printer strings fit 1,400 bytes
        self._bulk_varbinds = 40  # varbinds per GETBULK answer (columns x repetitions)
        self._answered = False  # any answer to any PDU in this session
        self._bulk_answered = False
        self._silent = False

    async def _send(self, kind: PduKind, oids: Sequence[Oid], reps: int = 0) -> Response:
        try:
            response = await self._requester.request(kind, oids, reps)
        except SnmpTimeout:
            if kind is not PduKind.BULK and not self._answered:
                self._silent = True  # never answered even a GET/GETNEXT: a dead device
            raise
        self._answered = True
        self._bulk_answered |= kind is PduKind.BULK
        return response

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
        pending = list(dict.fromkeys(oids))
        found: dict[Oid, Value] = {}
        while pending:
            chunk = pending[: self._get_batch]
            response = await self._send(PduKind.GET, chunk)
            status, index = response.error_status, response.error_index
            if status == 0:
                wanted = set(chunk)
                for oid, value in response.varbinds:
                    if oid in wanted and not isinstance(value, Special):
                        found[oid] = value
                pending = pending[len(chunk) :]
            elif status == TOO_BIG and len(chunk) > 1:
                self._get_batch = max(1, len(chunk) // 2)
            elif status != TOO_BIG and 1 <= index <= len(chunk):
                bad = chunk[index - 1]
                if status != NO_SUCH_NAME:
                    _log.info(
                        "snmp.get.varbind_error",
                        address=self.address,
                        oid=format_oid(bad),
                        error_status=error_status_name(status),
                    )
                pending.remove(bad)
            else:
                message = (
                    f"{self.address}: GET answered {error_status_name(status)} (index {index})"
                )
                raise SnmpProtocolError(message, address=self.address, oid=format_oid(chunk[0]))
        return found

    async def walk(self, columns: Sequence[Oid]) -> WalkResult:
        walk = ColumnWalk(columns)
        answered_in_walk = False
        while batch := walk.open_columns:
            bulk = self._bulk and self._key not in self._no_bulk
            batch = batch[: max(1, self._bulk_varbinds if bulk else self._get_batch)]
            oids = walk.next_oids(batch)
            reps = max(1, min(self._settings.max_repetitions, self._bulk_varbinds // len(batch)))
            kind = PduKind.BULK if bulk else PduKind.NEXT
            try:
                response = await self._send(kind, oids, reps if bulk else 0)
            except SnmpTimeout:
                fallback = await self._bulk_fallback(oids) if bulk else None
                if fallback is None:
                    if not answered_in_walk:
                        raise
                    for prefix in walk.open_columns:
                        walk.fail(prefix, "timeout")
                    break
                response, bulk = fallback, False
            answered_in_walk = True
            self._apply(walk, batch, response, bulk=bulk)
        return walk.result()

    async def _bulk_fallback(self, oids: Sequence[Oid]) -> Response | None:
        """A GETBULK went unanswered: the GETNEXT answer if the device is bulk-deaf, else None."""
        if self._bulk_answered or self._silent:
            return None
        try:
            response = await self._send(PduKind.NEXT, oids)
        except SnmpTimeout:
            return None
        self._no_bulk.add(self._key)
        _log.info("snmp.bulk.unsupported", address=self.address)
        return response

    def _apply(self, walk: ColumnWalk, batch: list[Oid], response: Response, *, bulk: bool) -> None:
        status, index = response.error_status, response.error_index
        if status == 0:
            walk.feed(batch, response.varbinds, bulk=bulk)
        elif status == TOO_BIG:
            if bulk and self._bulk_varbinds > len(batch):
                self._bulk_varbinds = max(len(batch), self._bulk_varbinds // 2)
            elif len(batch) > 1 and bulk:
                self._bulk_varbinds = max(1, len(batch) // 2)
            elif len(batch) > 1:
                self._get_batch = max(1, len(batch) // 2)
            else:
                walk.fail(batch[0], "too_big")
        else:
            reason: Reason | None = error_status_reason(error_status_name(status))
            named = batch[index - 1 : index] if 1 <= index <= len(batch) else None
            if named and status == NO_SUCH_NAME and not bulk:
                reason = None  # SNMPv1: GETNEXT past the last object ends the column
            for prefix in named or batch:
                walk.fail(prefix, reason)


class RecordedSession:
    """Answers as the device did when it was walked: an offline read, same reader and decoders."""

    def __init__(self, address: str, varbinds: Mapping[Oid, Value]) -> None:
        self.address = address
        self._values = dict(varbinds)
        self._oids = sorted(self._values)

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
        return {oid: self._values[oid] for oid in oids if oid in self._values}

    async def walk(self, columns: Sequence[Oid]) -> WalkResult:
        rows: dict[Oid, list[tuple[Oid, Value]]] = {}
        for prefix in dict.fromkeys(columns):
            start = bisect.bisect_right(self._oids, prefix)
            end = bisect.bisect_left(self._oids, (*prefix[:-1], prefix[-1] + 1))  # next sibling
            rows[prefix] = [(oid, self._values[oid]) for oid in self._oids[start:end]]
        return WalkResult(rows=rows)
