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

import argparse
import asyncio
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.collect import Collector, EligibilityInputs, OutboxSink
from agent.commands import supplies as supplies_command
from agent.config import AgentConfig, SnmpConfig, UploadConfig
from agent.eligibility.policy import parse_policy
from agent.inventory import Inventory
from agent.metrics import Metrics
from collectors.transport import SnmpTransport
from mibs.messages import AgentMessage
from mibs.models import Identity
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_consumer import eventually, start_agent, start_consumer, unique_prefix
from tests.support.snmpsim import start_snmpsim
from uploader.config import MqttSettings
from uploader.keys import AgentKey

pytestmark = pytest.mark.integration

DAY0 = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # a Monday
DAYS = 35
ADDRESS = "127.0.3.41"
DEVICE = "sn:xerox:XRX0042"
POLICY = parse_policy(
    """
version: "e2e-1"
models: [{vendor: Xerox, patterns: ["*"]}]
require_serial: false
replenishment: {lead_time_days: 5, safety_days: 3, min_history_days: 14, emergency_percent: 5}
contacts:
  - {name: Ana Ruiz, company: Acme, address: "1 Main St", phone: "+34 600 000 000",
     email: ana@example.com, country_code: ES}
"""
)


def recording(level: int, pages: int, serial: str) -> str:
    lines = {
        "1.3.6.1.2.1.1.1.0": "4|Xerox VersaLink C405",
        "1.3.6.1.2.1.1.2.0": "6|1.3.6.1.4.1.253.8.62.1.20.4.1.1",
        "1.3.6.1.2.1.1.5.0": "4|prn-e2e",
        "1.3.6.1.2.1.25.3.2.1.2.1": "6|1.3.6.1.2.1.25.3.1.5",
        "1.3.6.1.2.1.25.3.2.1.3.1": "4|Xerox VersaLink C405",
        "1.3.6.1.2.1.43.5.1.1.17.1": "4|XRX0042",
        "1.3.6.1.2.1.43.10.2.1.4.1.1": f"65|{pages}",
        "1.3.6.1.2.1.43.11.1.1.3.1.1": "2|1",
        "1.3.6.1.2.1.43.11.1.1.4.1.1": "2|3",
        "1.3.6.1.2.1.43.11.1.1.5.1.1": "2|3",
        "1.3.6.1.2.1.43.11.1.1.6.1.1": f"4|Black Toner, PN 006R01509;SN{serial}",
        "1.3.6.1.2.1.43.11.1.1.7.1.1": "2|19",
        "1.3.6.1.2.1.43.11.1.1.8.1.1": "2|100",
        "1.3.6.1.2.1.43.11.1.1.9.1.1": f"2|{level}",
        "1.3.6.1.2.1.43.12.1.1.4.1.1": "4|black",
    }
    return "".join(f"{oid}|{value}\n" for oid, value in sorted(lines.items(), key=_oid_key))


def _oid_key(item: tuple[str, str]) -> tuple[int, ...]:
    return tuple(int(part) for part in item[0].split("."))


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


class CountingSink(OutboxSink):
    """The daemon's outbox sink, counting what it committed."""

    submitted = 0

    async def submit(self, message: AgentMessage) -> None:
        await super().submit(message)
        self.submitted += 1


def report(args: list[str]) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser()
    supplies_command.register(parser.add_subparsers())
    out = io.StringIO()
    assert supplies_command.run(parser.parse_args(["supplies", *args]), stdout=out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_a_simulated_month_orders_once_and_reports_alike(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    usage = month()
    (data / "public.snmprec").write_text(recording(*usage[0]))
    sim = start_snmpsim(data, tmp_path, address=ADDRESS, ready_timeout=90)
    settings = MqttSettings.model_validate(
        {
            "host": mosquitto.host,
            "port": mosquitto.port,
            "tls": False,
            "topic_prefix": unique_prefix("supplies"),
            "site": "site-a",
            "backoff_min": 0.05,
            "backoff_max": 0.5,
        }
    )
    key = AgentKey.generate()
    backend_db = tmp_path / "backend.db"
    consumer = await start_consumer(settings, [key], backend_db)
    agent = start_agent(settings, key, "agent-1", tmp_path / "outbox.db")
    state = tmp_path / "state"
    now = [DAY0]
    sink = CountingSink(agent.outbox, on_submit=agent.publisher.notify)
    config = AgentConfig(
        state_dir=state,
        upload=UploadConfig(enabled=False),
        snmp=SnmpConfig(port=sim.port, timeout=3, retries=2),
    )
    try:
        with Inventory(state / "inventory.db") as inventory:
            inventory.record_discovery(
                ADDRESS,
                Identity(serial="XRX0042", vendor="Xerox", is_printer=True),
                device_key=DEVICE,
                credential_profile=None,
                sweep_started=DAY0,
            )
            async with SnmpTransport(config.snmp.transport_settings()) as transport:
                collector = Collector(
                    config,
                    transport=transport,
                    inventory=inventory,
                    sink=sink,
                    metrics=Metrics(),
                    eligibility=EligibilityInputs(POLICY, None),
                    clock=lambda: now[0],
                )
                for day, (level, pages, serial) in enumerate(usage):
                    if day:
                        await asyncio.sleep(1.1)  # a new mtime: snmpsim re-indexes the file
                        (data / "public.snmprec").write_text(recording(level, pages, serial))
                    now[0] = DAY0 + timedelta(days=day)
                    stats = await collector.read_all("supplies")
                    assert stats.ok + stats.partial == 1, f"day {day}: {stats}"
        await eventually(lambda: agent.outbox.depth() == 0, within=60, what="the outbox drained")
        await consumer.wait_stored(sink.submitted)
        events = [
            body
            for _, body in consumer.store.bodies("event")
            if isinstance(body, dict)
            and body.get("event") in ("supply_replaced", "supply_order_due")
        ]
    finally:
        await agent.finish()
        await consumer.finish()
        sim.stop()

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

    on_agent = report(["--state-dir", str(state), "--format", "json"])
    on_backend = report(["--store", f"sqlite:///{backend_db}", "--format", "json"])
    assert on_agent == on_backend
    assert len(on_agent) == 1
    assert on_agent[0]["part_number"] == "006R01509"
    assert on_agent[0]["state"] == "ok"  # the new cartridge, 88 % after four weekdays


def date_of(text: str) -> Any:
    return datetime.fromisoformat(text).date()
