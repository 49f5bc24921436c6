"""The monthly billing export: start and end meter of each contract meter type, per device.

Input: the reads of a period and a little around it, device by device in time order
(from the store, :meth:`backend.store.SqlStore.billing_reads`, or from a file of reads),
and the contract's ``billing`` block (:class:`mibs.metering.BillingPolicy`).
Output: one :class:`BillingLine` per device under contract and contract meter type,
and one :class:`Reject` per line (or device, or contract entry) that cannot be billed
honestly. Nothing is billed silently:

* **Boundaries.** The value at the period's start (and end) is the read at that
  instant if there is one, else a linear interpolation between the last read before
  and the first read after (``estimated``, with ``method`` saying between which reads);
  a device first read inside the period starts at that read (``first_read``), one
  last read inside it ends at that read (``last_read``). Both must come from two
  different reads.
* **Anomalies** (:mod:`mibs.meter_anomalies`, the agent's own checks) between
  consecutive reads from the one before the start to the one after the end are
  listed on the line. A meter that went backwards, or a serial that changed, makes
  the line a reject; an implausible jump is listed and billed.
* **Serials.** A billing system keys on the serial: a device without one, with an
  invalid one, or sharing one with another device under contract is rejected.

Pure apart from nothing: no I/O here.
"""

from __future__ import annotations

import json
import re
import sys
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import attrgetter
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from mibs.identity import stable_device_id
from mibs.meter_anomalies import MeterAnomaly, MeterPoint, detect_anomalies, jump_limit
from mibs.metering import METER_NAMES, BillingPolicy, MeterExpression, device_meters
from mibs.modelmatch import normalise
from mibs.models import Identity, PrinterRead

__all__ = [
    "BillingExport",
    "BillingLine",
    "BillingRead",
    "Period",
    "Reject",
    "bill",
    "billing_read",
    "parse_period",
]

RejectReason = Literal[
    "no_reads",
    "single_read",
    "billing_meter_missing",
    "serial_missing",
    "serial_invalid",
    "serial_duplicate",
    "serial_changed",
    "meter_backwards",
]
#: A serial a billing system accepts: letters and digits, with - . / _ inside, 4-40 long.
_SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{2,38}[A-Za-z0-9]$")
#: What devices report when they have no real serial.
_PLACEHOLDERS = frozenset({"unknown", "none", "null", "n/a", "na", "serial", "default", "0"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BillingRead(NamedTuple):
    """One read as billing sees it (the store streams these: a tuple, 300,000 stay cheap)."""

    device_id: str
    collected_at: datetime
    serial: str | None
    vendor: str | None
    model: str | None
    location: str | None
    source: str
    meters: Mapping[str, int | None]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def read_device_id(given: object, identity: Identity, address: object) -> str:
    """A read's ``device_id`` (uploads carry it), else the stable id, else ``ip:<address>``."""
    if isinstance(given, str) and given:
        return given
    return stable_device_id(identity) or f"ip:{address}"


def _shared(text: str | None) -> str | None:
    """One string object for the many reads that repeat it (a device's id, model, site)."""
    return None if text is None else sys.intern(text)


def billing_read(read: PrinterRead, device_id: str | None = None) -> BillingRead:
    """A typed read (from a file of reads) as billing sees it.

    Only the meters the read has: a null and an absent meter mean the same to billing.
    """
    identity = read.identity
    meters = device_meters(read.counters.model_dump(by_alias=True))
    return BillingRead(
        device_id=sys.intern(read_device_id(device_id, identity, read.address)),
        collected_at=read.collected_at,
        serial=_shared(_text(identity.serial)),
        vendor=_shared(_text(identity.vendor)),
        model=_shared(_text(identity.model)),
        location=_shared(_text(identity.location)),
        source=sys.intern(read.source),
        meters={name: value for name, value in meters.items() if value is not None},
    )


#: What the store's ``meter_reads`` table keeps of a read: (device id, collected_at, columns).
MeterRow = tuple[str, datetime, dict[str, Any]]


def meter_row(body: Mapping[str, Any]) -> MeterRow | None:
    """The ``meter_reads`` row of a stored read body not parsed yet (older rows, bench).

    None when the body is not a read billing can use (it was verified and stored
    anyway; the store keeps it as it came). The consumer parses each body once, as
    a :class:`mibs.messages.ReadMessage`, and hands that to :func:`read_meter_row`;
    a body off that schema (a bad ``purpose``, no ``device_id``) comes here.
    """
    try:
        read = PrinterRead.model_validate(
            {k: v for k, v in body.items() if k not in ("device_id", "purpose", "eligibility")}
        )
    except ValueError:
        return None
    return read_meter_row(read, body.get("device_id"))


def read_meter_row(read: PrinterRead, device_id: object) -> MeterRow:
    """The ``meter_reads`` row of a parsed read (``device_id``: what its body carried)."""
    row = billing_read(read, device_id if isinstance(device_id, str) else None)
    columns = {
        "serial": row.serial,
        "vendor": row.vendor,
        "model": row.model,
        "location": row.location,
        "source": row.source,
        # Only the meters the read has (billing_read): the shorter text is quicker to
        # parse 300,000 times a month.
        "meters": json.dumps(row.meters, separators=(",", ":")),
    }
    return row.device_id, row.collected_at, columns


@dataclass(frozen=True)
class Period:
    """A calendar month in UTC: ``[start, end)``."""

    label: str
    start: datetime
    end: datetime

    def window(self, lookaround: timedelta) -> tuple[datetime, datetime]:
        """The reads billing needs: the period and ``lookaround`` on each side."""
        return self.start - lookaround, self.end + lookaround


def parse_period(text: str) -> Period:
    """``2026-11`` -> November 2026 (UTC); ValueError naming the expected form."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValueError(f"{text!r} is not a month like 2026-11")
    year, month = int(match.group(1)), int(match.group(2))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return Period(label=text.strip(), start=start, end=end)


class Boundary(_Frozen):
    at: datetime
    value: int
    estimated: bool
    method: str
    source: str


class BillingLine(_Frozen):
    serial: str
    device_id: str
    vendor: str | None
    model: str | None
    location: str | None
    meter_type: str
    expression: str
    start: Boundary
    end: Boundary
    usage: int
    anomalies: tuple[str, ...]


class Reject(_Frozen):
    device_id: str
    serial: str | None
    model: str | None
    location: str | None
    meter_type: str | None
    reason: RejectReason
    detail: str


class BillingExport(_Frozen):
    period: str
    period_start: datetime
    period_end: datetime
    lines: tuple[BillingLine, ...]
    rejects: tuple[Reject, ...]


def _interpolate(before: tuple[datetime, int], after: tuple[datetime, int], at: datetime) -> int:
    """Linear, rounded half up, in exact integer arithmetic (microseconds)."""
    span = (after[0] - before[0]) // timedelta(microseconds=1)
    part = (at - before[0]) // timedelta(microseconds=1)
    rise = (after[1] - before[1]) * part
    return before[1] + (2 * rise + span) // (2 * span)


class _Series(NamedTuple):
    """One meter type's values over a device's span, in time order (reads lacking it left out)."""

    at: Sequence[datetime]
    value: Sequence[int]
    source: Sequence[str]


def _boundary(series: _Series, at: datetime, period: Period, *, start: bool) -> Boundary:
    times, values, sources = series
    count = bisect_right(times, at)  # reads at or before ``at``
    after = bisect_left(times, at)  # the first read at or after ``at``
    before = count - 1
    if before >= 0 and times[before] == at:
        return Boundary(
            at=at, value=values[before], estimated=False, method="read", source=sources[before]
        )
    if before >= 0 and after < len(times):
        source = sources[before] if sources[before] == sources[after] else "device+manual"
        method = (
            f"linear between {times[before].isoformat()} ({values[before]}) "
            f"and {times[after].isoformat()} ({values[after]})"
        )
        value = _interpolate((times[before], values[before]), (times[after], values[after]), at)
        return Boundary(at=at, value=value, estimated=True, method=method, source=source)
    edge = after if start else before
    if 0 <= edge < len(times) and period.start <= times[edge] < period.end:
        method = "first_read" if start else "last_read"
        return Boundary(
            at=times[edge],
            value=values[edge],
            estimated=False,
            method=method,
            source=sources[edge],
        )
    raise LookupError


def serial_problem(serial: str | None) -> RejectReason | None:
    if serial is None:
        return "serial_missing"
    if not _SERIAL.match(serial) or serial.casefold() in _PLACEHOLDERS or len(set(serial)) == 1:
        return "serial_invalid"
    return None


class _ModelTerms:
    """The contract's terms for one vendor and model (worked out once per model, not per read)."""

    def __init__(self, billing: BillingPolicy, vendor: str | None, model: str | None) -> None:
        self.ceiling = billing.pages_per_minute_for(vendor, model)
        self.meter_types = billing.meter_types_for(vendor, model)
        # Only the meters the contract bills are checked (a serial change always is).
        used = {meter for expression in self.meter_types.values() for meter in expression.meters}
        self.checked = tuple(name for name in METER_NAMES if name in used)


class _Span:
    """A device's reads from the last one before the period through the first one after it."""

    def __init__(self, reads: Sequence[BillingRead], times: Sequence[datetime], period: Period):
        first = max(bisect_right(times, period.start) - 1, 0)
        last = min(bisect_left(times, period.end), len(times) - 1)
        self.reads = reads[first : last + 1]
        self.times = times[first : last + 1]
        self.meters = [read.meters for read in self.reads]
        self.sources = [read.source for read in self.reads]
        self.serials = [read.serial for read in self.reads]

    def point(self, index: int) -> MeterPoint:
        return MeterPoint(self.times[index], self.serials[index], self.meters[index])

    def suspects(self, terms: _ModelTerms) -> list[int]:
        """Pairs ``(i, i + 1)`` that may hold an anomaly: a superset, cheap to find.

        :func:`mibs.meter_anomalies.detect_anomalies` (the one definition of an anomaly)
        then decides on these pairs alone: a pair is left out only when no serial differs
        and no checked meter went down or grew by more than the smallest jump limit.
        """
        serials = self.serials
        found = {i for i in range(len(serials) - 1) if serials[i] != serials[i + 1]}
        if terms.checked:
            ceiling = terms.ceiling
            times = self.times
            limits = [
                jump_limit(ceiling, (times[i + 1] - times[i]).total_seconds())
                for i in range(len(times) - 1)
            ]
            for name in terms.checked:
                column = [meters.get(name) for meters in self.meters]
                for i, limit in enumerate(limits):
                    old, new = column[i], column[i + 1]
                    if old is not None and new is not None and (new < old or new - old > limit):
                        found.add(i)
        return sorted(found)

    def series(self, expression: MeterExpression) -> _Series:
        value = expression.value
        column = [value(meters) for meters in self.meters]
        if None not in column:
            return _Series(self.times, column, self.sources)  # type: ignore[arg-type]
        kept = [i for i, v in enumerate(column) if v is not None]
        return _Series(
            [self.times[i] for i in kept],
            [column[i] for i in kept],  # type: ignore[misc]
            [self.sources[i] for i in kept],
        )


class _DeviceBill:
    """The lines and rejects of one device (its reads are not kept: 300,000 would be)."""

    def __init__(self, reads: list[BillingRead], period: Period, terms: _ModelTerms) -> None:
        self.last = reads[-1]
        self.serial = next((r.serial for r in reversed(reads) if r.serial), None)
        self.lines: list[BillingLine] = []
        self.rejects: list[Reject] = []
        self._period = period
        self._terms = terms

    def reject(self, reason: RejectReason, detail: str, meter_type: str | None = None) -> None:
        self.rejects.append(
            Reject(
                device_id=self.last.device_id,
                serial=self.serial,
                model=self.last.model,
                location=self.last.location,
                meter_type=meter_type,
                reason=reason,
                detail=detail,
            )
        )

    def run(self, reads: list[BillingRead], times: list[datetime]) -> None:
        problem = serial_problem(self.serial)
        if problem is not None:
            self.reject(problem, f"serial {self.serial!r} cannot key a billing import")
            return
        span = _Span(reads, times, self._period)
        terms = self._terms
        anomalies: list[MeterAnomaly] = []
        for i in span.suspects(terms):
            anomalies.extend(
                detect_anomalies(
                    span.point(i),
                    span.point(i + 1),
                    pages_per_minute=terms.ceiling,
                    meters=terms.checked,
                )
            )
        changed = [a for a in anomalies if a.kind == "serial_changed"]
        if changed:
            self.reject("serial_changed", "; ".join(a.describe() for a in changed))
            return
        for name, expression in terms.meter_types.items():
            self._line(name, expression, span, anomalies)

    def _line(
        self,
        name: str,
        expression: MeterExpression,
        span: _Span,
        anomalies: list[MeterAnomaly],
    ) -> None:
        meters = expression.meters
        mine = [a for a in anomalies if a.meter in meters]
        backwards = [a for a in mine if a.kind == "meter_backwards"]
        if backwards:
            self.reject("meter_backwards", "; ".join(a.describe() for a in backwards), name)
            return
        series = span.series(expression)
        if not series.at:
            missing = ", ".join(expression.missing(self.last.meters))
            detail = f"the device does not report {missing} ({expression.text})"
            self.reject("billing_meter_missing", detail, name)
            return
        try:
            start = _boundary(series, self._period.start, self._period, start=True)
            end = _boundary(series, self._period.end, self._period, start=False)
        except LookupError:
            self.reject("no_reads", f"no read of {expression.text} in or around the period", name)
            return
        if start.at == end.at and not (start.estimated or end.estimated):
            detail = f"only one read ({start.at.isoformat()}): no usage can be measured"
            self.reject("single_read", detail, name)
            return
        last = self.last
        self.lines.append(
            BillingLine(
                serial=self.serial or "",
                device_id=last.device_id,
                vendor=last.vendor,
                model=last.model,
                location=last.location,
                meter_type=name,
                expression=expression.text,
                start=start,
                end=end,
                usage=end.value - start.value,
                anomalies=tuple(dict.fromkeys(a.label for a in mine)),
            )
        )


def _by_device(reads: Iterable[BillingRead]) -> Iterator[list[BillingRead]]:
    for _device, group in groupby(reads, key=attrgetter("device_id")):
        yield list(group)


def bill(
    reads: Iterable[BillingRead],
    *,
    period: Period,
    billing: BillingPolicy,
    contract: Sequence[str] | None,
) -> BillingExport:
    """Bill ``reads`` (grouped by device id, each device's in time order).

    ``contract``: device ids or serials under contract (each must have reads), or None
    for every device that has reads.
    """
    wanted = {normalise(entry): entry for entry in contract} if contract is not None else None
    found: set[str] = set()
    devices: list[_DeviceBill] = []
    models: dict[tuple[str | None, str | None], _ModelTerms] = {}
    for group in _by_device(reads):
        times = [read.collected_at for read in group]
        first_inside = bisect_left(times, period.start)
        if not (first_inside < len(times) and times[first_inside] < period.end) and not (
            times[0] < period.start and times[-1] >= period.end
        ):
            continue  # reads only on one side of the period: not billed this month
        last = group[-1]
        terms = models.get((last.vendor, last.model))
        if terms is None:
            terms = models[last.vendor, last.model] = _ModelTerms(billing, last.vendor, last.model)
        device = _DeviceBill(group, period, terms)
        if wanted is not None:
            keys = {normalise(device.last.device_id)}
            keys.update(normalise(serial) for serial in {r.serial for r in group if r.serial})
            matched = keys & wanted.keys()
            if not matched:
                continue
            found.update(matched)
        device.run(group, times)
        devices.append(device)
    rejects = [reject for device in devices for reject in device.rejects]
    by_serial: dict[str, list[_DeviceBill]] = {}
    for device in devices:
        if device.lines:
            by_serial.setdefault(normalise(device.serial or ""), []).append(device)
    lines: list[BillingLine] = []
    for device in devices:
        sharing = by_serial.get(normalise(device.serial or ""), [])
        if len(sharing) > 1:
            others = ", ".join(d.last.device_id for d in sharing if d is not device)
            detail = f"serial {device.serial} is also reported by {others}"
            device.reject("serial_duplicate", detail)
            rejects.append(device.rejects[-1])
        else:
            lines.extend(device.lines)
    if wanted is not None:
        for key in sorted(wanted.keys() - found):
            rejects.append(
                Reject(
                    device_id=wanted[key],
                    serial=None,
                    model=None,
                    location=None,
                    meter_type=None,
                    reason="no_reads",
                    detail=f"{wanted[key]} is under contract but has no read in the period",
                )
            )
    return BillingExport(
        period=period.label,
        period_start=period.start,
        period_end=period.end,
        lines=tuple(sorted(lines, key=lambda line: (line.serial, line.meter_type))),
        rejects=tuple(rejects),
    )
