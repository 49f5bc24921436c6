"""Meter anomalies between two reads of one device: flagged, never billed silently.

Three kinds, each found by comparing a read with the one before it:

* ``meter_backwards``: a device meter is lower than before (a counter reset, a
  controller board swap, a firmware update that restarted the count);
* ``implausible_jump``: a printed-page meter grew by more than the engine can
  print in the time between the reads (the contract's pages per minute, per
  model when the policy knows it, else :data:`mibs.metering.DEFAULT_PAGES_PER_MINUTE`);
* ``serial_changed``: the serial number behind one device id changed.

Pure: the agent runs it on each new read against the inventory's previous read
(and uploads each anomaly as a signed event); the backend runs it over the
stored reads of a billing period, so both flag the same things.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mibs.events import ImplausibleJump, MeterBackwards, SerialChanged
from mibs.metering import (
    DEFAULT_PAGES_PER_MINUTE,
    METER_NAMES,
    BillingPolicy,
    device_meters,
)
from mibs.models import PrinterRead

AnomalyKind = Literal["meter_backwards", "implausible_jump", "serial_changed"]

#: Meters that count printed output, with how many of them one printed page can add at
#: most (an A3 page is two A4-equivalent impressions). Fax, scan and power-on counts are
#: not bounded by the print engine's speed.
PRINTED_METERS: dict[str, int] = {
    name: (2 if name.startswith("a4_equivalent") else 1)
    for name in METER_NAMES
    if name not in {"power_on", "fax", "fax_mono", "scan", "scan_images"}
}


class MeterAnomaly(BaseModel):
    """One anomaly between the read at ``previous_at`` and the read at ``at``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: AnomalyKind
    meter: str | None = Field(description="The device meter (None for serial_changed).")
    previous_at: datetime
    at: datetime
    previous: int | str | None = Field(description="Value (or serial) in the earlier read.")
    current: int | str | None = Field(description="Value (or serial) in the later read.")
    limit: int | None = Field(
        default=None, description="implausible_jump: the most pages the engine could print."
    )

    @property
    def label(self) -> str:
        """``kind:meter`` (or just ``kind``): how the export's anomaly column lists it."""
        return f"{self.kind}:{self.meter}" if self.meter else self.kind

    def describe(self) -> str:
        when = f"between {self.previous_at.isoformat()} and {self.at.isoformat()}"
        if self.kind == "meter_backwards":
            return f"meter {self.meter} went from {self.previous} back to {self.current} {when}"
        if self.kind == "implausible_jump":
            return (
                f"meter {self.meter} grew from {self.previous} to {self.current} {when}: "
                f"more than the {self.limit} pages the engine could print"
            )
        return f"serial changed from {self.previous} to {self.current} {when}"


@dataclass(frozen=True, slots=True)
class MeterPoint:
    """What anomaly detection looks at in one read: its time, serial and device meters."""

    at: datetime
    serial: str | None
    meters: Mapping[str, int | None]


def _serial_key(serial: str | None) -> str | None:
    text = "".join((serial or "").split()).casefold()
    return text or None


def jump_limit(pages_per_minute: int, seconds: float, per_page: int = 1) -> int:
    """The most a meter can grow in ``seconds`` at ``pages_per_minute`` (at least one minute)."""
    return math.ceil(pages_per_minute * per_page * max(seconds, 60.0) / 60.0)


def detect_anomalies(
    previous: MeterPoint,
    current: MeterPoint,
    *,
    pages_per_minute: int,
    meters: Sequence[str] | None = None,
) -> tuple[MeterAnomaly, ...]:
    """Every anomaly from ``previous`` to ``current`` (a later read of the same device id).

    ``meters``: check only these device meters, in this order (billing checks the ones
    its contract meter types use, in :data:`METER_NAMES` order); a serial change is
    always checked.
    """
    found: list[MeterAnomaly] = []

    def note(kind: AnomalyKind, meter: str | None, old: object, new: object, **extra: int) -> None:
        found.append(
            MeterAnomaly.model_validate(
                {
                    "kind": kind,
                    "meter": meter,
                    "previous_at": previous.at,
                    "at": current.at,
                    "previous": old,
                    "current": new,
                    **extra,
                }
            )
        )

    if previous.serial != current.serial:
        before, after = _serial_key(previous.serial), _serial_key(current.serial)
        if before is not None and after is not None and before != after:
            note("serial_changed", None, previous.serial, current.serial)
    seconds = (current.at - previous.at).total_seconds()
    for name in METER_NAMES if meters is None else meters:
        old, new = previous.meters.get(name), current.meters.get(name)
        if old is None or new is None:
            continue
        if new < old:
            note("meter_backwards", name, old, new)
        elif name in PRINTED_METERS and seconds >= 0:
            limit = jump_limit(pages_per_minute, seconds, PRINTED_METERS[name])
            if new - old > limit:
                note("implausible_jump", name, old, new, limit=limit)
    return tuple(found)


def point_of(read: PrinterRead) -> MeterPoint:
    """The :class:`MeterPoint` of a typed read."""
    return MeterPoint(
        at=read.collected_at,
        serial=read.identity.serial,
        meters=device_meters(read.counters.model_dump(by_alias=True)),
    )


def read_anomalies(
    previous: PrinterRead, current: PrinterRead, billing: BillingPolicy | None
) -> tuple[MeterAnomaly, ...]:
    """Anomalies between two reads of one device, with the contract's (or default) ceiling."""
    identity = current.identity
    ceiling = (
        billing.pages_per_minute_for(identity.vendor, identity.model)
        if billing is not None
        else DEFAULT_PAGES_PER_MINUTE
    )
    return detect_anomalies(point_of(previous), point_of(current), pages_per_minute=ceiling)


_EVENTS: dict[AnomalyKind, type[MeterBackwards | ImplausibleJump | SerialChanged]] = {
    "meter_backwards": MeterBackwards,
    "implausible_jump": ImplausibleJump,
    "serial_changed": SerialChanged,
}


def anomaly_event(
    anomaly: MeterAnomaly, device_id: str, read: PrinterRead
) -> MeterBackwards | ImplausibleJump | SerialChanged:
    """The signed event that reports ``anomaly`` of ``device_id``, found at ``read``."""
    return _EVENTS[anomaly.kind](
        device_id=device_id,
        address=read.address,
        serial=read.identity.serial,
        detail=anomaly.describe(),
        **anomaly.model_dump(exclude={"kind"}),
    )
