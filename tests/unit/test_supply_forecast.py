"""Supply history, replacement detection and the days-to-empty forecast (pure code)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from mibs.forecast import ForecastSettings, forecast
from mibs.page_rates import page_rate
from mibs.supply_history import SupplyPoint, add_point, cartridges, replacements

DAY0 = datetime(2026, 3, 2, 8, tzinfo=UTC)  # a Monday
SETTINGS = ForecastSettings()  # lead 5, safety 3, history 30, emergency 5


def point(day: float, percent: float | None, pages: int | None, **extra: object) -> SupplyPoint:
    state = extra.pop("state", None) or (
        "empty" if percent == 0 else "low" if percent is not None and percent <= 10 else "ok"
    )
    return SupplyPoint(
        at=DAY0 + timedelta(days=day), percent=percent, state=state, pages=pages, **extra
    )


def office(
    days: int,
    *,
    weekday_pages: int = 200,
    per_page: float = 100 / 10000,
    start: float = 100.0,
    bump: Callable[[int], float] = lambda day: 0.0,
) -> list[SupplyPoint]:
    """A printer read each morning: ``weekday_pages`` Monday to Friday, nothing at weekends."""
    points, pages, level = [], 50000, start
    for day in range(days):
        points.append(point(day, float(round(min(100.0, level + bump(day)))), pages))
        printed = weekday_pages if (DAY0 + timedelta(days=day)).weekday() < 5 else 0
        pages += printed
        level = max(0.0, level - printed * per_page)
    return points


def test_a_point_per_day_unless_something_changes() -> None:
    history = add_point([], point(0, 50.0, 100))
    history = add_point(history, point(0.2, 49.0, 120))  # same day: replaces
    assert len(history) == 1
    assert history[0].percent == 49.0
    history = add_point(history, point(0.3, 100.0, 130))  # a rise: kept apart
    history = add_point(history, point(0.4, 100.0, 131, cartridge_serial="B"))
    history = add_point(history, point(0.5, 100.0, 132, cartridge_serial="C"))  # new serial
    assert [p.percent for p in history] == [49.0, 100.0, 100.0]
    history = add_point(history, point(1, 99.0, 200))
    assert len(history) == 4
    assert add_point(history, point(0.9, 10.0, 1)) == history  # an older read adds nothing
    assert len(add_point(history, point(2, 98.0, 300), max_points=3)) == 3


def test_a_new_cartridge_by_level_rise_not_by_a_shake() -> None:
    shaken = {30: 7.0, 31: 4.0}  # reads 7 and 4 points fuller for two days
    points = office(60, per_page=100 / 6000, bump=lambda day: shaken.get(day, 0.0))
    points += [point(60, 100.0, points[-1].pages), point(61, 99.0, (points[-1].pages or 0) + 100)]
    found = replacements(points)
    assert len(found) == 1
    replaced = found[0]
    assert replaced.reason == "level_rise"
    assert replaced.new_level == 100.0
    assert replaced.old_level is not None
    assert replaced.old_level < 20
    assert replaced.days_in_service == 60.0
    assert replaced.whole_life_seen is False  # installed before the history began


@pytest.mark.parametrize(
    ("before", "after", "reason"),
    [
        ({"cartridge_serial": "A1"}, {"cartridge_serial": "B2"}, "serial"),
        ({"part_number": "CF217A"}, {"part_number": "CF217X"}, "part_number"),
        ({"pages_printed": 5000}, {"pages_printed": 12}, "cartridge_counter"),
    ],
)
def test_identity_changes_are_replacements(
    before: dict[str, object], after: dict[str, object], reason: str
) -> None:
    points = [point(0, 40.0, 100, **before), point(1, 39.0, 200, **after)]
    assert [r.reason for r in replacements(points)] == [reason]


def test_coarse_low_to_ok_needs_a_second_ok() -> None:
    low, ok = {"state": "low"}, {"state": "ok"}
    once = [point(0, None, 100, **low), point(1, None, 200, **ok)]
    assert replacements(once) == []  # may be a shaken cartridge
    back = [*once, point(2, None, 300, **low)]
    assert replacements(back) == []
    confirmed = [*once, point(2, None, 300, **ok)]
    assert [r.reason for r in replacements(confirmed)] == ["state_rise"]


def test_some_remaining_after_empty_is_a_new_cartridge() -> None:
    points = [
        point(0, None, 100, state="some_remaining"),
        point(1, 0.0, 900),
        point(2, None, 950, state="some_remaining"),
    ]
    found = cartridges(points)
    assert [c.began for c in found] == [None, "state_rise"]


def test_pages_per_day_ignores_weekends_holidays_and_bursts() -> None:
    points = office(70, weekday_pages=200)
    rate = page_rate(points)
    assert rate is not None
    assert rate[0] == pytest.approx(200 * 5 / 7, rel=0.02)
    # A burst week (5x) and a holiday week (nothing) among eight: the central rate holds.
    pages, bursty = 0, []
    for day in range(63):
        bursty.append(point(day, 50.0, pages))
        weekday = (DAY0 + timedelta(days=day)).weekday() < 5
        week = day // 7
        pages += 0 if not weekday or week == 4 else 1000 if week == 6 else 200
    rate = page_rate(bursty)
    assert rate is not None
    assert rate[0] == pytest.approx(200 * 5 / 7, rel=0.05)
    assert rate[1] <= rate[0] <= rate[2]


def test_forecast_of_a_steady_office_printer() -> None:
    points = office(50, weekday_pages=200, per_page=100 / 10000)
    result = forecast(points, SETTINGS)
    assert result is not None
    assert result.method == "level"
    assert result.percent_per_page == pytest.approx(0.01, rel=0.05)
    # Read on days 0-49, printed on the 35 weekdays before day 49: 7,000 pages used,
    # 30 % = 3,000 pages left at 1,000 a week (142.9 a day): empty 21 days after day 49.
    assert result.level == pytest.approx(30.0, abs=1.0)
    expected = (DAY0 + timedelta(days=49 + 21)).date()
    assert result.predicted_empty is not None
    assert abs((result.predicted_empty - expected).days) <= 1
    assert result.empty_earliest is not None
    assert result.empty_latest is not None
    assert result.empty_earliest <= result.predicted_empty <= result.empty_latest
    assert result.state == "ok"


def test_order_due_within_lead_time_and_safety() -> None:
    points = office(62, weekday_pages=200, per_page=100 / 10000)  # about 12 % left
    result = forecast(points, SETTINGS)
    assert result is not None
    assert result.state == "order_due"
    assert result.emergency is False
    assert forecast(points, SETTINGS, ordered=True).state == "ordered"  # type: ignore[union-attr]


def test_learning_says_how_much_more_history_is_needed() -> None:
    points = office(12)
    result = forecast(points, SETTINGS)
    assert result is not None
    assert result.state == "learning"
    assert result.more_history_days == pytest.approx(30 - 11)


@pytest.mark.parametrize(
    ("last_read", "learning"), [(timedelta(minutes=-20), False), (timedelta(hours=-3), True)]
)
def test_the_minimum_history_is_counted_in_tenths_of_a_day(
    last_read: timedelta, learning: bool
) -> None:
    """Read daily at about 08:00: the day-30 read 20 minutes earlier completes 30 days;
    3 hours earlier (29.9 days) it does not."""
    points = office(30, weekday_pages=200, per_page=100 / 10000)
    points.append(
        point(30, 60.0, points[-1].pages).model_copy(
            update={"at": DAY0 + timedelta(days=30) + last_read}
        )
    )
    result = forecast(points, SETTINGS)
    assert result is not None
    assert (result.state == "learning") is learning
    assert result.more_history_days == (pytest.approx(0.1) if learning else None)


def test_the_emergency_level_orders_even_while_learning() -> None:
    points = office(10, start=11.0, weekday_pages=200, per_page=100 / 20000)  # 4 % left
    result = forecast(points, SETTINGS)
    assert result is not None
    assert result.history_days < SETTINGS.min_history_days
    assert result.state == "order_due"
    assert result.emergency is True


def test_empty_is_empty() -> None:
    points = [*office(40, start=10.0, per_page=0.001), point(40, 0.0, 10**6)]
    assert forecast(points, SETTINGS).state == "empty"  # type: ignore[union-attr]


def test_coarse_sensor_forecast_from_pages_and_rated_yield() -> None:
    points = [
        point(
            day,
            None,
            1000 + 100 * day,
            state="some_remaining",
            rated_yield=5000,
            pages_printed=100 * day,
        )
        for day in range(35)
    ]
    result = forecast(points, SETTINGS)
    assert result is not None
    assert result.method == "pages_rated_yield"
    # 3,400 of 5,000 pages printed: 32 % and 1,600 pages left at 100 a day.
    assert result.level == pytest.approx(32.0)
    assert result.pages_left == 1600
    assert result.predicted_empty == (DAY0 + timedelta(days=34 + 16)).date()
    # A rated yield is measured at test coverage: the earliest likely empty date is
    # from the low end of its interval (5,000 x exp(-1.645 x 0.2) = 3,598 pages,
    # 198 left: 1.98 days after 08:00 on day 34), within lead time and safety (8 days).
    assert result.empty_earliest == (DAY0 + timedelta(days=34 + 2)).date()
    assert result.state == "order_due"
    assert "rated" in result.note
    # Ten days earlier (2,400 of 5,000 printed) the low end is 12 days away: ok.
    earlier = forecast(points[:25], SETTINGS.model_copy(update={"min_history_days": 20}))
    assert earlier is not None
    assert earlier.state == "ok"


def test_coarse_sensor_without_yield_says_what_it_needs() -> None:
    points = [point(day, None, 1000 + 100 * day, state="some_remaining") for day in range(40)]
    result = forecast(points, SETTINGS)
    assert result is not None
    assert result.method == "none"
    assert result.state == "learning"
    assert "yield" in result.note
    assert result.predicted_empty is None


def test_coarse_sensor_learns_the_yield_from_a_whole_cartridge() -> None:
    first = [point(d, None, 100 * d, state="ok") for d in range(10)]
    first.append(point(10, 0.0, 1000, state="empty"))
    second = [point(11 + d, None, 1000 + 50 * d, state="ok") for d in range(25)]
    # The first cartridge began with the history: its yield is unknown. A second whole one:
    third_start = 11 + 25
    second.append(point(third_start, 0.0, 1000 + 50 * 25, state="empty"))
    third = [point(third_start + 1 + d, None, 2250 + 40 * d, state="ok") for d in range(10)]
    result = forecast(first + second + third, SETTINGS)
    assert result is not None
    assert result.method == "pages_learned_yield"
    assert result.pages_left == pytest.approx(1250 - 360, abs=2)
    assert result.predicted_empty is not None
    assert result.predicted_empty > date(2026, 4, 1)
