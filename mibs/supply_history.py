"""Supply history: compact points per supply, cut into cartridges at each replacement.

Pure functions shared by the agent (which keeps the points in its state
database) and the reference backend (which rebuilds them from stored reads):
the same reads give the same points, the same cartridges and the same
forecast on both sides.

**Points.** One :class:`SupplyPoint` per supply per read, with the device's
lifetime page count. :func:`add_point` keeps at most one point per UTC day (the
day's latest read replaces the earlier one) and a new point whenever something
changes that matters: the cartridge's serial or part number, the coarse state,
or a rise in level. A history is bounded to :data:`MAX_POINTS` points (over a
year of days), oldest dropped first.

**Replacements.** :func:`cartridges` walks a history and starts a new cartridge
when

* ``serial``: the cartridge serial changed (both readings have one);
* ``part_number``: the part number changed (both have one);
* ``cartridge_counter``: the device's own per-cartridge page count went down;
* ``level_rise``: the level rose by more than the device's noise: at least
  :data:`MIN_RISE` percentage points and at least :data:`NOISE_FACTOR` times the
  typical move between two readings of this supply. A shaken cartridge reads a
  few points fuller for a day or two (a redistributed toner sensor); that is
  not a replacement;
* ``state_rise``: a coarse sensor (no percent) went from ``empty`` to anything
  else, or from ``low`` to ``ok`` and stayed ``ok`` at the next reading (one
  ``ok`` after ``low`` may be a shaken cartridge).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import Field

from mibs.models import Frozen, Supply, SupplyState

MAX_POINTS = 400
MIN_RISE = 20.0  # percentage points
NOISE_FACTOR = 4.0

ReplacementReason = Literal[
    "serial", "part_number", "cartridge_counter", "level_rise", "state_rise"
]


class SupplyPoint(Frozen):
    """One reading of one supply, with the device's page count at that moment."""

    at: datetime
    percent: float | None
    state: SupplyState
    pages: int | None = Field(description="The device's lifetime page count (counters.total).")
    part_number: str | None = None
    cartridge_serial: str | None = None
    pages_printed: int | None = Field(default=None, description="The device's cartridge count.")
    rated_yield: int | None = None


class Cartridge(Frozen):
    """The readings of one cartridge, and how it began."""

    points: tuple[SupplyPoint, ...]
    began: ReplacementReason | None = Field(
        description="Why this is a new cartridge; None for the first one seen (installed "
        "before the history began, so its whole life was not observed)."
    )

    @property
    def since(self) -> datetime:
        return self.points[0].at

    @property
    def complete_start(self) -> bool:
        return self.began is not None


class Replacement(Frozen):
    """One cartridge replaced by the next: what the ``supply_replaced`` event reports."""

    at: datetime
    reason: ReplacementReason
    old_level: float | None
    new_level: float | None
    old_part_number: str | None
    new_part_number: str | None
    old_serial: str | None
    new_serial: str | None
    old_since: datetime
    whole_life_seen: bool = Field(description="The old cartridge was installed within history.")
    days_in_service: float
    pages_in_service: int | None
    rated_yield: int | None
    yield_ratio: float | None = Field(description="Pages in service / rated yield.")


def point_from_supply(supply: Supply, at: datetime, pages: int | None) -> SupplyPoint:
    return SupplyPoint(
        at=at,
        percent=supply.percent,
        state=supply.state,
        pages=pages,
        part_number=supply.part_number,
        cartridge_serial=supply.cartridge_serial,
        pages_printed=supply.pages_printed,
        rated_yield=supply.rated_yield,
    )


def _changed(before: str | None, after: str | None) -> bool:
    return before is not None and after is not None and before != after


def add_point(
    points: Sequence[SupplyPoint], new: SupplyPoint, *, max_points: int = MAX_POINTS
) -> list[SupplyPoint]:
    """``points`` with ``new`` added: the day's point replaced unless something changed."""
    kept = list(points)
    if kept and new.at < kept[-1].at:
        return kept  # an older read arriving late adds nothing to a forward history
    if kept and _same_day_same_cartridge(kept[-1], new):
        kept[-1] = new
    else:
        kept.append(new)
    return kept[-max_points:]


def _same_day_same_cartridge(last: SupplyPoint, new: SupplyPoint) -> bool:
    if last.at.date() != new.at.date() or last.state != new.state:
        return False
    if _changed(last.cartridge_serial, new.cartridge_serial):
        return False
    if _changed(last.part_number, new.part_number):
        return False
    rise = (new.percent or 0.0) - (last.percent or 0.0)
    return not (last.percent is not None and new.percent is not None and rise > 0)


def jitter(points: Sequence[SupplyPoint]) -> float:
    """The typical move of the level between two readings (median of small moves)."""
    moves = [
        abs(b.percent - a.percent)
        for a, b in itertools.pairwise(points)
        if a.percent is not None and b.percent is not None and abs(b.percent - a.percent) < MIN_RISE
    ]
    return statistics.median(moves) if moves else 0.0


def _reason(points: Sequence[SupplyPoint], i: int, threshold: float) -> ReplacementReason | None:
    before, now = points[i - 1], points[i]
    if _changed(before.cartridge_serial, now.cartridge_serial):
        return "serial"
    if _changed(before.part_number, now.part_number):
        return "part_number"
    if (
        before.pages_printed is not None
        and now.pages_printed is not None
        and now.pages_printed < before.pages_printed
    ):
        return "cartridge_counter"
    if before.percent is not None and now.percent is not None:
        return "level_rise" if now.percent - before.percent > threshold else None
    # A coarse sensor, or one that gives a number only at 0 % (-3 "some remaining" until then).
    if before.state == "empty" and now.state != "empty":
        return "state_rise"
    after = points[i + 1] if i + 1 < len(points) else None
    if before.state == "low" and now.state == "ok" and after is not None and now.percent is None:
        return "state_rise" if after.state == "ok" else None
    return None


def cartridges(points: Sequence[SupplyPoint]) -> list[Cartridge]:
    """The history cut at every replacement, oldest cartridge first."""
    if not points:
        return []
    threshold = max(MIN_RISE, NOISE_FACTOR * jitter(points))
    result: list[Cartridge] = []
    start, began = 0, None
    for i in range(1, len(points)):
        reason = _reason(points, i, threshold)
        if reason is not None:
            result.append(Cartridge(points=tuple(points[start:i]), began=began))
            start, began = i, reason
    result.append(Cartridge(points=tuple(points[start:]), began=began))
    return result


def replacements(points: Sequence[SupplyPoint]) -> list[Replacement]:
    """Every replacement in ``points``, oldest first."""
    found = cartridges(points)
    return [_replacement(old, new) for old, new in itertools.pairwise(found)]


def pages_in_service(cartridge: Cartridge, next_first: SupplyPoint | None = None) -> int | None:
    """Pages printed with ``cartridge``: its own counter, else the device's count."""
    last = cartridge.points[-1]
    if last.pages_printed is not None and cartridge.complete_start:
        return last.pages_printed
    end = next_first if next_first is not None else last
    first = cartridge.points[0]
    if first.pages is None or end.pages is None or end.pages < first.pages:
        return None
    return end.pages - first.pages


def _replacement(old: Cartridge, new: Cartridge) -> Replacement:
    first_new, last_old = new.points[0], old.points[-1]
    pages = pages_in_service(old, first_new)
    rated = next((p.rated_yield for p in reversed(old.points) if p.rated_yield), None)
    return Replacement(
        at=first_new.at,
        reason=new.began or "level_rise",
        old_level=last_old.percent,
        new_level=first_new.percent,
        old_part_number=last_old.part_number,
        new_part_number=first_new.part_number,
        old_serial=last_old.cartridge_serial,
        new_serial=first_new.cartridge_serial,
        old_since=old.since,
        whole_life_seen=old.complete_start,
        days_in_service=round((first_new.at - old.since).total_seconds() / 86400, 2),
        pages_in_service=pages,
        rated_yield=rated,
        yield_ratio=round(pages / rated, 3) if pages is not None and rated else None,
    )
