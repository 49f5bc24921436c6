"""Days-to-empty forecast of one supply from its history, shared by agent and backend.

Pure: points in, :class:`SupplyForecast` out; "now" is the time of the last
point, so the agent (from its state database) and the backend (from stored
reads) agree on every number.

**Pages per day** come from the device's lifetime page count: robust weekly
rates, so that weekends, holidays and bursts do not move them, with an interval
(:func:`mibs.page_rates.page_rate`).

**Level used per page** (method ``level``) is the Theil-Sen slope of percent
against the page count over the current cartridge: the median of the slopes
between every two readings, so a shaken cartridge's bump, integer rounding and
an odd reading do not tilt it. The remaining level is read off that line at the
last page count, not taken from the last (rounded, perhaps shaken) reading.
While the current cartridge has used less than :data:`MIN_SPAN` points of
level, the level used per page of earlier cartridges, else the rated yield, is
used.

**Coarse sensors** (no percent: three-step levels, Brother's 0-3 codes, -3 "some
remaining") are forecast from pages (:mod:`mibs.yield_forecast`): the pages
printed with the cartridge (the device's own cartridge count, else the page
count since the cartridge was seen new) against its yield: the rated yield
(the device's, else that of the part number it names,
:mod:`mibs.cartridge_yields`; method ``pages_rated_yield``) or the yield learned
from whole earlier cartridges of this supply (method ``pages_learned_yield``).
The earliest likely empty date comes from the low end of the yield's interval,
so an order allows for offices that print more toner per page than the rated
yield's test. A cartridge that was in use before the history began has no
pages of its own to count: no empty date is guessed for it, but the chance that
it runs out within lead time plus safety days is
(:func:`mibs.yield_forecast.unknown_start_risk`), and a coarse ``low`` (the
device's own warning) orders it too, once the minimum history is reached.

**State**: ``empty`` (nothing left), ``ordered`` (an order exists for this
cartridge), ``order_due`` (the earliest likely empty date is within lead time
plus safety days, or the pages left at the low end are fewer than the device
prints within the lead time in 95 % of its lead-time windows
(:func:`mibs.page_rates.lead_time_pages`) plus the safety days' pages; a
cartridge of unknown age has a chance of
:data:`~mibs.yield_forecast.UNKNOWN_START_RISK` or more of running out within
them; a coarse sensor says ``low`` after the minimum history; or the level is at
or below the emergency level: an order even while learning),
``learning`` (less history than the minimum, or nothing to forecast from;
``more_history_days`` says how much more is needed), ``ok``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import Field

from mibs.models import Frozen
from mibs.page_rates import lead_time_pages, page_rate
from mibs.supply_history import Cartridge, SupplyPoint, cartridges, pages_in_service
from mibs.yield_forecast import (
    UNKNOWN_START_RISK,
    estimate_yield,
    pages_used,
    rated_yield,
    unknown_start_risk,
)

MIN_SPAN = 5.0  # percentage points a cartridge must use before its own slope counts
MAX_PAIRS = 1500

ForecastState = Literal["learning", "ok", "order_due", "ordered", "empty"]
ForecastMethod = Literal["level", "pages_rated_yield", "pages_learned_yield", "none"]


class ForecastSettings(Frozen):
    """Replenishment settings (the contract policy's ``replenishment`` section)."""

    lead_time_days: float = Field(default=5.0, ge=0, description="Order to delivery, in days.")
    safety_days: float = Field(default=3.0, ge=0, description="Margin on top of lead time.")
    min_history_days: float = Field(
        default=30.0, ge=0, description="History needed before forecasting orders (HP: 30 days)."
    )
    emergency_percent: float = Field(
        default=5.0, ge=0, le=100, description="At or below this level, order even while learning."
    )


class SupplyForecast(Frozen):
    state: ForecastState
    method: ForecastMethod
    level: float | None = Field(description="Remaining percent now (fitted or estimated).")
    history_days: float
    more_history_days: float | None = Field(description="While learning: days still needed.")
    pages_per_day: float | None
    percent_per_page: float | None
    pages_left: int | None
    predicted_empty: date | None
    empty_earliest: date | None
    empty_latest: date | None
    cartridge_since: datetime
    emergency: bool = False
    note: str = ""


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400


def theil_sen(pairs: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """(slope, intercept) of y on x: median pairwise slope, median intercept."""
    step = max(1, len(pairs) * (len(pairs) - 1) // 2 // MAX_PAIRS)
    slopes = [
        (y1 - y0) / (x1 - x0)
        for i, (x0, y0) in enumerate(pairs)
        for (x1, y1) in pairs[i + 1 :: step]
        if x1 != x0
    ]
    if not slopes:
        return None
    slope = statistics.median(slopes)
    return slope, statistics.median(y - slope * x for x, y in pairs)


def _pairs(cartridge: Cartridge) -> list[tuple[float, float]]:
    """(page count, percent) of the cartridge's readings that have both."""
    return [
        (float(p.pages), p.percent)
        for p in cartridge.points
        if p.pages is not None and p.percent is not None
    ]


def _own_fit(pairs: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """(slope, intercept) of a cartridge's level against pages, once it has used enough
    to tell and the level falls."""
    if len(pairs) < 3 or max(y for _, y in pairs) - min(y for _, y in pairs) < MIN_SPAN:
        return None
    fit = theil_sen(pairs)
    return fit if fit is not None and fit[0] < 0 else None


def _own_slope(cartridge: Cartridge) -> float | None:
    """Percent used per page by this cartridge, once it has used enough to tell."""
    fit = _own_fit(_pairs(cartridge))
    return -fit[0] if fit is not None else None


def _earlier_per_page(done: Sequence[Cartridge]) -> float | None:
    slopes = [slope for c in done if (slope := _own_slope(c)) is not None]
    return statistics.median(slopes) if slopes else None


def _level_now(
    current: Cartridge,
    pairs: Sequence[tuple[float, float]],
    own: tuple[float, float] | None,
    per_page: float,
) -> float | None:
    """The level now: on the cartridge's own line ``own`` when it has one."""
    last = current.points[-1]
    if last.pages is None or last.percent is None:
        return None
    if own is not None:
        return min(100.0, max(0.0, own[1] + own[0] * last.pages))
    # Too little of this cartridge used to fit a line: its readings, centred on the slope.
    offsets = [y + per_page * x for x, y in pairs]
    return min(100.0, max(0.0, statistics.median(offsets) - per_page * last.pages))


@dataclass(frozen=True)
class _Estimate:
    """What a forecast knows of the current cartridge: level, use per page, pages left."""

    method: ForecastMethod = "none"
    level: float | None = None
    per_page: float | None = None
    pages: tuple[float, float, float] | None = None  # pages left: central, low, high
    note: str = ""
    room: float | None = None  # of unknown age: at most this many pages left (expected yield)


def _from_level(current: Cartridge, done: Sequence[Cartridge]) -> _Estimate:
    """A sensor that gives a percentage: the level's own line against the page count."""
    last = current.points[-1]
    pairs = _pairs(current)
    own = _own_fit(pairs)  # one Theil-Sen fit of the current cartridge, used twice
    per_page = (-own[0] if own is not None else None) or _earlier_per_page(done)
    note = ""
    if per_page is None:
        rated, source = rated_yield(current.points)
        if rated:
            per_page = 100.0 / rated
            note = f"level used per page from the rated yield ({source}) so far"
    if per_page is None:
        return _Estimate(
            level=last.percent, note="the cartridge has not used enough yet to measure"
        )
    level = _level_now(current, pairs, own, per_page)
    if level is None:
        return _Estimate(method="level", per_page=per_page, note=note)
    pages = (level / per_page, max(0.0, level - 1.0) / per_page, (level + 1.0) / per_page)
    return _Estimate("level", level, per_page, pages, note)


def _from_pages(current: Cartridge, done: Sequence[Cartridge]) -> _Estimate:
    """A coarse sensor: pages printed with the cartridge against its (rated or learned) yield."""
    estimate = estimate_yield(current, done)
    used = pages_used(current)
    if estimate is None:
        return _Estimate(note="coarse sensor: needs a rated yield or one whole cartridge seen")
    method: ForecastMethod = (
        "pages_rated_yield" if estimate.source == "rated" else "pages_learned_yield"
    )
    if used is None:
        seen = pages_in_service(current)  # since the history began
        if seen is None:
            return _Estimate(note="coarse sensor: no page count since the cartridge was first seen")
        return _Estimate(
            method,
            room=max(0.0, estimate.pages - seen),
            note="coarse sensor: the cartridge was in use before the history began; "
            f"{seen} pages printed since, of about {round(estimate.pages)}",
        )
    per_page = 100.0 / estimate.pages
    pages = (
        max(0.0, estimate.pages - used),
        max(0.0, estimate.low - used),
        max(0.0, estimate.high - used),
    )
    if estimate.source == "rated":
        basis = f"rated {estimate.rated}"
    else:
        basis = f"learned from {estimate.samples} whole cartridge(s)"
    note = (
        f"coarse sensor: {used} of about {round(estimate.pages)} pages ({basis}; "
        f"{round(estimate.low)}-{round(estimate.high)})"
    )
    return _Estimate(method, max(0.0, 100.0 - used * per_page), per_page, pages, note)


def forecast(
    points: Sequence[SupplyPoint], settings: ForecastSettings, *, ordered: bool = False
) -> SupplyForecast | None:
    """The forecast of the supply whose history is ``points`` (oldest first); None if empty."""
    if not points:
        return None
    found = cartridges(points)
    current, done = found[-1], found[:-1]
    last = points[-1]
    history = _days(last.at - points[0].at)
    rate = page_rate(points)
    base = {
        "history_days": round(history, 1),
        "cartridge_since": current.since,
        "pages_per_day": round(rate[0], 1) if rate else None,
    }
    estimate = (
        _from_level(current, done) if last.percent is not None else _from_pages(current, done)
    )
    level, per_page, note = estimate.level, estimate.per_page, estimate.note
    emergency = level is not None and level <= settings.emergency_percent
    empty = last.state == "empty" or (last.percent is not None and last.percent <= 0)
    dates = _dates(last.at, estimate.pages, rate)
    # Counted in tenths of a day, as reported: a daily read that comes a few minutes
    # earlier in the day than the first one completes its day.
    more = max(0.0, settings.min_history_days - round(history, 1))
    says_low = last.percent is None and last.state == "low"
    horizon = settings.lead_time_days + settings.safety_days
    risk = (
        unknown_start_risk(estimate.room, max(rate[0], rate[2]) * horizon)
        if estimate.room is not None and rate is not None and rate[0] > 0
        else None
    )
    if risk is not None:
        note = f"{note}; a {risk:.0%} chance of running out within {horizon:g} days"
    state: ForecastState
    if empty:
        state = "empty"
    elif ordered:
        state = "ordered"
    elif emergency:
        state = "order_due"
    elif says_low and more <= 0:
        state = "order_due"  # a coarse sensor's own warning, whatever the pages say
        note = f"{note}; the device says low" if note else "the device says low"
    elif risk is not None and more <= 0:
        state = "order_due" if risk >= UNKNOWN_START_RISK else "ok"
    elif more > 0 or dates is None:
        state = "learning"
        if dates is None and more <= 0:
            note = note or "no page count to measure pages per day"
    else:
        due = dates[1] - last.at.date() <= timedelta(days=horizon)
        state = "order_due" if due or _burst_due(points, estimate, rate, settings) else "ok"
    return SupplyForecast(
        state=state,
        method=estimate.method,
        level=round(level, 2) if level is not None else None,
        more_history_days=round(more, 1) if state == "learning" else None,
        percent_per_page=per_page,
        pages_left=int(estimate.pages[0]) if estimate.pages is not None else None,
        predicted_empty=dates[0] if dates else None,
        empty_earliest=dates[1] if dates else None,
        empty_latest=dates[2] if dates else None,
        emergency=emergency,
        note=note,
        **base,
    )


def _burst_due(
    points: Sequence[SupplyPoint],
    estimate: _Estimate,
    rate: tuple[float, float, float] | None,
    settings: ForecastSettings,
) -> bool:
    """Whether the pages left (low end) are fewer than the pages the device prints within
    the lead time in most of its lead-time windows, plus the safety days' pages."""
    if estimate.pages is None or rate is None:
        return False
    demand = lead_time_pages(points, settings.lead_time_days)
    if demand is None:
        return False
    return estimate.pages[1] <= demand + settings.safety_days * rate[0]


def _dates(
    now: datetime,
    pages: tuple[float, float, float] | None,
    rate: tuple[float, float, float] | None,
) -> tuple[date, date, date] | None:
    """(likely, earliest, latest) empty dates from pages left (central, low, high)."""
    if pages is None or rate is None or rate[0] <= 0:
        return None
    central, low, high = rate
    left, left_low, left_high = pages

    def at(days: float) -> date:
        return (now + timedelta(days=min(days, 3650))).date()

    return (
        at(left / central),
        at(left_low / max(high, central)),
        at(left_high / low) if low > 0 else at(3650),
    )
