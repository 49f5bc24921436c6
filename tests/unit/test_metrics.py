from __future__ import annotations

import asyncio
import json

from agent.metrics import Metrics, MetricsServer


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
