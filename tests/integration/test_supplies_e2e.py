"""Supplies end to end: a simulated month of daily reads, through the real peers.

snmpsim serves a Xerox-style printer whose recording is rewritten every simulated
morning (snmpsim re-indexes a data file that changed): the page count grows on
weekdays, the toner goes down 3 % a weekday, runs out, and a cartridge with a new
serial (", PN 006R01509;SN...") is put in. The daemon's collector reads it with a
fast-forwarded clock (one read per simulated day, no sleeping for the days) into
its real outbox; the real publisher sends over Debian mosquitto to the reference
consumer, which verifies and stores.

Expected, worked out from the usage: 60 % at 3 % a weekday lasts 20 weekdays; the
cartridge is read empty on day 28 and replaced before the read of day 29. With a
14-day minimum history, lead 5 and safety 3, the order is due once the earliest
likely empty date is 8 days away: one ``supply_order_due`` for the first cartridge,
one ``supply_replaced``, and nothing twice. ``fleet-agent supplies`` then shows
the same forecast from the agent's state directory and from the backend's store.
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
ADDRESS = "127.0.3.41"
DEVICE = "sn:xerox:XRX0042"
POLICY = month_policy("e2e-1", "Xerox")


def recording(level: int, pages: int, serial: str) -> str:
    return one_toner_printer(
        model="Xerox VersaLink C405",
        sys_object_id="1.3.6.1.4.1.253.8.62.1.20.4.1.1",
        name="prn-e2e",
        serial="XRX0042",
        pages=pages,
        toner=f"Black Toner, PN 006R01509;SN{serial}",
        max_capacity=100,
        level=level,
    )


def month() -> list[tuple[int, int, str]]:
    """(level, page count, cartridge serial) read on each simulated morning."""
    days, level, pages, serial = [], 60.0, 41000, "48178080E0000481"
    for day in range(DAYS):
        if level <= 0 and day > 0 and days[-1][0] == 0:
            level, serial = 100.0, "5238EF80E000048E"
        days.append((round(level), pages, serial))
        if (DAY0 + timedelta(days=day)).weekday() < 5:
            pages += 250
            level = max(0.0, level - 3.0)
    return days


@pytest.mark.timeout(900)  # 35 reads of snmpsim, each after 1.1 s: minutes on a loaded machine
async def test_a_simulated_month_orders_once_and_reports_alike(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    usage = month()
    month_read = await run_month(
        mosquitto,
        tmp_path,
        recordings=[recording(*day) for day in usage],
        day0=DAY0,
        address=ADDRESS,
        device=DEVICE,
        identity=Identity(serial="XRX0042", vendor="Xerox", is_printer=True),
        policy=POLICY,
    )
    events = month_read.events

    kinds = [event["event"] for event in events]
    assert sorted(kinds) == ["supply_order_due", "supply_replaced"], kinds
    order = next(e for e in events if e["event"] == "supply_order_due")
    replaced = next(e for e in events if e["event"] == "supply_replaced")
    assert order["device_id"] == DEVICE
    assert order["part_number"] == "006R01509"
    assert order["contact"]["email"] == "ana@example.com"
    assert order["emergency"] is False
    empty_day = next(day for day, (level, _, _) in enumerate(usage) if level == 0)
    assert date_of(order["empty_earliest"]) <= (DAY0 + timedelta(days=empty_day + 1)).date()
    assert replaced["reason"] == "serial"
    assert (replaced["old_serial"], replaced["new_serial"]) == (
        "48178080E0000481",
        "5238EF80E000048E",
    )
    assert replaced["new_level"] == 100.0

    on_agent = reports_alike(month_read)
    assert len(on_agent) == 1
    assert on_agent[0]["part_number"] == "006R01509"
    assert on_agent[0]["state"] == "ok"  # the new cartridge, 88 % after four weekdays
