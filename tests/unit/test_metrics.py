from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone

from agent.metrics import Metrics, MetricsServer, health_json


async def _get(port: int, path: str) -> tuple[str, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.decode().partition("\r\n\r\n")
    return head.splitlines()[0], body


async def test_metrics_and_health_are_served_on_loopback() -> None:
    metrics = Metrics()
    metrics.reads.labels(kind="meter", outcome="ok").inc(3)
    metrics.queue_depth.set(7)
    health = {"status": "ok", "devices": 2}
    server = MetricsServer(metrics, lambda: health, host="127.0.0.1", port=0)
    await server.start()
    try:
        status, body = await _get(server.port, "/metrics")
        assert status == "HTTP/1.1 200 OK"
        assert 'fleet_agent_reads_total{kind="meter",outcome="ok"} 3.0' in body
        assert "fleet_agent_queue_depth 7.0" in body
        status, body = await _get(server.port, "/healthz")
        assert status == "HTTP/1.1 200 OK"
        assert json.loads(body) == health
        health["status"] = "degraded"
        status, _ = await _get(server.port, "/healthz")
        assert status.startswith("HTTP/1.1 503")
        status, _ = await _get(server.port, "/nope")
        assert status.startswith("HTTP/1.1 404")
    finally:
        await server.close()
    assert metrics.value("fleet_agent_queue_depth") == 7


async def test_health_times_are_rfc3339() -> None:
    local = datetime(2026, 11, 29, 19, 18, 21, 800000, tzinfo=timezone(timedelta(hours=1)))
    health = {"status": "ok", "jobs": {"meters": {"last_success": local}}}
    server = MetricsServer(Metrics(), lambda: health, host="127.0.0.1", port=0)
    await server.start()
    try:
        _, body = await _get(server.port, "/healthz")
    finally:
        await server.close()
    assert json.loads(body)["jobs"]["meters"]["last_success"] == "2026-11-29T18:18:21Z"
    naive = datetime(2026, 1, 2, 3, 4, 5)  # a naive time is taken as UTC
    assert health_json(naive) == "2026-01-02T03:04:05Z"
    assert health_json(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00Z"
