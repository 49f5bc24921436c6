"""Collector.read_all counts each SNMP request once, however many reads overlap."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.collect import Collector
from agent.config import AgentConfig, SnmpConfig, UploadConfig
from agent.inventory import Inventory
from agent.metrics import Metrics
from collectors.credentials import Credential, SnmpSettings
from collectors.udp import Pace
from collectors.walk import WalkResult
from mibs.identity import SYS_OBJECT_ID
from mibs.messages import AgentMessage
from mibs.models import Identity
from mibs.values import Oid, Value, is_under, parse_oid

PRINTER: dict[Oid, Value] = {
    SYS_OBJECT_ID: parse_oid("1.3.6.1.4.1.641.2.3.9.1"),
    parse_oid("1.3.6.1.2.1.25.3.2.1.2.1"): parse_oid("1.3.6.1.2.1.25.3.1.5"),
    parse_oid("1.3.6.1.2.1.43.10.2.1.4.1.1"): 1234,
    parse_oid("1.3.6.1.2.1.43.11.1.1.6.1.1"): b"Black Toner",
    parse_oid("1.3.6.1.2.1.43.11.1.1.9.1.1"): 40,
}


class CountingTransport:
    """Stands in for SnmpTransport: every session request bumps the shared counters."""

    def __init__(self, *, silent: frozenset[str] = frozenset()) -> None:
        self.requests_sent = 0
        self.timeouts = 0
        self.retries = 0
        self.silent = silent

    def session(
        self,
        address: str,
        credential: Credential,
        *,
        settings: SnmpSettings | None = None,
        pace: Pace | None = None,
    ) -> Session:
        return Session(self, address)


class Session:
    def __init__(self, transport: CountingTransport, address: str) -> None:
        self.transport = transport
        self.address = address

    async def _request(self) -> None:
        self.transport.requests_sent += 1
        await asyncio.sleep(0.005)  # long enough for the other reads in flight to send too

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
        await self._request()
        return {oid: PRINTER[oid] for oid in oids if oid in PRINTER}

    async def walk(self, columns: Sequence[Oid]) -> WalkResult:
        await self._request()
        result = WalkResult()
        for prefix in columns:
            result.rows[prefix] = [
                (o, v) for o, v in sorted(PRINTER.items()) if is_under(o, prefix)
            ]
        return result


class ListSink:
    def __init__(self) -> None:
        self.messages: list[tuple[str, Mapping[str, Any]]] = []

    async def submit(self, message: AgentMessage) -> None:
        self.messages.append((message.kind, message.to_body()))


async def test_overlapping_reads_count_each_request_once(tmp_path: Path) -> None:
    config = AgentConfig(
        state_dir=tmp_path, upload=UploadConfig(enabled=False), snmp=SnmpConfig(concurrency=16)
    )
    transport = CountingTransport()
    metrics = Metrics()
    sink = ListSink()
    with Inventory(tmp_path / "inventory.db") as inventory:
        for n in range(40):
            inventory.record_discovery(
                f"127.0.0.{n + 1}",
                Identity(serial=f"LEX{n:05d}", vendor="Lexmark", is_printer=True),
                device_key=f"serial:LEX{n:05d}",
                credential_profile="public",
                sweep_started=datetime.now(UTC),
            )
        collector = Collector(
            config,
            transport=transport,  # type: ignore[arg-type]
            inventory=inventory,
            sink=sink,
            metrics=metrics,
        )
        stats = await collector.read_all("meters")

    assert stats.ok + stats.partial == 40
    assert len([kind for kind, _ in sink.messages if kind == "read"]) == 40
    assert transport.requests_sent >= 2 * 40
    # 16 reads overlap: a per-read "after minus before" would count about 16 times too many
    assert metrics.value("fleet_agent_snmp_requests_total") == transport.requests_sent
    assert metrics.value("fleet_agent_snmp_timeouts_total") == 0


class TrackingTransport(CountingTransport):
    """Also records how many reads are in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.active = 0
        self.peak = 0

    def session(
        self,
        address: str,
        credential: Credential,
        *,
        settings: SnmpSettings | None = None,
        pace: Pace | None = None,
    ) -> Session:
        transport = self

        class Tracked(Session):
            async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
                transport.active += 1
                transport.peak = max(transport.peak, transport.active)
                try:
                    return await super().get(oids)
                finally:
                    transport.active -= 1

        return Tracked(self, address)


def _fleet(inventory: Inventory, count: int) -> None:
    for n in range(count):
        inventory.record_discovery(
            f"127.0.1.{n + 1}",
            Identity(serial=f"LEX{n:05d}", vendor="Lexmark", is_printer=True),
            device_key=f"serial:LEX{n:05d}",
            credential_profile="public",
            sweep_started=datetime.now(UTC),
        )


async def test_reads_are_bounded_and_fresh_devices_are_not_read_twice(tmp_path: Path) -> None:
    config = AgentConfig(
        state_dir=tmp_path, upload=UploadConfig(enabled=False), snmp=SnmpConfig(concurrency=4)
    )
    transport = TrackingTransport()
    sink = ListSink()
    with Inventory(tmp_path / "inventory.db") as inventory:
        _fleet(inventory, 30)
        collector = Collector(
            config,
            transport=transport,  # type: ignore[arg-type]
            inventory=inventory,
            sink=sink,
            metrics=Metrics(),
        )
        meters = await collector.read_all("meters")
        assert (meters.devices, meters.ok + meters.partial, meters.skipped_fresh) == (30, 30, 0)
        assert transport.peak == 4  # snmp.concurrency, not one task per device
        # a supply run right after: everything was read moments ago by the meter run
        supplies = await collector.read_all("supplies", fresh_for=600)
        assert (supplies.devices, supplies.skipped_fresh) == (0, 30)
        # without the freshness window every device is read again
        again = await collector.read_all("supplies")
        assert (again.devices, again.ok + again.partial) == (30, 30)
    assert len([kind for kind, _ in sink.messages if kind == "read"]) == 60
