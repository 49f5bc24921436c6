"""Meter anomalies: each kind, its boundaries, and the signed event the collector sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.collect import Collector
from agent.config import AgentConfig, SnmpConfig, UploadConfig
from agent.eligibility.inputs import EligibilityInputs
from agent.eligibility.policy import parse_policy
from agent.inventory import Inventory
from agent.metrics import Metrics
from mibs.events import MeterBackwards, parse_event
from mibs.meter_anomalies import (
    MeterPoint,
    detect_anomalies,
    jump_limit,
    read_anomalies,
)
from mibs.models import Counters, Identity
from mibs.values import parse_oid
from tests.unit.test_collect_counting import PRINTER, CountingTransport, ListSink
from tests.unit.test_eligibility_rules import make_read

T0 = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
TOTAL_OID = parse_oid("1.3.6.1.2.1.43.10.2.1.4.1.1")


def point(at: datetime, serial: str | None = "SN1", **meters: int | None) -> MeterPoint:
    return MeterPoint(at=at, serial=serial, meters=meters)


def test_steady_growth_is_no_anomaly() -> None:
    before = point(T0, total=1000, mono=800, color=200)
    after = point(T0 + timedelta(days=1), total=1500, mono=1200, color=300)
    assert detect_anomalies(before, after, pages_per_minute=30) == ()


def test_a_meter_that_goes_backwards() -> None:
    before = point(T0, total=1000, color=200)
    after = point(T0 + timedelta(hours=1), total=1010, color=12)
    (anomaly,) = detect_anomalies(before, after, pages_per_minute=30)
    assert (anomaly.kind, anomaly.meter, anomaly.previous, anomaly.current) == (
        "meter_backwards",
        "color",
        200,
        12,
    )
    assert anomaly.label == "meter_backwards:color"
    assert "went from 200 back to 12" in anomaly.describe()


def test_an_implausible_jump_over_the_engine_speed() -> None:
    # 30 pages a minute for two hours: at most 3,600 pages.
    before = point(T0, total=1000)
    at_limit = point(T0 + timedelta(hours=2), total=4600)
    over = point(T0 + timedelta(hours=2), total=4601)
    assert detect_anomalies(before, at_limit, pages_per_minute=30) == ()
    (anomaly,) = detect_anomalies(before, over, pages_per_minute=30)
    assert (anomaly.kind, anomaly.meter, anomaly.limit) == ("implausible_jump", "total", 3600)


def test_reads_close_together_get_at_least_a_minute_of_pages() -> None:
    assert jump_limit(30, 1.0) == 30
    before = point(T0, total=1000)
    after = point(T0 + timedelta(seconds=2), total=1025)
    assert detect_anomalies(before, after, pages_per_minute=30) == ()


def test_scan_and_fax_are_not_bounded_by_the_print_engine() -> None:
    before = point(T0, scan=10, fax=0)
    after = point(T0 + timedelta(minutes=1), scan=5000, fax=900)
    assert detect_anomalies(before, after, pages_per_minute=30) == ()


def test_a_serial_that_changed_behind_one_device_id() -> None:
    before = point(T0, serial="CNB1234567", total=10)
    after = point(T0 + timedelta(days=1), serial="CNB7654321", total=20)
    (anomaly,) = detect_anomalies(before, after, pages_per_minute=30)
    assert (anomaly.kind, anomaly.previous, anomaly.current) == (
        "serial_changed",
        "CNB1234567",
        "CNB7654321",
    )
    # Case and spacing are not a change; a serial that was not read is not either.
    assert detect_anomalies(before, point(after.at, "cnb 1234567"), pages_per_minute=30) == ()
    assert detect_anomalies(before, point(after.at, None), pages_per_minute=30) == ()


def test_the_contracts_model_ceiling_is_used() -> None:
    policy = parse_policy(
        'version: "1"\nmodels: [{vendor: HP, names: [X]}]\nbilling:\n'
        "  meter_types: {pages: total}\n  pages_per_minute: 100\n"
        "  models: [{vendor: HP, names: [LaserJet M130nw], pages_per_minute: 20}]\n"
    )
    before = make_read(total=1000)
    after = make_read(
        total=1000 + 20 * 60 + 1, collected_at=before.collected_at + timedelta(hours=1)
    )
    (anomaly,) = read_anomalies(before, after, policy.billing)
    assert anomaly.limit == 1200
    assert read_anomalies(before, after, None) == ()  # the default ceiling is higher


@pytest.mark.parametrize("counts", [(1234, 50)])
async def test_the_collector_sends_a_signed_event_when_a_meter_goes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counts: tuple[int, int]
) -> None:
    config = AgentConfig(
        state_dir=tmp_path, upload=UploadConfig(enabled=False), snmp=SnmpConfig(concurrency=1)
    )
    policy = parse_policy(
        'version: "1"\nmodels: [{vendor: Lexmark, names: [X]}]\n'
        "billing:\n  meter_types: {pages: total}\n"
    )
    sink = ListSink()
    with Inventory(tmp_path / "inventory.db") as inventory:
        inventory.record_discovery(
            "127.0.0.1",
            Identity(serial="LEX00001", vendor="Lexmark", is_printer=True),
            device_key="sn:lexmark:LEX00001",
            credential_profile="public",
        )
        collector = Collector(
            config,
            transport=CountingTransport(),  # type: ignore[arg-type]
            inventory=inventory,
            sink=sink,
            metrics=Metrics(),
            eligibility=EligibilityInputs(policy, None),
        )
        monkeypatch.setitem(PRINTER, TOTAL_OID, counts[0])
        await collector.read_all("meters")
        monkeypatch.setitem(PRINTER, TOTAL_OID, counts[1])
        await collector.read_all("meters")
    events = [body for kind, body in sink.messages if kind == "event"]
    anomalies = [parse_event(e) for e in events if e["event"] == "meter_backwards"]
    assert len(anomalies) == len(events) == 1
    (anomaly,) = anomalies
    assert isinstance(anomaly, MeterBackwards)
    assert (anomaly.meter, anomaly.previous, anomaly.current, anomaly.device_id) == (
        "total",
        counts[0],
        counts[1],
        "sn:lexmark:LEX00001",
    )


def test_inventory_hands_back_the_previous_read(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inventory.db") as inventory:
        inventory.record_discovery(
            "127.0.0.1",
            Identity(serial="S1", vendor="HP", is_printer=True),
            device_key="sn:hp:S1",
            credential_profile=None,
        )
        first = make_read(total=10)
        assert inventory.record_read("sn:hp:S1", first) is None
        second = make_read(total=20).model_copy(update={"counters": Counters(total=20)})
        previous = inventory.record_read("sn:hp:S1", second)
        assert previous is not None
        assert previous.counters.total == 10
