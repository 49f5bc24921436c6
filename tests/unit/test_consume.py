"""The consumer watchdog: a consumer that receives nothing while the broker holds its heartbeat."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from agent.commands.ingest import ConsumerMetrics
from agent.metrics import MetricsServer
from backend.consume import (
    ConsumerHealth,
    StallDetector,
    Watch,
    _Shell,
    _Stalled,
    heartbeat_topic,
)
from tests.unit.test_metrics import _get
from uploader.consumer import InboundMessage


def test_detector_stalls_only_without_any_delivery() -> None:
    detector = StallDetector(stall_after=30)
    detector.published(1, now=100.0)
    detector.published(2, now=105.0)  # the oldest unseen heartbeat counts
    assert not detector.stalled(129.0, last_received_at=None)
    assert detector.stalled(130.0, last_received_at=None)
    # a consumer working through a backlog keeps receiving: not stalled
    assert not detector.stalled(131.0, last_received_at=120.0)
    detector.seen(1)
    assert detector.awaiting_seq is None
    detector.published(3, now=140.0)
    assert detector.stalled(200.0, last_received_at=None)
    detector.seen(3)
    assert not detector.stalled(500.0, last_received_at=None)


def test_heartbeat_topic_is_one_safe_level_outside_the_fleet_filters() -> None:
    topic = heartbeat_topic("fleet", "ingest/+#1")
    assert topic == "fleet/_consumer/ingest___1/heartbeat"


class _BlackHoleSession:
    """A session whose deliveries never reach the caller (what the cancelled receive did)."""

    def __init__(self) -> None:
        self.published: list[bytes] = []
        self.last_received_at: float | None = None
        self.held = 3

    async def publish(self, topic: str, payload: bytes, *, ack_within: float) -> None:
        self.published.append(payload)

    def oldest_held_age(self) -> float:
        return 42.0

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        raise AssertionError("nothing to ack")


async def test_watchdog_says_stalled_and_reconnects() -> None:
    health = ConsumerHealth(connected=True)
    shell = _Shell(
        ingestor=None,  # type: ignore[arg-type]  # not reached: nothing is delivered
        health=health,
        detector=StallDetector(stall_after=0.2),
        beat_topic="p/_consumer/c/heartbeat",
        token="abcd",
    )
    session = _BlackHoleSession()
    watch = Watch(interval=0.05, stall_after=0.2)
    with capture_logs() as logs:
        with pytest.raises(_Stalled):
            await asyncio.wait_for(shell.heartbeats(session, watch), 5)  # type: ignore[arg-type]
        assert health.stalled
        assert health.stalls == 1
        assert health.status()["status"] == "stalled"
        assert health.status()["held"] == 3
        assert session.published[0] == b"abcd:1"
        stalled = [entry for entry in logs if entry["event"] == "ingest.stalled"]
        assert stalled
        assert stalled[0]["log_level"] == "error"
        assert stalled[0]["held"] == 3
        # its own heartbeat coming back clears the stall
        beat = InboundMessage("p/_consumer/c/heartbeat", b"abcd:1", mid=1, qos=1)
        assert shell._heartbeat(beat)
        assert not health.stalled
        assert health.status()["status"] == "ok"
        assert [e["event"] for e in logs][-1] == "ingest.recovered"
        # another process's heartbeat is acknowledged but proves nothing
        foreign = InboundMessage("p/_consumer/c/heartbeat", b"ffff:9", mid=2, qos=1)
        assert shell._heartbeat(foreign)
        assert shell.detector.last_seen_seq == 1


async def test_a_stall_shows_in_ingest_metrics_and_healthz() -> None:
    """``fleet-agent ingest --metrics-port``: ``fleet_ingest_stalled`` 1 and ``/healthz`` 503."""
    health = ConsumerHealth(connected=True)
    ingestor = SimpleNamespace(stored=4)  # ConsumerMetrics reads only its counter
    metrics = ConsumerMetrics(ingestor, health)  # type: ignore[arg-type]
    server = MetricsServer(metrics, health.status, host="127.0.0.1", port=0)
    await server.start()
    try:
        status, body = await _get(server.port, "/healthz")
        assert status == "HTTP/1.1 200 OK"
        assert "fleet_ingest_stalled 0.0" in metrics.render().decode()
        health.stalled, health.stalls = True, 1
        status, body = await _get(server.port, "/healthz")
        assert status.startswith("HTTP/1.1 503")
        assert json.loads(body)["status"] == "stalled"
        _, text = await _get(server.port, "/metrics")
        assert "fleet_ingest_stalled 1.0" in text
        assert "fleet_ingest_stalls 1.0" in text
        assert "fleet_ingest_messages_stored 4.0" in text
        health.stalled = False
        status, _ = await _get(server.port, "/healthz")
        assert status == "HTTP/1.1 200 OK"
    finally:
        await server.close()
