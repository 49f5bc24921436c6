"""What billing keeps of reads that come in any order: per device, only the reads it can use.

A file of reads (``fleet-agent billing --reads``, JSON lines as ``scan --format json``
prints them) lists a fleet oldest first, its devices interleaved, and may hold months
of them. :func:`backend.billing.bill` wants them device by device in time order, so
they must be gathered before billing starts; :class:`PeriodReads` gathers them as
they stream in and keeps, per device, only what the export depends on:

* every read inside the period (consecutive reads are checked for anomalies);
* the last read before the period's start and the first at or after its end (the
  boundaries are estimated between them and the reads inside);
* the latest read of the lookaround window (its model and location head the lines);
* the latest read of each serial the device reported (the contract names devices by
  serial; the latest serial keys the lines).

Every other read is dropped as it arrives, so memory grows with the devices and
their reads inside the period, not with the file; a kept read is its time, its
labels (one tuple for the reads of a device that repeat them) and its meters as
compact JSON, parsed again device by device as ``bill`` takes them. ``bill``
gives the same export from these as from every read of the window
(``tests/unit/test_billing_window.py``). Reads of one device at the same instant
keep the order they came in, as a stable sort of every read would.

Pure: no I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from backend.billing import BillingRead, Period

__all__ = ["PeriodReads"]

#: A read's serial, vendor, model, location and source: one tuple for the reads that repeat it.
_Labels = tuple[str | None, str | None, str | None, str | None, str]
#: What is kept of a read: its time, its labels and its meters as compact JSON (a third of
#: the memory of a :class:`BillingRead` with its meters dictionary).
_Kept = tuple[datetime, _Labels, str]
#: A read kept in a slot, with its arrival number: reads at one instant keep arrival order.
_Slot = tuple[datetime, int, _Kept]


class _Device:
    __slots__ = ("after", "before", "by_serial", "inside", "labels", "latest")

    def __init__(self) -> None:
        self.inside: list[_Kept] = []  # in arrival order
        self.before: _Slot | None = None  # the latest read before the period's start
        self.after: _Slot | None = None  # the earliest read at or after its end
        self.latest: _Slot | None = None
        self.by_serial: dict[str, _Slot] = {}
        self.labels: _Labels | None = None

    def kept(self, start: datetime) -> list[_Kept]:
        """Every kept read once, in time order (arrival order at one instant)."""
        inside = {id(kept) for kept in self.inside}
        slots = (self.before, self.after, self.latest, *self.by_serial.values())
        # A slot inside the period holds a read of ``inside``; the others lie outside it.
        outside = {
            slot[1]: slot for slot in slots if slot is not None and id(slot[2]) not in inside
        }
        ordered = sorted(outside.values(), key=lambda slot: (slot[0], slot[1]))
        before = [slot[2] for slot in ordered if slot[0] < start]
        after = [slot[2] for slot in ordered if slot[0] >= start]
        return [*before, *sorted(self.inside, key=lambda kept: kept[0]), *after]


class PeriodReads:
    """Collects reads for billing ``period``, ignoring those outside ``[since, until)``."""

    def __init__(self, period: Period, since: datetime, until: datetime) -> None:
        self._start, self._end = period.start, period.end
        self._since, self._until = since, until
        self._devices: dict[str, _Device] = {}
        self._count = 0

    def add(self, read: BillingRead) -> None:
        at = read.collected_at
        if not self._since <= at < self._until:
            return
        device = self._devices.get(read.device_id)
        if device is None:
            device = self._devices[read.device_id] = _Device()
        labels: _Labels = (read.serial, read.vendor, read.model, read.location, read.source)
        if labels == device.labels:
            labels = device.labels
        device.labels = labels
        kept = (at, labels, json.dumps(read.meters, separators=(",", ":")))
        slot = (at, self._count, kept)
        self._count += 1
        key = slot[:2]
        if at < self._start:
            if device.before is None or device.before[:2] < key:
                device.before = slot
        elif at < self._end:
            device.inside.append(kept)
        elif device.after is None or key < device.after[:2]:
            device.after = slot
        if device.latest is None or device.latest[:2] < key:
            device.latest = slot
        if read.serial:
            known = device.by_serial.get(read.serial)
            if known is None or known[:2] < key:
                device.by_serial[read.serial] = slot

    def reads(self) -> Iterator[BillingRead]:
        """The kept reads, by device id then time: what :func:`backend.billing.bill` takes."""
        for device_id in sorted(self._devices):
            kept = self._devices[device_id].kept(self._start)
            # One parse per device (indexed, as the store's slices: see billing_reads).
            meters = json.loads("[" + ",".join([item[2] for item in kept]) + "]")
            for index, (at, labels, _) in enumerate(kept):
                yield BillingRead(device_id, at, *labels, meters[index])
