"""Pages within a lead time: the demand an order must cover before it is delivered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mibs.forecast import ForecastSettings, forecast
from mibs.page_rates import lead_time_pages, page_rate
from mibs.supply_history import SupplyPoint

DAY0 = datetime(2026, 3, 2, 8, tzinfo=UTC)  # a Monday
SETTINGS = ForecastSettings()  # lead 5, safety 3, history 30, emergency 5


def office(
    days: int, *, burst_days: frozenset[int] = frozenset(), left: float = 50.0
) -> list[SupplyPoint]:
    """Read each morning; 200 pages a weekday (1,000 on a burst day), none at weekends;
    a 10,000-page cartridge with ``left`` percent left at the last reading."""
    printed = [
        0 if (DAY0 + timedelta(days=d)).weekday() >= 5 else 1000 if d in burst_days else 200
        for d in range(days)
    ]
    pages = [50_000 + sum(printed[:d]) for d in range(days)]
    end = pages[-1]
    return [
        SupplyPoint(
            at=DAY0 + timedelta(days=d),
            percent=float(round(left + (end - pages[d]) / 100)),
            state="ok",
            pages=pages[d],
        )
        for d in range(days)
    ]


def test_a_steady_office_needs_five_weekdays_of_pages_within_five_days() -> None:
    """An order on a Monday morning is delivered on Saturday: five weekdays printed, 1,000
    pages, where the weekly rate (142.9 a day) says 714."""
    points = office(56)
    rate = page_rate(points)
    assert rate is not None
    assert rate[0] * 5 == pytest.approx(714.3, abs=1)
    assert lead_time_pages(points, 5) == pytest.approx(1000)
    assert lead_time_pages(points, 0) is None
    assert lead_time_pages(points[:12], 5) is None  # fewer than 10 windows: nothing said


def test_bursts_raise_the_pages_within_a_lead_time() -> None:
    """One 1,000-page day in eight weeks: 5 of the 50 windows hold it (over 5 %)."""
    points = office(57, burst_days=frozenset({30}))
    demand = lead_time_pages(points, 5)
    assert demand is not None
    assert 1400 < demand <= 1800  # windows that hold the burst day: 1,400 to 1,800 pages
    rate = page_rate(points)
    assert rate is not None
    assert rate[2] * 5 < 1000  # the busy end of the weekly rates does not see it


def test_a_bursty_printer_is_ordered_earlier_than_a_steady_one() -> None:
    """1,700 pages left (17 %): 11 days at the busy end of the weekly rates, which do
    not see one burst in eight weeks, but a week with a burst empties it."""
    steady = forecast(office(57, left=17.0), SETTINGS)
    bursty = forecast(office(57, burst_days=frozenset({30}), left=17.0), SETTINGS)
    assert steady is not None
    assert bursty is not None
    assert steady.state == "ok"
    assert bursty.state == "order_due"
    assert bursty.emergency is False
    assert bursty.predicted_empty is not None
    assert steady.predicted_empty is not None
    assert bursty.empty_earliest is not None
    assert bursty.empty_earliest - DAY0.date() > timedelta(days=56 + 5 + 3)  # not the date rule
