"""Coarse sensors forecast from pages and the cartridge's yield (pure code).

Rated yields by part number (the makers' data sheets), yields learned from whole
cartridges, the interval the order date comes from, and the coarse sensor's own
"low" as the last word.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mibs.cartridge_yields import RATED_YIELDS, rated_yield_of
from mibs.cartridges import parse_description
from mibs.forecast import ForecastSettings, forecast
from mibs.supply_history import SupplyPoint, cartridges
from mibs.yield_forecast import YIELD_SPREAD, Z, estimate_yield, pages_to_empty
from tests.unit.test_supplies_recordings import decode

DAY0 = datetime(2026, 3, 2, 8, tzinfo=UTC)  # a Monday
SETTINGS = ForecastSettings()  # lead 5, safety 3, history 30, emergency 5


def coarse(day: float, pages: int, state: str = "some_remaining", **extra: object) -> SupplyPoint:
    return SupplyPoint(
        at=DAY0 + timedelta(days=day),
        percent=0.0 if state == "empty" else None,
        state=state,  # type: ignore[arg-type]
        pages=pages,
        **extra,  # type: ignore[arg-type]
    )


def cartridge_life(
    start_day: int, start_pages: int, per_day: int, days: int, part: str | None
) -> list[SupplyPoint]:
    """A cartridge read daily for ``days`` days, then read empty on the next morning."""
    points = [
        coarse(start_day + d, start_pages + per_day * d, part_number=part) for d in range(days)
    ]
    points.append(coarse(start_day + days, start_pages + per_day * days, "empty", part_number=part))
    return points


def test_rated_yields_by_part_number() -> None:
    assert rated_yield_of("CF226X") == 9000
    assert rated_yield_of("cf217a") == 1600
    assert rated_yield_of("719/719H") == 2100  # either fits: the smaller, to order early
    assert rated_yield_of("W9999Z") is None
    assert rated_yield_of(None) is None
    assert all(pages > 0 and source for pages, source in RATED_YIELDS.values())


def test_recorded_descriptions_name_parts_the_table_knows(shared_recordings: Path) -> None:
    """The JetDirect M130nw names CF217A (1,600 pages); the Canon LBP6670 719/719H."""
    found = {}
    for name in ("jetdirect_m130nw", "canonprinter_lbp"):
        for supply in decode(shared_recordings, name)[0]:
            found[supply.description] = rated_yield_of(parse_description(supply.description)[0])
    assert found["Black Cartridge HP CF217A"] == 1600
    assert found["Canon Cartridge 719/719H"] == 2100
    assert found["Imaging Drum HP CF219A"] is None  # a drum: not in the toner table


def test_the_rated_yield_with_its_interval() -> None:
    points = [
        coarse(0, 1000, "ok", part_number="CF226A"),
        *cartridge_life(1, 1000, 100, 10, "CF226A")[:-1],
    ]
    found = cartridges(points)
    estimate = estimate_yield(found[-1], found[:-1])
    assert estimate is not None
    assert estimate.source == "rated"
    assert estimate.pages == 3100
    assert estimate.low == pytest.approx(3100 * math.exp(-Z * YIELD_SPREAD))
    assert estimate.high == pytest.approx(3100 * math.exp(Z * YIELD_SPREAD))


def test_whole_cartridges_teach_the_achieved_share_of_the_rated_yield() -> None:
    # Two CF226A (3,100 rated) gave 3,500 pages each (an office below test coverage);
    # the CF226X (9,000 rated) now in is expected to give the same share: 10,161.
    points = [coarse(0, 500, "ok", part_number="CF226A")]
    points.append(coarse(1, 600, "empty", part_number="CF226A"))
    points += cartridge_life(2, 600, 350, 10, "CF226A")
    points += cartridge_life(13, 4100, 350, 10, "CF226A")
    points += [coarse(24 + d, 7600 + 300 * d, part_number="CF226X") for d in range(5)]
    found = cartridges(points)
    assert [c.began for c in found] == [None, "state_rise", "state_rise", "part_number"]
    assert pages_to_empty(found[1], found[2]) == 3500
    estimate = estimate_yield(found[-1], found[:-1])
    assert estimate is not None
    assert estimate.source == "learned"
    assert estimate.samples == 2  # too few to measure a spread: the assumed one
    assert estimate.pages == pytest.approx(9000 * 3500 / 3100)
    assert estimate.low == pytest.approx(estimate.pages * math.exp(-Z * YIELD_SPREAD))


def test_pages_after_empty_do_not_count_to_the_yield() -> None:
    """The device prints on (or says empty) until the cartridge is changed."""
    points = [coarse(0, 0, "ok"), coarse(1, 100, "empty")]
    points += [*cartridge_life(2, 100, 200, 10, None), coarse(13, 2500, "empty")]
    points.append(coarse(14, 2600, "ok"))
    found = cartridges(points)
    assert pages_to_empty(found[1], found[2]) == 2000  # not 2,500


def test_alike_cartridges_narrow_the_interval() -> None:
    points = [coarse(0, 0, "ok"), coarse(1, 100, "empty")]
    start, pages = 2, 100
    for life in (2000, 2100, 1950):
        points += cartridge_life(start, pages, life // 10, 10, None)
        start, pages = start + 11, pages + (life // 10) * 10
    points.append(coarse(start, pages, "ok"))
    found = cartridges(points)
    estimate = estimate_yield(found[-1], found[:-1])
    assert estimate is not None
    assert estimate.rated is None
    assert estimate.samples == 3
    assert estimate.pages == 2000
    sigma = math.log(estimate.high / estimate.pages) / Z
    assert 0.08 <= sigma < YIELD_SPREAD  # their own spread (floored), not the assumed one


def test_some_remaining_hp_is_ordered_from_pages_and_the_rated_yield() -> None:
    """An HP that says only "some remaining" but names its CF217A (1,600 pages)."""
    points = [coarse(d, 10_000 + 50 * d, part_number="CF217A") for d in range(20)]
    points.append(coarse(20, 11_000, "empty", part_number="CF217A"))
    new = [coarse(21 + d, 11_000 + 60 * d, part_number="CF217A") for d in range(30)]
    result = forecast(points + new, SETTINGS)
    assert result is not None
    assert result.method == "pages_rated_yield"
    # 29 days x 60 = 1,740 pages printed: past the low end (1,150) and the rated 1,600.
    assert result.level == 0.0
    assert result.emergency is True
    assert result.state == "order_due"
    early = forecast(points + new[:10], SETTINGS)  # 540 printed: 611 pages to the low end
    assert early is not None
    assert early.state == "ok"  # 10 days or more at 50-60 pages a day
    assert early.pages_left == 1600 - 540
    assert early.empty_earliest is not None
    assert early.empty_earliest - DAY0.date() > timedelta(days=30 + 8)
    due = forecast(points + new[:16], SETTINGS)  # 900 printed: 250 pages (4 days) to the low end
    assert due is not None
    assert due.state == "order_due"
    assert due.emergency is False
    assert "rated 1600" in due.note


def test_a_cartridge_of_unknown_age_is_ordered_on_its_chance_of_running_out() -> None:
    """Installed before the history began: its level then is unknown, any is as likely.

    A CF217A (1,600 pages rated) at 5 pages a day: 40 days after the history began
    200 pages are printed since, at most 1,400 are left; the 8 days of lead time plus
    safety are 40 pages at that rate, a 40 / 1,400 = 2.9 % chance of running out in
    time: ok. Once at most 800 pages are left, the chance is 5 %: the order is due.
    No empty date is predicted (nothing says how full it was), no level is made up.
    """
    points = [coarse(d, 10_000 + 5 * d, part_number="CF217A") for d in range(41)]
    result = forecast(points, SETTINGS)
    assert result is not None
    assert result.method == "pages_rated_yield"
    assert result.state == "ok"
    assert "before the history began" in result.note
    assert "a 3% chance of running out within 8 days" in result.note
    assert result.predicted_empty is None
    assert result.level is None
    assert result.pages_left is None
    points += [coarse(d, 10_000 + 5 * d, part_number="CF217A") for d in range(41, 170)]
    states = [forecast(points[:n], SETTINGS) for n in range(41, 171)]
    first_due = next(n for n, f in enumerate(states, 41) if f and f.state == "order_due")
    assert 10_000 + 5 * (first_due - 1) == 10_800  # 800 pages printed, at most 800 left


def test_a_cartridge_of_unknown_age_is_not_ordered_while_learning() -> None:
    """Past its rated yield since the history began, but the history is 20 days long."""
    points = [coarse(d, 10_000 + 100 * d, part_number="CF217A") for d in range(20)]
    result = forecast(points, SETTINGS)
    assert result is not None
    assert result.state == "learning"
    assert result.emergency is False
    assert "a 100% chance" in result.note
    assert forecast(points + [coarse(30, 13_000, part_number="CF217A")], SETTINGS) is not None


def test_a_cartridge_of_unknown_age_and_unknown_yield_is_not_guessed() -> None:
    """Nothing rated, no whole cartridge seen: nothing to bound what is left."""
    points = [coarse(d, 10_000 + 50 * d) for d in range(40)]
    result = forecast(points, SETTINGS)
    assert result is not None
    assert result.method == "none"
    assert result.state == "learning"
    assert result.predicted_empty is None


@pytest.mark.parametrize(("days", "state"), [(40, "order_due"), (20, "learning")])
def test_a_coarse_low_orders_once_the_history_is_long_enough(days: int, state: str) -> None:
    """Brother's 'near empty' code or Canon's tonerLow stage: the device's own warning."""
    points = [coarse(d, 10_000 + 50 * d, "ok") for d in range(days - 1)]
    points.append(coarse(days - 1, 10_000 + 50 * days, "low"))
    result = forecast(points, SETTINGS)
    assert result is not None
    assert result.state == state
    if state == "order_due":
        assert "the device says low" in result.note
        assert result.emergency is False
