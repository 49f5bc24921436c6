"""Prometheus metrics and the ``/metrics`` + ``/healthz`` endpoint on loopback.

One :class:`Metrics` per daemon, on its own registry (no process-global
state, so tests can build several). The HTTP side is a tiny asyncio server:
two read-only routes, bound to 127.0.0.1 by default.

Names and labels follow the Prometheus conventions an snmp_exporter user knows: base
units in the name (``_seconds``, ``_bytes``), ``_total`` on counters, no label that
Prometheus sets itself (``job``, ``instance``: a scheduled run is a ``task``), no
``_created`` series, per-device ``up`` and last-read gauges keyed by ``device_id`` with
the address and make in ``fleet_agent_device_info``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from agent import __version__

log = structlog.get_logger("agent.metrics")

READ_OUTCOMES = ("ok", "partial", "silent", "error")

# A ``_created`` sample per counter doubles the series and means nothing to a scraper that
# sees the process start in ``process_start_time_seconds``; the switch is process-wide.
disable_created_metrics()  # type: ignore[no-untyped-call]

# One device read is a handful of GET/GETBULK exchanges (snmp_exporter's
# snmp_scrape_duration_seconds measures the same thing); a run reads the whole fleet.
READ_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TASK_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.build_info = Gauge("fleet_agent_build_info", "Agent version.", ["version"], registry=r)
        self.build_info.labels(version=__version__).set(1)
        self.devices_known = Gauge(
            "fleet_agent_devices_known", "Printers in the inventory.", registry=r
        )
        self.reads = Counter(
            "fleet_agent_reads", "Device reads by outcome.", ["kind", "outcome"], registry=r
        )
        self.snmp_requests = Counter("fleet_agent_snmp_requests", "SNMP requests sent.", registry=r)
        self.decoder_errors = Counter(
            "fleet_agent_decoder_errors",
            "Read parts lost to a bug in our decoders (logged as decode.decoder_error).",
            ["part"],
            registry=r,
        )
        self.snmp_timeouts = Counter(
            "fleet_agent_snmp_timeouts", "SNMP requests that got no answer.", registry=r
        )
        self.snmp_retries = Counter(
            "fleet_agent_snmp_retries",
            "SNMP v1/v2c requests sent again after an unanswered attempt (pysnmp retransmits "
            "SNMPv3 requests internally, uncounted).",
            registry=r,
        )
        self.read_duration = Histogram(
            "fleet_agent_read_duration_seconds",
            "Duration of one device read, answered or not, by purpose.",
            ["kind"],
            buckets=READ_BUCKETS,
            registry=r,
        )
        self.device_up = Gauge(
            "fleet_agent_device_up",
            "1 if the device answered its last read, 0 if it stayed silent or failed.",
            ["device_id"],
            registry=r,
        )
        self.device_last_read = Gauge(
            "fleet_agent_device_last_read_timestamp_seconds",
            "Unix time of the device's last answered read.",
            ["device_id"],
            registry=r,
        )
        self.device_info = Gauge(
            "fleet_agent_device_info",
            "Where and what each read device is (always 1).",
            ["device_id", "address", "vendor", "model"],
            registry=r,
        )
        self._device_labels: dict[str, tuple[str, str, str]] = {}
        self.task_runs = Counter(
            "fleet_agent_task_runs",
            "Scheduled task runs (discovery, meters, supplies) by outcome.",
            ["task", "outcome"],
            registry=r,
        )
        self.task_duration = Histogram(
            "fleet_agent_task_duration_seconds",
            "Duration of one scheduled task run, by task.",
            ["task"],
            buckets=TASK_BUCKETS,
            registry=r,
        )
        self.task_last_success = Gauge(
            "fleet_agent_task_last_success_timestamp_seconds",
            "Unix time of the last successful run of each scheduled task.",
            ["task"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "fleet_agent_queue_depth", "Signed messages waiting for a broker ack.", registry=r
        )
        self.queue_size = Gauge(
            "fleet_agent_queue_size_bytes",
            "Disk space of the durable upload queue (database and write-ahead log).",
            registry=r,
        )
        self.queue_oldest_age = Gauge(
            "fleet_agent_queue_oldest_age_seconds",
            "Age of the oldest queued message (0 when the queue is empty).",
            registry=r,
        )
        self.last_upload = Gauge(
            "fleet_agent_last_upload_timestamp_seconds",
            "Unix time of the last broker-acknowledged message (0 = never).",
            registry=r,
        )
        self.uploaded = Counter(
            "fleet_agent_messages_uploaded", "Messages acknowledged by the broker.", registry=r
        )
        self.broker_connected = Gauge(
            "fleet_agent_broker_connected", "1 while connected to the MQTT broker.", registry=r
        )
        self.outbox_memory_held = Gauge(
            "fleet_agent_outbox_memory_held",
            "Messages waiting in memory because the disk is full.",
            registry=r,
        )
        self.outbox_memory_dropped = Gauge(
            "fleet_agent_outbox_memory_dropped",
            "Messages dropped since start: the disk was full and the memory buffer too.",
            registry=r,
        )
        self.outbox_deferred_acks = Gauge(
            "fleet_agent_outbox_deferred_acks",
            "Acknowledged messages whose removal waits for disk space.",
            registry=r,
        )
        self.outbox_reserve_released = Gauge(
            "fleet_agent_outbox_reserve_released",
            "1 while the outbox's disk reserve is released (the disk filled).",
            registry=r,
        )
        self.started_at = time.time()

    def device_read(
        self, device_id: str, *, answered: bool, at: float, address: str, vendor: str, model: str
    ) -> None:
        """Per-device ``up``, last-read time and info after one read of that device."""
        self.device_up.labels(device_id=device_id).set(1 if answered else 0)
        if answered:
            self.device_last_read.labels(device_id=device_id).set(at)
        labels = (address, vendor, model)
        previous = self._device_labels.get(device_id)
        if previous != labels:
            if previous is not None:  # moved or re-identified: one info series per device
                self.device_info.remove(device_id, *previous)
            self.device_info.labels(device_id, *labels).set(1)
            self._device_labels[device_id] = labels

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of one sample (tests and ``fleet-agent status``)."""
        found = self.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else float(found)


HealthProvider = Callable[[], dict[str, Any]]


def health_json(value: object) -> str:
    """``json.dumps`` default for the health document: times in RFC 3339 (UTC), the rest as text."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return str(value)


class Exposition(Protocol):
    """What :class:`MetricsServer` serves at ``/metrics`` (:class:`Metrics`, the consumer's)."""

    def render(self) -> bytes: ...


class MetricsServer:
    """Serves ``GET /metrics`` and ``GET /healthz``; anything else is 404."""

    def __init__(
        self, metrics: Exposition, health: HealthProvider, *, host: str, port: int
    ) -> None:
        self._metrics = metrics
        self._health = health
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        log.info("http.listening", host=self._host, port=self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request_line = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            parts = request_line.decode("latin-1").split()
            method, path = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
            if method != "GET":
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path.split("?")[0] == "/metrics":
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, self._metrics.render()
            elif path.split("?")[0] == "/healthz":
                health = self._health()
                status = "200 OK" if health.get("status") == "ok" else "503 Service Unavailable"
                ctype, body = (
                    "application/json",
                    json.dumps(health, default=health_json).encode() + b"\n",
                )
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
