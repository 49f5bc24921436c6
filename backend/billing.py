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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby, pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from mibs.identity import stable_device_id
from mibs.meter_anomalies import MeterAnomaly, MeterPoint, detect_anomalies
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


@dataclass(frozen=True, slots=True)
class BillingRead:
    """One read as billing sees it (the store streams these; 300,000 stay cheap)."""

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


def read_device_id(body: Mapping[str, Any], identity: Identity) -> str:
    """The read's ``device_id`` (uploads carry it), else the stable id, else ``ip:<address>``."""
    given = body.get("device_id")
    if isinstance(given, str) and given:
        return given
    return stable_device_id(identity) or f"ip:{body.get('address')}"


def billing_read(read: PrinterRead, device_id: str | None = None) -> BillingRead:
    """A typed read (from a file of reads) as billing sees it."""
    identity = read.identity
    return BillingRead(
        device_id=device_id or stable_device_id(identity) or f"ip:{read.address}",
        collected_at=read.collected_at,
        serial=_text(identity.serial),
        vendor=_text(identity.vendor),
        model=_text(identity.model),
        location=_text(identity.location),
        source=read.source,
        meters=device_meters(read.counters.model_dump(by_alias=True)),
    )


def meter_row(body: Mapping[str, Any]) -> tuple[str, datetime, dict[str, Any]] | None:
    """(device id, collected_at, columns) of an uploaded read body, for the store's table.

    None when the body is not a read billing can use (it was verified and stored
    anyway; the store keeps it as it came).
    """
    try:
        read = PrinterRead.model_validate(
            {k: v for k, v in body.items() if k not in ("device_id", "purpose", "eligibility")}
        )
    except ValueError:
        return None
    row = billing_read(read, read_device_id(body, read.identity))
    columns = {
        "serial": row.serial,
        "vendor": row.vendor,
        "model": row.model,
        "location": row.location,
        "source": row.source,
        "meters": json.dumps(dict(row.meters), separators=(",", ":")),
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


@dataclass(frozen=True, slots=True)
class _Value:
    at: datetime
    value: int
    source: str


def _interpolate(before: _Value, after: _Value, at: datetime) -> int:
    """Linear, rounded half up, in exact integer arithmetic (microseconds)."""
    span = (after.at - before.at) // timedelta(microseconds=1)
    part = (at - before.at) // timedelta(microseconds=1)
    rise = (after.value - before.value) * part
    return before.value + (2 * rise + span) // (2 * span)


def _boundary(values: Sequence[_Value], at: datetime, period: Period, *, start: bool) -> Boundary:
    before = next((v for v in reversed(values) if v.at <= at), None)
    after = next((v for v in values if v.at >= at), None)
    if before is not None and before.at == at:
        return Boundary(
            at=at, value=before.value, estimated=False, method="read", source=before.source
        )
    if before is not None and after is not None:
        source = before.source if before.source == after.source else "device+manual"
        method = (
            f"linear between {before.at.isoformat()} ({before.value}) "
            f"and {after.at.isoformat()} ({after.value})"
        )
        value = _interpolate(before, after, at)
        return Boundary(at=at, value=value, estimated=True, method=method, source=source)
    edge = after if start else before
    if edge is not None and period.start <= edge.at < period.end:
        method = "first_read" if start else "last_read"
        return Boundary(
            at=edge.at, value=edge.value, estimated=False, method=method, source=edge.source
        )
    raise LookupError


def serial_problem(serial: str | None) -> RejectReason | None:
    if serial is None:
        return "serial_missing"
    if not _SERIAL.match(serial) or serial.casefold() in _PLACEHOLDERS or len(set(serial)) == 1:
        return "serial_invalid"
    return None


class _DeviceBill:
    """The lines and rejects of one device (its reads are not kept: 300,000 would be)."""

    def __init__(self, reads: list[BillingRead], period: Period, billing: BillingPolicy) -> None:
        self.last = reads[-1]
        self.serial = next((r.serial for r in reversed(reads) if r.serial), None)
        self.lines: list[BillingLine] = []
        self.rejects: list[Reject] = []
        self._period = period
        self._billing = billing

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

    def _span(self, reads: list[BillingRead]) -> list[BillingRead]:
        """From the last read before the period through the first read after it."""
        period = self._period
        first = max((i for i, r in enumerate(reads) if r.collected_at <= period.start), default=0)
        after = (i for i, r in enumerate(reads) if r.collected_at >= period.end)
        last = next(after, len(reads) - 1)
        return reads[first : last + 1]

    def run(self, reads: list[BillingRead]) -> None:
        problem = serial_problem(self.serial)
        if problem is not None:
            self.reject(problem, f"serial {self.serial!r} cannot key a billing import")
            return
        span = self._span(reads)
        last = self.last
        ceiling = self._billing.pages_per_minute_for(last.vendor, last.model)
        meter_types = self._billing.meter_types_for(last.vendor, last.model)
        # Only the meters the contract bills are checked (a serial change always is).
        used = {meter for expression in meter_types.values() for meter in expression.meters}
        checked = tuple(name for name in METER_NAMES if name in used)
        points = [MeterPoint(r.collected_at, r.serial, r.meters) for r in span]
        anomalies: list[MeterAnomaly] = []
        for previous, current in pairwise(points):
            anomalies.extend(
                detect_anomalies(previous, current, pages_per_minute=ceiling, meters=checked)
            )
        changed = [a for a in anomalies if a.kind == "serial_changed"]
        if changed:
            self.reject("serial_changed", "; ".join(a.describe() for a in changed))
            return
        for name, expression in meter_types.items():
            self._line(name, expression, span, anomalies)

    def _line(
        self,
        name: str,
        expression: MeterExpression,
        span: list[BillingRead],
        anomalies: list[MeterAnomaly],
    ) -> None:
        mine = [a for a in anomalies if a.meter in expression.meters]
        backwards = [a for a in mine if a.kind == "meter_backwards"]
        if backwards:
            self.reject("meter_backwards", "; ".join(a.describe() for a in backwards), name)
            return
        values = []
        for read in span:
            value = expression.value(read.meters)
            if value is not None:
                values.append(_Value(read.collected_at, value, read.source))
        if not values:
            missing = ", ".join(expression.missing(self.last.meters))
            detail = f"the device does not report {missing} ({expression.text})"
            self.reject("billing_meter_missing", detail, name)
            return
        try:
            start = _boundary(values, self._period.start, self._period, start=True)
            end = _boundary(values, self._period.end, self._period, start=False)
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
    for _device, group in groupby(reads, key=lambda read: read.device_id):
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
    for group in _by_device(reads):
        if not any(period.start <= r.collected_at < period.end for r in group) and not (
            group[0].collected_at < period.start and group[-1].collected_at >= period.end
        ):
            continue  # reads only on one side of the period: not billed this month
        device = _DeviceBill(group, period, billing)
        if wanted is not None:
            keys = {normalise(device.last.device_id)}
            keys.update(normalise(serial) for serial in {r.serial for r in group if r.serial})
            matched = keys & wanted.keys()
            if not matched:
                continue
            found.update(matched)
        device.run(group)
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
