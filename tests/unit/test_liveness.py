"""Device liveness on the agent: one device_silent and one device_back per outage.

The pure transition (:func:`agent.liveness.after_read`), the state kept across a
restart (:class:`agent.liveness.LivenessTracker` on a real state database), and
the collector's reads (overlapping meter and supply runs included) through a
fake transport whose devices can fall silent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.collect import Collector
from agent.config import AgentConfig, LivenessConfig, UploadConfig, load_config
from agent.errors import ConfigError
from agent.inventory import Inventory
from agent.liveness import DeviceLiveness, LivenessTracker, after_read
from agent.metrics import Metrics
from collectors.credentials import Credential, SnmpSettings
from collectors.errors import SnmpPortClosed
from collectors.udp import Pace
from collectors.walk import WalkResult
from mibs.events import DeviceBack, DeviceSilent
from mibs.messages import AgentMessage
from mibs.values import Oid, Value
from tests.unit.test_collect_counting import Session, _fleet

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _run(answers: Sequence[bool], threshold: int = 3) -> list[object]:
    """The events a device causes with these read outcomes, one a minute from T0."""
    state, events = DeviceLiveness("d1"), []
    for n, answered in enumerate(answers):
        state, event = after_read(
            state,
            answered=answered,
            at=T0 + n * MINUTE,
            address="192.0.2.7",
            threshold=threshold,
            last_answered_at=T0 - MINUTE,
            reason=None if answered else "timeout",
        )
        if event is not None:
            events.append(event)
    return events


def test_fewer_misses_than_the_threshold_send_nothing() -> None:
    assert _run([True, False, False, True, False, False, True]) == []


def test_one_silent_and_one_back_per_outage_however_long() -> None:
    silent, back = _run([True, False, False, False, False, False, True, True])
    assert isinstance(silent, DeviceSilent)
    assert isinstance(back, DeviceBack)
    assert silent.since == back.since == T0 + MINUTE  # the first miss: the outage's identity
    assert silent.missed_reads == 3
    assert silent.reason == "timeout"
    assert silent.last_answered_at == T0 - MINUTE
    assert back.missed_reads == 5
    assert back.back_at == T0 + 6 * MINUTE


def test_two_outages_are_two_pairs() -> None:
    events = _run([False, False, True, False, False, True], threshold=2)
    assert [type(e).__name__ for e in events] == [
        "DeviceSilent",
        "DeviceBack",
        "DeviceSilent",
        "DeviceBack",
    ]
    assert events[0].since != events[2].since  # type: ignore[attr-defined]


def test_state_survives_a_restart_and_is_written_only_once_the_event_is_sent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inventory.db"
    silent = DeviceLiveness("d1", misses=3, since=T0, silent=True)
    with Inventory(path) as inventory:
        tracker = LivenessTracker(inventory)
        tracker.update(DeviceLiveness("d1", misses=2, since=T0), event=False)
        tracker.update(silent, event=True)
        assert tracker.state("d1") == silent  # an overlapping read sees it at once
    with Inventory(path) as inventory:  # "crash" before the event was durable
        tracker = LivenessTracker(inventory)
        assert tracker.state("d1") == DeviceLiveness("d1", misses=2, since=T0)
        tracker.update(silent, event=True)
        tracker.sent("d1")
    with Inventory(path) as inventory:
        tracker = LivenessTracker(inventory)
        assert tracker.state("d1") == silent
        assert tracker.silent() == ["d1"]
        tracker.update(DeviceLiveness("d1"), event=True)
        tracker.sent("d1")
        assert (
            inventory.connection().execute("SELECT count(*) FROM device_liveness").fetchone()[0]
            == 0
        )  # an answering device leaves no row


def test_an_event_that_cannot_be_queued_is_sent_by_a_later_read(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inventory.db") as inventory:
        tracker = LivenessTracker(inventory)
        before = DeviceLiveness("d1", misses=2, since=T0)
        tracker.update(before, event=False)
        tracker.update(DeviceLiveness("d1", misses=3, since=T0, silent=True), event=True)
        tracker.failed(before)
        assert tracker.state("d1") == before
        state, event = after_read(
            tracker.state("d1"),
            answered=False,
            at=T0 + MINUTE,
            address="192.0.2.7",
            threshold=3,
            last_answered_at=None,
        )
        assert isinstance(event, DeviceSilent)
        assert state.misses == 3


# -- through the collector --------------------------------------------------------------


class FlakyTransport:
    """A fake transport: every device answers like PRINTER, unless its address is ``down``."""

    def __init__(self) -> None:
        self.requests_sent = self.timeouts = self.retries = 0
        self.down: set[str] = set()

    def session(
        self,
        address: str,
        credential: Credential,
        *,
        settings: SnmpSettings | None = None,
        pace: Pace | None = None,
    ) -> Session:
        transport = self

        class Maybe(Session):
            async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
                if address in transport.down:
                    await asyncio.sleep(0)
                    raise SnmpPortClosed("port unreachable", address=address)
                return await super().get(oids)

            async def walk(self, columns: Sequence[Oid]) -> WalkResult:
                if address in transport.down:
                    raise SnmpPortClosed("port unreachable", address=address)
                return await super().walk(columns)

        return Maybe(self, address)  # type: ignore[arg-type]


class SlowSink:
    """Commits each message after a pause, as the outbox's worker thread does."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    async def submit(self, message: AgentMessage) -> None:
        await asyncio.sleep(0.01)
        if message.kind == "event":
            self.events.append(dict(message.to_body()))


def _collector(inventory: Inventory, transport: FlakyTransport, sink: SlowSink) -> Collector:
    config = AgentConfig(
        upload=UploadConfig(enabled=False), liveness=LivenessConfig(device_silent_after=2)
    )
    return Collector(
        config,
        transport=transport,  # type: ignore[arg-type]
        inventory=inventory,
        sink=sink,
        metrics=Metrics(),
    )


def _outages(sink: SlowSink) -> list[tuple[object, object]]:
    return [
        (e["event"], e["address"])
        for e in sink.events
        if e["event"] in ("device_silent", "device_back")
    ]


async def test_overlapping_runs_send_one_event_each_and_a_restart_remembers(
    tmp_path: Path,
) -> None:
    transport, sink = FlakyTransport(), SlowSink()
    path = tmp_path / "inventory.db"
    with Inventory(path) as inventory:
        _fleet(inventory, 3)
        collector = _collector(inventory, transport, sink)
        await collector.read_all("meters")
        transport.down.add("127.0.1.2")
        for _ in range(3):  # meter and supply runs overlap: two misses a round
            await asyncio.gather(collector.read_all("meters"), collector.read_all("supplies"))
        assert _outages(sink) == [("device_silent", "127.0.1.2")]
        down = [d.device_id for d in inventory.devices() if d.address == "127.0.1.2"]
        assert collector.events.liveness.silent() == down
    with Inventory(path) as inventory:  # the daemon restarts: still silent, nothing new
        collector = _collector(inventory, transport, sink)
        assert len(collector.events.liveness.silent()) == 1
        await collector.read_all("meters")
        assert _outages(sink) == [("device_silent", "127.0.1.2")]
        transport.down.clear()
        await asyncio.gather(collector.read_all("meters"), collector.read_all("supplies"))
        await collector.read_all("meters")
    assert _outages(sink) == [("device_silent", "127.0.1.2"), ("device_back", "127.0.1.2")]
    silent, back = (e for e in sink.events if e["event"] in ("device_silent", "device_back"))
    assert silent["since"] == back["since"]
    assert silent["reason"] == "port_closed"
    assert back["missed_reads"] == 7  # six overlapping misses, one after the restart


def test_liveness_settings_are_checked_with_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "upload:\n"
        "  enabled: false\n"
        "liveness:\n"
        "  device_silent_after: 0\n"
        "  heartbeat_interval: sometimes\n"
        "  silent: yes\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    lines = str(info.value).splitlines()
    assert any(line.startswith(f"{path}:4: liveness.device_silent_after: ") for line in lines)
    assert any(
        line.startswith(f"{path}:5: liveness.heartbeat_interval: a duration") for line in lines
    )
    assert f"{path}:6: liveness.silent: is not a known field" in lines
    path.write_text(
        "upload:\n  enabled: false\nliveness:\n  device_silent_after: 5\n  heartbeat_interval: 2m\n"
    )
    settings = load_config(path, environ={}).liveness
    assert (settings.device_silent_after, settings.heartbeat_interval) == (5, 120.0)
