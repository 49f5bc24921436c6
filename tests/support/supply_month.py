"""A simulated month of daily supply reads through the real peers (supplies end-to-end tests).

snmpsim serves one printer whose recording is rewritten every simulated morning
(snmpsim re-indexes a data file that changed); the daemon's collector reads it
with a fast-forwarded clock (one read per simulated day, no sleeping for the
days) into its real outbox; the real publisher sends over Debian mosquitto to
the reference consumer, which verifies and stores. :func:`run_month` returns the
supply events the consumer stored, and where the agent's state and the backend's
store are, for ``fleet-agent supplies`` on both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from agent.collect import Collector
from agent.commands import supplies as supplies_command
from agent.config import AgentConfig, SnmpConfig, UploadConfig
from agent.eligibility.inputs import EligibilityInputs
from agent.eligibility.policy import Policy, parse_policy
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
from uploader.sink import OutboxSink

SUPPLY_EVENTS = ("supply_replaced", "supply_order_due")


class CountingSink(OutboxSink):
    """The daemon's outbox sink, counting what it committed."""

    submitted = 0

    async def submit(self, message: AgentMessage) -> None:
        await super().submit(message)
        self.submitted += 1


@dataclass(frozen=True)
class Month:
    events: list[dict[str, Any]]  # supply_replaced and supply_order_due bodies stored
    state: Path  # the agent's state directory
    backend_db: Path  # the backend's SQLite store


def snmprec(lines: dict[str, str]) -> str:
    """An .snmprec file of ``OID -> 'TAG|VALUE'``, in OID order."""
    ordered = sorted(lines.items(), key=lambda item: tuple(int(p) for p in item[0].split(".")))
    return "".join(f"{oid}|{value}\n" for oid, value in ordered)


def month_policy(version: str, vendor: str) -> Policy:
    """A contract for every model of ``vendor``: 5 days' lead time, 3 safety days, 14 of history."""
    return parse_policy(
        f"""
version: "{version}"
models: [{{vendor: {vendor}, patterns: ["*"]}}]
require_serial: false
replenishment: {{lead_time_days: 5, safety_days: 3, min_history_days: 14, emergency_percent: 5}}
contacts:
  - {{name: Ana Ruiz, company: Acme, address: "1 Main St", phone: "+34 600 000 000",
     email: ana@example.com, country_code: ES}}
"""
    )


def one_toner_printer(
    *,
    model: str,
    sys_object_id: str,
    name: str,
    serial: str,
    pages: int,
    toner: str,
    max_capacity: int,
    level: int,
) -> str:
    """The .snmprec of a printer with one black toner (RFC 3805), as read one morning."""
    return snmprec(
        {
            "1.3.6.1.2.1.1.1.0": f"4|{model}",
            "1.3.6.1.2.1.1.2.0": f"6|{sys_object_id}",
            "1.3.6.1.2.1.1.5.0": f"4|{name}",
            "1.3.6.1.2.1.25.3.2.1.2.1": "6|1.3.6.1.2.1.25.3.1.5",
            "1.3.6.1.2.1.25.3.2.1.3.1": f"4|{model}",
            "1.3.6.1.2.1.43.5.1.1.17.1": f"4|{serial}",
            "1.3.6.1.2.1.43.10.2.1.4.1.1": f"65|{pages}",
            "1.3.6.1.2.1.43.11.1.1.3.1.1": "2|1",
            "1.3.6.1.2.1.43.11.1.1.4.1.1": "2|3",
            "1.3.6.1.2.1.43.11.1.1.5.1.1": "2|3",
            "1.3.6.1.2.1.43.11.1.1.6.1.1": f"4|{toner}",
            "1.3.6.1.2.1.43.11.1.1.7.1.1": "2|19",
            "1.3.6.1.2.1.43.11.1.1.8.1.1": f"2|{max_capacity}",
            "1.3.6.1.2.1.43.11.1.1.9.1.1": f"2|{level}",
            "1.3.6.1.2.1.43.12.1.1.4.1.1": "4|black",
        }
    )


async def run_month(
    mosquitto: Mosquitto,
    tmp_path: Path,
    *,
    recordings: list[str],
    day0: datetime,
    address: str,
    device: str,
    identity: Identity,
    policy: Policy,
) -> Month:
    """Read the printer once a simulated day, serving ``recordings[day]`` on ``day``."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "public.snmprec").write_text(recordings[0])
    sim = start_snmpsim(data, tmp_path, address=address, ready_timeout=90)
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
    now = [day0]
    sink = CountingSink(agent.outbox, on_submit=agent.publisher.notify)
    config = AgentConfig(
        state_dir=state,
        upload=UploadConfig(enabled=False),
        snmp=SnmpConfig(port=sim.port, timeout=3, retries=2),
    )
    try:
        with Inventory(state / "inventory.db") as inventory:
            inventory.record_discovery(
                address,
                identity,
                device_key=device,
                credential_profile=None,
                sweep_started=day0,
            )
            async with SnmpTransport(config.snmp.transport_settings()) as transport:
                collector = Collector(
                    config,
                    transport=transport,
                    inventory=inventory,
                    sink=sink,
                    metrics=Metrics(),
                    eligibility=EligibilityInputs(policy, None),
                    clock=lambda: now[0],
                )
                for day, text in enumerate(recordings):
                    if day:
                        await asyncio.sleep(1.1)  # a new mtime: snmpsim re-indexes the file
                        (data / "public.snmprec").write_text(text)
                    now[0] = day0 + timedelta(days=day)
                    stats = await collector.read_all("supplies")
                    assert stats.ok + stats.partial == 1, f"day {day}: {stats}"
        await eventually(lambda: agent.outbox.depth() == 0, within=60, what="the outbox drained")
        await consumer.wait_stored(sink.submitted)
        events = [
            body
            for _, body in consumer.store.bodies("event")
            if isinstance(body, dict) and body.get("event") in SUPPLY_EVENTS
        ]
    finally:
        await agent.finish()
        await consumer.finish()
        sim.stop()
    return Month(events=events, state=state, backend_db=backend_db)


def report(args: list[str]) -> list[dict[str, Any]]:
    """``fleet-agent supplies ARGS --format json``'s rows, run in-process."""
    parser = argparse.ArgumentParser()
    supplies_command.register(parser.add_subparsers())
    out = io.StringIO()
    assert supplies_command.run(parser.parse_args(["supplies", *args]), stdout=out) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def reports_alike(month: Month) -> list[dict[str, Any]]:
    """The report from the agent's state, after checking the backend's store says the same."""
    on_agent = report(["--state-dir", str(month.state), "--format", "json"])
    on_backend = report(["--store", f"sqlite:///{month.backend_db}", "--format", "json"])
    assert on_agent == on_backend
    return on_agent


def date_of(text: str) -> Any:
    return datetime.fromisoformat(text).date()
