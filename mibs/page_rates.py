"""How much a device prints: pages per day, and pages within a lead time (pure).

Both from the device's lifetime page count in a supply's history
(:class:`mibs.supply_history.SupplyPoint`), shared by agent and backend through
:mod:`mibs.forecast`.

**Pages per day** (:func:`page_rate`): the rate of each of the last
:data:`RATE_WEEKS` whole weeks (a week holds its weekend, so a weekday/weekend
pattern is no bias), then the mean without the busiest and the quietest week
once there are four or more (a holiday week or a burst week does not drag the
estimate). With less than two weeks of history the rate is the plain average
over the history. The interval uses the quartiles of the weekly rates.

**Pages within a lead time** (:func:`lead_time_pages`): what the device printed
in every window of the lead time's length over the same weeks (one window ending
at each reading), and the :data:`LEAD_QUANTILE` quantile of those: the demand an
order placed now must cover before the delivery. A printer with bursts (a
quarter's reports, a mailing) prints several days' pages in a day; its windows
that hold a burst make that quantile larger than the lead time at the weekly
rate, so it is ordered earlier. This is the reorder point of stock control
(demand over the lead time at a service level), with the service level the
in-time share the replenishment aims at.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta

from mibs.supply_history import SupplyPoint

RATE_WEEKS = 8
#: The share of lead-time windows whose pages an order is to cover.
LEAD_QUANTILE = 0.95
#: Windows needed before their quantile says anything.
MIN_WINDOWS = 10


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400


class _Counts:
    """The page counts of a history, interpolated at any moment between its readings."""

    def __init__(self, points: Sequence[SupplyPoint]) -> None:
        known = [(p.at, p.pages) for p in points if p.pages is not None]
        self.times = [at for at, _ in known]
        self.pages = [float(pages) for _, pages in known]

    def at(self, moment: datetime) -> float | None:
        times = self.times
        if not times or moment < times[0] or moment > times[-1]:
            return None
        i = bisect.bisect_left(times, moment)
        if times[i] == moment:
            return self.pages[i]
        t0, t1 = times[i - 1], times[i]
        c0, c1 = self.pages[i - 1], self.pages[i]
        return c0 + (c1 - c0) * ((moment - t0) / (t1 - t0))


def page_rate(points: Sequence[SupplyPoint]) -> tuple[float, float, float] | None:
    """(pages per day, low, high) from the device counter, or None without two counts."""
    counts = _Counts(points)
    if len(counts.times) < 2:
        return None
    first, last = counts.pages[0], counts.pages[-1]
    span = _days(counts.times[-1] - counts.times[0])
    if span <= 0 or last < first:
        return None
    weeks = []
    for week in range(RATE_WEEKS):
        end = counts.times[-1] - timedelta(days=7 * week)
        a, b = counts.at(end - timedelta(days=7)), counts.at(end)
        if a is None or b is None:
            break
        weeks.append(max(0.0, b - a) / 7)
    if len(weeks) < 2:
        rate = (last - first) / span
        return rate, rate, rate
    ordered = sorted(weeks)
    trimmed = ordered[1:-1] if len(ordered) >= 4 else ordered
    low, _, high = (
        statistics.quantiles(ordered, n=4) if len(ordered) >= 4 else (ordered[0], 0, ordered[-1])
    )
    return statistics.fmean(trimmed), min(low, high), max(low, high)


def lead_time_pages(points: Sequence[SupplyPoint], days: float) -> float | None:
    """The :data:`LEAD_QUANTILE` quantile of the pages printed in ``days``-long windows.

    Windows end at each reading of the last :data:`RATE_WEEKS` weeks; None with
    fewer than :data:`MIN_WINDOWS` of them (or ``days`` zero).
    """
    counts = _Counts(points)
    if days <= 0 or len(counts.times) < 2:
        return None
    window = timedelta(days=days)
    since = counts.times[-1] - timedelta(days=7 * RATE_WEEKS)
    printed = []
    for moment, pages in zip(counts.times, counts.pages, strict=True):
        before = counts.at(moment - window) if moment >= since else None
        if before is not None:
            printed.append(max(0.0, pages - before))
    if len(printed) < MIN_WINDOWS:
        return None
    return statistics.quantiles(printed, n=100, method="inclusive")[round(LEAD_QUANTILE * 100) - 1]
