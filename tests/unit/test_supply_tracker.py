"""The agent's supply tracking on a real state database: events once, across restarts.

Also ``fleet-agent supplies``: the same rows from the state database and from
the reads themselves (the same pure code on both sides).
"""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.commands import supplies as command
from agent.eligibility.policy import parse_policy
from agent.inventory import Inventory
from agent.supplies import Pending, SupplyTracker
from agent.supply_store import SupplyStore
from mibs.events import SupplyOrderDue, SupplyReplaced
from mibs.models import Counters, Identity, PrinterRead, Supply

DAY0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
POLICY = parse_policy(
    """
version: "1"
models: [{vendor: HP, patterns: ["*"]}]
replenishment: {lead_time_days: 5, safety_days: 3, min_history_days: 30, emergency_percent: 5}
contacts:
  - {name: Ana Ruiz, company: Acme, address: "1 Main St", phone: "+34 600 000 000",
     email: ana@example.com, country_code: ES}
"""
)


def read(day: int, percent: float, pages: int, serial: str) -> PrinterRead:
    return PrinterRead(
        address="127.0.0.5",
        collected_at=DAY0 + timedelta(days=day),
        identity=Identity(vendor="HP", model="LaserJet M507", serial="PHB1234567"),
        counters=Counters(total=pages),
        supplies=[
            Supply(
                index=1,
                description="Black Cartridge HP CF289A",
                type="toner_cartridge",
                supply_class="consumed",
                colorant="black",
                unit="percent",
                max_capacity=100,
                level=round(percent),
                percent=float(round(percent)),
                state="ok" if percent > 10 else "low" if percent > 0 else "empty",
                part_number="CF289A",
                cartridge_serial=serial,
                identity_sources={"part_number": "description", "cartridge_serial": "x"},
            ),
            Supply(
                index=2,
                description="Waste Toner",
                type="waste_toner",
                supply_class="receptacle",
                max_capacity=100,
                level=50,
                percent=50.0,
                state="ok",
            ),
        ],
    )


def usage(days: int) -> list[PrinterRead]:
    """300 pages each weekday, a 10,000-page cartridge replaced when it runs out."""
    reads, level, pages, serial = [], 80.0, 20000, "A"
    for day in range(days):
        if level <= 0:
            level, serial = 100.0, chr(ord(serial) + 1)
        reads.append(read(day, level, pages, serial))
        if (DAY0 + timedelta(days=day)).weekday() < 5:
            pages += 300
            level = max(0.0, level - 3.0)
    return reads


def run_days(state: Path, reads: list[PrinterRead]) -> list[tuple[datetime, Pending]]:
    """Observe ``reads`` with a tracker on the state database; (read time, event) sent."""
    sent: list[tuple[datetime, Pending]] = []
    with Inventory(state / "inventory.db") as inventory:
        tracker = SupplyTracker(SupplyStore(inventory))
        for item in reads:
            pending = tracker.observe("sn:hp:PHB1234567", item, policy=POLICY)
            tracker.sent(pending)
            sent.extend((item.collected_at, p) for p in pending)
    return sent


def test_orders_and_replacements_are_sent_once_across_restarts(tmp_path: Path) -> None:
    reads = usage(70)
    sent: list[tuple[datetime, Pending]] = []
    for first in range(0, len(reads), 9):  # the daemon restarts every nine days
        sent += run_days(tmp_path, reads[first : first + 9])
        sent += run_days(tmp_path, reads[first + 8 : first + 9])  # the same read again
    replaced = [p.event for _, p in sent if isinstance(p.event, SupplyReplaced)]
    orders = [(at, p.event) for at, p in sent if isinstance(p.event, SupplyOrderDue)]
    # 80 % at 3 % a weekday runs out on the 27th weekday (day 36, a Tuesday); the
    # cartridge is replaced before the read of day 37.
    assert len(replaced) == 1
    assert replaced[0].replaced_at == DAY0 + timedelta(days=37)
    assert replaced[0].reason == "serial"
    assert (replaced[0].old_serial, replaced[0].new_serial) == ("A", "B")
    assert replaced[0].new_level == 100.0
    assert replaced[0].whole_life_seen is False
    assert replaced[0].pages_in_service == 27 * 300
    assert [o.supply_index for _, o in orders] == [1]  # one per cartridge, none for waste
    ordered_on, order = orders[0]
    assert order.part_number == "CF289A"
    assert order.contact is not None
    assert order.contact.name == "Ana Ruiz"
    assert order.emergency is False
    assert order.order_id == f"sn:hp:PHB1234567/1/{DAY0.date().isoformat()}"
    assert order.empty_earliest is not None
    assert order.empty_earliest <= replaced[0].replaced_at.date() + timedelta(days=1)
    # The order came at least the lead time before the cartridge ran out (day 36).
    assert ordered_on <= DAY0 + timedelta(days=36 - 5)


def test_the_new_cartridge_gets_its_own_order(tmp_path: Path) -> None:
    sent = run_days(tmp_path, usage(120))
    orders = [p.event for _, p in sent if isinstance(p.event, SupplyOrderDue)]
    replaced = [p.event for _, p in sent if isinstance(p.event, SupplyReplaced)]
    assert len(replaced) >= 2
    assert len(orders) == len({o.order_id for o in orders}) >= 2


def _report(args: list[str]) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    out = io.StringIO()
    assert command.run(parser.parse_args(["supplies", *args]), stdout=out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_report_is_the_same_from_state_and_from_reads(tmp_path: Path) -> None:
    reads = usage(45)
    run_days(tmp_path, reads)
    lines = tmp_path / "reads.jsonl"
    lines.write_text(
        "".join(
            json.dumps({**r.model_dump(mode="json"), "device_id": "sn:hp:PHB1234567"}) + "\n"
            for r in reads
        )
    )
    from_state = _report(["--state-dir", str(tmp_path), "--format", "json"])
    from_reads = _report(["--reads", str(lines), "--format", "json"])
    assert len(from_state) == 1  # the waste toner is not forecast
    row = from_state[0]
    assert row["part_number"] == "CF289A"
    assert row["state"] in ("ok", "order_due", "ordered")
    assert row["predicted_empty"] is not None
    # The agent has sent its order; the reads alone do not know it.
    assert {**from_reads[0], "state": None} == {**row, "state": None}


def test_report_from_scan_reads_needs_no_device_id(tmp_path: Path) -> None:
    lines = tmp_path / "scan.jsonl"
    lines.write_text("".join(r.model_dump_json() + "\n" for r in usage(5)))
    rows = _report(["--reads", str(lines), "--format", "json"])
    assert rows[0]["device_id"] == "sn:hp:PHB1234567"
    assert rows[0]["state"] == "learning"
    assert rows[0]["more_history_days"] == pytest.approx(26.0)
