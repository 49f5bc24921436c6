"""A coarse sensor end to end: "some remaining" toner ordered from pages and the rated yield.

snmpsim serves an HP whose toner level is only ever -3 ("at least some
remaining", max capacity -2 "unknown") until it reads 0, as the Brother and
Konica recordings in ../shared/recordings report such supplies; it names its
cartridge ("Black Cartridge HP CF217A") as the JetDirect M130nw recording does.
The recording is rewritten every simulated morning; the daemon's collector reads
it with a fast-forwarded clock into its real outbox, the real publisher sends
over Debian mosquitto to the reference consumer, which verifies and stores.

The usage, 100 pages a weekday: the cartridge in place when the history begins
has 700 pages left, is read empty on day 9 and replaced before day 10; its
successor (CF217A, 1,600 pages rated, 1,151 at the low end of the yield
interval) is counted from there, prints 1,700 pages and is read empty on day 33,
replaced before day 34. The order for the second cartridge is due when the low end is 8 days (lead
5 + safety 3) of pages away: at 71.4 pages a day, once 600 pages are printed,
on day 18, 15 days before it is read empty. The first cartridge (installed before
the history, its pages unknown) gets no order; it ran out while learning
anyway. Expected: two ``supply_replaced``, one ``supply_order_due``, nothing
twice, and ``fleet-agent supplies`` alike on agent and backend, forecast from
the rated yield.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mibs.models import Identity
from tests.support.mosquitto import Mosquitto
from tests.support.supply_month import (
    date_of,
    month_policy,
    one_toner_printer,
    reports_alike,
    run_month,
)

pytestmark = pytest.mark.integration

DAY0 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # a Monday
DAYS = 35
ADDRESS = "127.0.3.42"
DEVICE = "sn:hp:VNB3K12345"
POLICY = month_policy("e2e-coarse", "HP")


def recording(level: int, pages: int) -> str:
    return one_toner_printer(
        model="HP LaserJet Pro M102w",
        sys_object_id="1.3.6.1.4.1.11.2.3.9.1",
        name="prn-coarse",
        serial="VNB3K12345",
        pages=pages,
        toner="Black Cartridge HP CF217A",
        max_capacity=-2,
        level=level,
    )


def month() -> list[tuple[int, int]]:
    """(reported level, page count) read on each simulated morning."""
    days: list[tuple[int, int]] = []
    left, pages = 700, 30000  # pages left in the cartridge, the device's count
    for day in range(DAYS):
        if left <= 0 and days and days[-1][0] == 0:
            left = 1700  # a new CF217A: this office gets a little more than rated
        days.append((-3 if left > 0 else 0, pages))
        if (DAY0 + timedelta(days=day)).weekday() < 5:
            printed = min(100, max(0, left)) if left > 0 else 100
            pages += 100
            left -= printed
    return days


@pytest.mark.timeout(900)  # 35 reads of snmpsim, each after 1.1 s: minutes on a loaded machine
async def test_some_remaining_toner_is_ordered_from_pages_once(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    usage = month()
    empty_days = [day for day, (level, _) in enumerate(usage) if level == 0]
    assert empty_days == [9, 33]  # the worked example above
    month_read = await run_month(
        mosquitto,
        tmp_path,
        recordings=[recording(*day) for day in usage],
        day0=DAY0,
        address=ADDRESS,
        device=DEVICE,
        identity=Identity(serial="VNB3K12345", vendor="HP", is_printer=True),
        policy=POLICY,
    )
    events = month_read.events

    kinds = sorted(event["event"] for event in events)
    assert kinds == ["supply_order_due", "supply_replaced", "supply_replaced"], kinds
    order = next(e for e in events if e["event"] == "supply_order_due")
    assert order["device_id"] == DEVICE
    assert order["part_number"] == "CF217A"
    assert order["emergency"] is False
    assert date_of(order["cartridge_since"]) == (DAY0 + timedelta(days=10)).date()
    # Ordered once 600 of the 1,151 pages at the low end were printed: the earliest
    # likely empty date is 8 days away, two weeks before the cartridge really ran out.
    assert date_of(order["empty_earliest"]) <= (DAY0 + timedelta(days=18 + 8)).date()
    assert date_of(order["predicted_empty"]) <= (DAY0 + timedelta(days=33)).date()
    replaced = sorted((e for e in events if e["event"] == "supply_replaced"), key=_at)
    assert [r["reason"] for r in replaced] == ["state_rise", "state_rise"]
    assert [date_of(r["replaced_at"]) for r in replaced] == [
        (DAY0 + timedelta(days=10)).date(),
        (DAY0 + timedelta(days=34)).date(),
    ]
    assert replaced[1]["whole_life_seen"] is True
    assert replaced[1]["pages_in_service"] == 1700  # 17 weekdays of 100, to the replacement

    on_agent = reports_alike(month_read)
    assert len(on_agent) == 1
    row = on_agent[0]
    assert row["part_number"] == "CF217A"
    # The third cartridge, counted from day 34: its yield learned from the whole second one.
    assert row["method"] == "pages_learned_yield"
    assert row["state"] == "ok"


def _at(event: dict[str, object]) -> str:
    return str(event["replaced_at"])
