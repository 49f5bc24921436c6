"""GET and column-walk strategy over one request function, independent of the wire.

:class:`Session` implements :class:`collectors.base.SnmpSession` on top of a
:class:`Requester` (one PDU out, one decoded :class:`Response` back, or an
``SnmpError``). The v1/v2c socket client and the pysnmp v3 engine adapter are
both requesters; unit tests use a fake one. What lives here:

* GETs are sent in batches; ``tooBig`` halves the batch; an error-status that
  names one varbind (SNMPv1 ``noSuchName``) drops that OID and resends the rest.
* Walks send GETBULK over all open columns (repetitions bounded so an answer
  stays around 1,400 bytes), or GETNEXT for v1 and when bulk is off or the
  device has shown it ignores GETBULK (remembered in :class:`BulkMemory`).
* A walk that the device stops answering midway keeps its rows; the columns
  still open are marked ``timeout``. Only a walk that got no answer at all raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from collectors.base import WalkResult
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

GET_BATCH = 24  # varbinds per GET/GETNEXT: ~24 printer strings stay under ~1,400 bytes
BULK_VARBINDS = 40  # varbinds per GETBULK answer (columns x repetitions)


MAX_ROWS_PER_COLUMN = 10_000  # far beyond any printer table; stops an endless responder

# Why a column failed: the reason codes that land in WalkResult.failed.
NOT_INCREASING: Reason = "not_increasing"
BAD_INDEX: Reason = "bad_index"
UNEXPECTED_EXCEPTION: Reason = "unexpected_exception"
TOO_MANY_ROWS: Reason = "too_many_rows"
SHORT_RESPONSE: Reason = "short_response"
NO_PROGRESS: Reason = "no_progress"
TIMEOUT: Reason = "timeout"
TOO_BIG_REASON: Reason = "too_big"


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
        self._failed: dict[Oid, Reason] = {}

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

    def fail(self, prefix: Oid, reason: Reason) -> None:
        cursor = self._cursors[prefix]
        if cursor.open:
            cursor.open = False
            self._failed[prefix] = reason

    def fail_open(self, reason: Reason) -> None:
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


class Requester(Protocol):
    """Sends one request PDU and returns the decoded answer.

    Raises ``SnmpTimeout`` when nothing came back after the configured retries,
    ``SnmpAuthError`` for SNMPv3 security failures and ``SnmpProtocolError``
    for an answer that could not be used at all.
    """

    async def request(
        self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> Response: ...


@dataclass
class BulkMemory:
    """Devices seen to ignore GETBULK, shared by all sessions of one transport."""

    no_bulk: set[str] = field(default_factory=set)


class Session:
    def __init__(
        self,
        requester: Requester,
        *,
        address: str,
        version: str,
        settings: SnmpSettings,
        memory: BulkMemory | None = None,
        key: str | None = None,
    ) -> None:
        self.address = address
        self._requester = requester
        self._version = version
        self._settings = settings
        self._memory = memory if memory is not None else BulkMemory()
        self._key = key or address
        self._get_batch = GET_BATCH
        self._bulk_varbinds = BULK_VARBINDS
        self._answered = False  # any answer to any PDU in this session
        self._bulk_answered = False
        self._silent = False

    @property
    def uses_bulk(self) -> bool:
        return (
            self._version != "v1"
            and self._settings.use_bulk
            and self._key not in self._memory.no_bulk
        )

    async def _send(self, kind: PduKind, oids: Sequence[Oid], reps: int = 0) -> Response:
        try:
            response = await self._requester.request(kind, oids, reps)
        except SnmpTimeout:
            if kind is not PduKind.BULK and not self._answered:
                self._silent = True  # never answered even a GET/GETNEXT: a dead device
            raise
        self._answered = True
        if kind is PduKind.BULK:
            self._bulk_answered = True
        return response

    # -- GET ------------------------------------------------------------------------

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
                continue
            if status == TOO_BIG and len(chunk) > 1:
                self._get_batch = max(1, len(chunk) // 2)
                continue
            if status != TOO_BIG and 1 <= index <= len(chunk):
                bad = chunk[index - 1]
                if status != NO_SUCH_NAME:
                    _log.info(
                        "snmp.get.varbind_error",
                        address=self.address,
                        oid=format_oid(bad),
                        error_status=error_status_name(status),
                    )
                pending.remove(bad)
                continue
            raise SnmpProtocolError(
                f"{self.address}: GET answered {error_status_name(status)} (index {index})",
                address=self.address,
                oid=format_oid(chunk[0]),
            )
        return found

    # -- walk -----------------------------------------------------------------------

    async def walk(self, columns: Sequence[Oid]) -> WalkResult:
        walk = ColumnWalk(columns)
        answered_in_walk = False
        while walk.open_columns:
            bulk = self.uses_bulk
            width = self._bulk_varbinds if bulk else self._get_batch
            batch = walk.open_columns[: max(1, width)]
            oids = walk.next_oids(batch)
            reps = max(1, min(self._settings.max_repetitions, self._bulk_varbinds // len(batch)))
            try:
                if bulk:
                    response = await self._send(PduKind.BULK, oids, reps)
                else:
                    response = await self._send(PduKind.NEXT, oids)
            except SnmpTimeout:
                fallback = await self._bulk_fallback(oids) if bulk else None
                if fallback is None:
                    if not answered_in_walk:
                        raise
                    walk.fail_open(TIMEOUT)
                    break
                response, bulk = fallback, False
            answered_in_walk = True
            self._apply(walk, batch, response, bulk=bulk)
        return walk.result()

    async def _bulk_fallback(self, oids: Sequence[Oid]) -> Response | None:
        """A GETBULK went unanswered: is this a device without bulk support?

        Only if bulk never worked here and the device has not already ignored a
        plain GET: then the same step is asked with GETNEXT; an answer proves the
        device is alive and bulk-deaf, which is remembered for its address.
        """
        if self._bulk_answered or self._silent:
            return None
        try:
            response = await self._send(PduKind.NEXT, oids)
        except SnmpTimeout:
            return None
        self._memory.no_bulk.add(self._key)
        _log.info("snmp.bulk.unsupported", address=self.address)
        return response

    def _apply(self, walk: ColumnWalk, batch: list[Oid], response: Response, *, bulk: bool) -> None:
        status, index = response.error_status, response.error_index
        if status == 0:
            walk.feed(batch, response.varbinds, bulk=bulk)
            return
        if status == TOO_BIG:
            if bulk and self._bulk_varbinds > len(batch):
                self._bulk_varbinds = max(len(batch), self._bulk_varbinds // 2)
                return
            if len(batch) > 1:
                if bulk:
                    self._bulk_varbinds = max(1, len(batch) // 2)
                else:
                    self._get_batch = max(1, len(batch) // 2)
                return
            walk.fail(batch[0], TOO_BIG_REASON)
            return
        reason = error_status_reason(error_status_name(status))
        if 1 <= index <= len(batch):
            prefix = batch[index - 1]
            if status == NO_SUCH_NAME and not bulk:
                walk.finish(prefix)  # SNMPv1: GETNEXT past the last object
            else:
                walk.fail(prefix, reason)
            return
        for prefix in batch:
            walk.fail(prefix, reason)
