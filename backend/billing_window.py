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
their reads inside the period, not with the file. ``bill`` gives the same export from
these as from every read of the window (``tests/unit/test_billing_window.py``).
Reads of one device at the same instant keep the order they came in, as a stable
sort of every read would.

Pure: no I/O here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from backend.billing import BillingRead, Period

__all__ = ["PeriodReads"]

#: A read with its sort key: (collected_at, arrival number).
_Entry = tuple[datetime, int, BillingRead]


class _Device:
    __slots__ = ("after", "before", "by_serial", "inside", "latest")

    def __init__(self) -> None:
        self.inside: list[_Entry] = []
        self.before: _Entry | None = None  # the latest read before the period's start
        self.after: _Entry | None = None  # the earliest read at or after its end
        self.latest: _Entry | None = None
        self.by_serial: dict[str, _Entry] = {}

    def entries(self) -> list[_Entry]:
        kept = {entry[1]: entry for entry in self.inside}
        for entry in (self.before, self.after, self.latest, *self.by_serial.values()):
            if entry is not None:
                kept[entry[1]] = entry
        return sorted(kept.values(), key=lambda entry: (entry[0], entry[1]))


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
        entry = (at, self._count, read)
        self._count += 1
        key = entry[:2]
        if at < self._start:
            if device.before is None or device.before[:2] < key:
                device.before = entry
        elif at < self._end:
            device.inside.append(entry)
        elif device.after is None or key < device.after[:2]:
            device.after = entry
        if device.latest is None or device.latest[:2] < key:
            device.latest = entry
        if read.serial:
            known = device.by_serial.get(read.serial)
            if known is None or known[:2] < key:
                device.by_serial[read.serial] = entry

    def reads(self) -> Iterator[BillingRead]:
        """The kept reads, by device id then time: what :func:`backend.billing.bill` takes."""
        for device_id in sorted(self._devices):
            for _at, _number, read in self._devices[device_id].entries():
                yield read
