"""Issue #6: `fleet-agent run` as a subprocess against snmpsim printers and Mosquitto.

Each test serves the demo fleet (agent/demo/fleet.py: five printers, several vendors,
one low on toner) on its own 127.0.6x.0/24 block and runs the real daemon binary.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.inventory import Inventory
from agent.state import inventory_path, load_or_create_key
from tests.support.daemon import (
    FLEET_AGENT,
    DaemonRunner,
    agent_config,
    start_printers,
)
from tests.support.mosquitto import MosquittoFactory
from tests.support.mqtt_consumer import start_consumer, unique_prefix
from tests.support.snmpsim import SnmpSimFactory
from tests.support.udp_counter import UdpCounterFactory
from uploader.config import MqttSettings
from uploader.envelope import Verifier
from uploader.keys import AgentKey

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DEMO_POLICY = REPO / "agent" / "demo" / "demo-policy.yaml"
AGENT_ID = "test-agent"
# device_found for each printer, and supply_low for the HP on 7 % toner.
EXPECTED_EVENTS = 5 + 1


def consumer_settings(port: int, prefix: str) -> MqttSettings:
    return MqttSettings(host="127.0.0.1", port=port, tls=False, topic_prefix=prefix)


def stored(store_tokens: list[str], key: AgentKey) -> list[tuple[str, dict[str, object]]]:
    """(kind, body) of each stored envelope, verified once more against the agent key."""
    verifier = Verifier({key.key_id: key.jose_key})
    out = []
    for token in store_tokens:
        envelope = verifier.verify(token)
        out.append((envelope.kind, dict(envelope.body)))
    return out


async def test_reads_arrive_at_the_consumer_signed_and_stored(
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    daemon_runner: DaemonRunner,
    tmp_path: Path,
) -> None:
    printers = start_printers(snmpsim_factory, tmp_path, "127.0.60")
    broker = mosquitto_factory()
    prefix = unique_prefix("daemon")
    state = tmp_path / "state"
    key = load_or_create_key(state)  # the daemon uses this key instead of making one
    consumer = await start_consumer(
        consumer_settings(broker.port, prefix), [key], tmp_path / "consumer.db"
    )
    config = agent_config(
        tmp_path / "agent.yaml",
        state_dir=state,
        snmp_port=printers.port,
        targets=[printers.target_range],
        broker_port=broker.port,
        topic_prefix=prefix,
        policy=DEMO_POLICY,
        http_port=None,
    )
    daemon = daemon_runner(config, "--once")
    assert await daemon.exited() == 0, daemon.log()

    await consumer.wait_stored(len(printers.sims) + EXPECTED_EVENTS)
    summary = await consumer.finish()
    assert summary.rejected == {}
    assert summary.verified == summary.stored == len(printers.sims) + EXPECTED_EVENTS
    assert summary.gaps_open == 0
    assert summary.chain_breaks == 0

    messages = stored(consumer.store.tokens(AGENT_ID), key)
    reads = [body for kind, body in messages if kind == "read"]
    events = [body for kind, body in messages if kind == "event"]
    assert len(reads) == 5
    with Inventory(inventory_path(state)) as inventory:
        known = {d.device_id: d for d in inventory.devices()}
    assert {r["device_id"] for r in reads} == set(known)
    assert len(known) == 5
    assert {r["identity"]["serial"] for r in reads} == printers.serials()  # type: ignore[index]
    assert {r["address"] for r in reads} == set(printers.addresses)
    assert all(r["purpose"] == "meters" for r in reads)
    verdicts = {r["identity"]["model"]: r["eligibility"]["eligible"] for r in reads}  # type: ignore[index]
    assert verdicts == {
        "LaserJet Pro M404dn": True,
        "CX725": True,
        "AltaLink C8045": False,
        "HL-L2350DW": False,
    }
    assert sorted(e["event"] for e in events) == ["device_found"] * 5 + ["supply_low"]
    low = next(e for e in events if e["event"] == "supply_low")
    assert low["device_id"] == "sn:hp:PHBQA12346"
    assert low["percent"] == 7
    stopped = daemon.wait_for("daemon.stopped")
    assert stopped["queue_depth"] == 0
    assert stopped["published"] == 5 + EXPECTED_EVENTS

    # The onboarding specialist's fleet report straight from the daemon's inventory.
    report = await asyncio.to_thread(
        subprocess.run,
        [str(FLEET_AGENT), "eligibility", "--policy", str(DEMO_POLICY), "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.returncode == 0, report.stderr
    fleet = json.loads(report.stdout)
    rows = {row["device_id"]: row for row in fleet["devices"]}
    assert set(rows) == set(known)
    xerox = rows["sn:xerox:XRX3TB012345"]
    assert [r["code"] for r in xerox["verdict"]["reasons"]] == ["lifetime_count_over_max"]
    assert xerox["start_page_count"] == 1_480_112
    assert fleet["summary"]["eligible"] == 3


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """``/metrics`` as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def until(check: Callable[[], bool], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.2)


def status(config: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEET_AGENT), "status", "--config", str(config), "--port", str(port), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


async def test_metrics_and_status_follow_broker_and_device_outages(
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    daemon_runner: DaemonRunner,
    udp_counter_factory: UdpCounterFactory,
    tmp_path: Path,
) -> None:
    printers = start_printers(snmpsim_factory, tmp_path, "127.0.61")
    broker = mosquitto_factory()
    config = agent_config(
        tmp_path / "agent.yaml",
        state_dir=tmp_path / "state",
        snmp_port=printers.port,
        targets=[printers.target_range],
        broker_port=broker.port,
        topic_prefix=unique_prefix("metrics"),
    )
    daemon = daemon_runner(config)
    port = await asyncio.to_thread(daemon.http_port)

    def healthy() -> bool:
        m = scrape(port)
        return (
            metric(m, "fleet_agent_reads_total", kind="meters", outcome="ok") >= 5
            and metric(m, "fleet_agent_reads_total", kind="supplies", outcome="ok") >= 5
            and metric(m, "fleet_agent_devices_known") == 5
            and metric(m, "fleet_agent_broker_connected") == 1
            and metric(m, "fleet_agent_queue_depth") == 0
            and metric(m, "fleet_agent_messages_uploaded_total") >= 5 + 5 + EXPECTED_EVENTS
        )

    await until(healthy, "reads, devices and uploads in /metrics")
    m = scrape(port)
    assert metric(m, "fleet_agent_reads_total", kind="meters", outcome="silent") == 0
    assert metric(m, "fleet_agent_task_runs_total", task="discovery", outcome="ok") == 1
    # Names and labels as Prometheus expects: no label it sets itself (job -> exported_job),
    # no _created series, histograms for read and task durations.
    assert not [k for k in m if {"job", "instance"} & {label for label, _ in k[1]}]
    assert not [k for k in m if k[0].endswith("_created")]
    assert metric(m, "fleet_agent_read_duration_seconds_count", kind="meters") >= 5
    assert metric(m, "fleet_agent_read_duration_seconds_bucket", kind="meters", le="+Inf") >= 5
    assert metric(m, "fleet_agent_task_duration_seconds_count", task="discovery") == 1
    up = {dict(k[1])["device_id"]: v for k, v in m.items() if k[0] == "fleet_agent_device_up"}
    assert len(up) == 5, up
    assert set(up.values()) == {1.0}, up
    last = [v for k, v in m.items() if k[0] == "fleet_agent_device_last_read_timestamp_seconds"]
    assert len(last) == 5
    assert min(last) > time.time() - 600
    info = [dict(k[1]) for k in m if k[0] == "fleet_agent_device_info"]
    assert sorted(i["address"] for i in info) == [f"127.0.61.{n}" for n in range(1, 6)]
    assert {i["device_id"] for i in info} == set(up)
    assert metric(m, "fleet_agent_queue_size_bytes") > 0
    assert metric(m, "fleet_agent_last_upload_timestamp_seconds") > 0
    assert metric(m, "fleet_agent_snmp_requests_total") > 0

    ok = await asyncio.to_thread(status, config, port)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "status ok" in ok.stdout
    assert "devices known: 5" in ok.stdout
    assert f"mqtt://127.0.0.1:{broker.port}, connected yes" in ok.stdout
    assert "True" not in ok.stdout
    assert "False" not in ok.stdout
    document = json.loads(
        (await asyncio.to_thread(status, config, port, "--format", "json")).stdout
    )
    assert document["jobs"]["meters"]["runs"] >= 1
    rfc3339 = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert re.fullmatch(rfc3339, document["jobs"]["meters"]["last_success"])
    assert re.fullmatch(rfc3339, document["broker"]["last_ack_at"])
    assert document["devices_known"] == 5
    assert document["broker"]["published"] >= 5 + 5 + EXPECTED_EVENTS

    broker.stop()  # the broker goes away: reads pile up in the outbox, health degrades

    def queued() -> bool:
        m = scrape(port)
        return (
            metric(m, "fleet_agent_broker_connected") == 0
            and metric(m, "fleet_agent_queue_depth") >= 5
        )

    await until(queued, "broker_connected 0 and a growing queue")
    down = await asyncio.to_thread(status, config, port)
    assert down.returncode == 1
    assert "status degraded" in down.stdout
    assert "problem: broker not connected" in down.stdout
    assert (await asyncio.to_thread(status, config, port, "--quiet")).stdout == ""
    quiet_json = await asyncio.to_thread(status, config, port, "--quiet", "--format", "json")
    assert (quiet_json.returncode, quiet_json.stdout) == (1, "")

    # One printer stops answering: its reads count as silent. A sink takes its port, as a
    # firewall that drops SNMP would (a closed port answers ICMP, which is no timeout).
    printers.sims[4].stop()
    udp_counter_factory([printers.sims[4].address], printers.port)

    def silent() -> bool:
        m = scrape(port)
        return (
            metric(m, "fleet_agent_reads_total", kind="supplies", outcome="silent") >= 1
            and metric(m, "fleet_agent_snmp_timeouts_total") >= 1
            and metric(m, "fleet_agent_snmp_retries_total") >= 1  # snmp.retries: 1
            and 0.0 in {v for k, v in m.items() if k[0] == "fleet_agent_device_up"}
        )

    await until(silent, "silent reads and SNMP timeouts")

    broker.start()  # back: the queue drains, health recovers

    def drained() -> bool:
        m = scrape(port)
        return (
            metric(m, "fleet_agent_broker_connected") == 1
            and metric(m, "fleet_agent_queue_depth") == 0
        )

    await until(drained, "the queue to drain after the broker came back")
    assert (await asyncio.to_thread(status, config, port)).returncode == 0

    daemon.signal(signal.SIGTERM)
    assert await daemon.exited() == 0
    gone = await asyncio.to_thread(status, config, port)
    assert gone.returncode == 1
    assert "does not answer" in gone.stderr


async def test_systemd_notify_ready_watchdog_reloading_stopping(
    daemon_runner: DaemonRunner, tmp_path: Path
) -> None:
    socket_dir = Path(tempfile.mkdtemp(prefix="fa-notify-"))  # AF_UNIX paths are short
    try:
        path = socket_dir / "notify.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.settimeout(0.2)
        config = agent_config(
            tmp_path / "agent.yaml",
            state_dir=tmp_path / "state",
            snmp_port=161,
            targets=[],
            broker_port=None,
            http_port=None,
        )
        daemon = daemon_runner(config, env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "600000"})
        received: list[str] = []

        def drain(until_seen: str, within: float = 30.0, *, quiet: bool = False) -> None:
            """Collect datagrams until ``until_seen`` arrives (or, quiet, until ``within``)."""
            deadline = time.monotonic() + within
            while until_seen not in received:
                if time.monotonic() > deadline:
                    if quiet:
                        return
                    raise AssertionError(f"no {until_seen} in {received}:\n{daemon.log()}")
                try:
                    datagram = sock.recv(4096).decode()
                except TimeoutError:
                    continue
                received.extend(datagram.splitlines())

        await asyncio.to_thread(drain, "READY=1")
        assert "STATUS=running; 0 devices known" in received
        received.clear()
        started = time.monotonic()
        await asyncio.to_thread(drain, "never sent", 3.0, quiet=True)
        # WATCHDOG_USEC 0.6 s: a ping every 0.3 s, so about 10 in 3 s; at least 4 leaves
        # room for a loaded machine and still fails a daemon that pings only on its cycles.
        assert received.count("WATCHDOG=1") >= 4, received
        assert time.monotonic() - started >= 3.0
        daemon.signal(signal.SIGHUP)
        received.clear()
        await asyncio.to_thread(drain, "RELOADING=1")
        await asyncio.to_thread(drain, "READY=1")
        daemon.signal(signal.SIGTERM)
        await asyncio.to_thread(drain, "STOPPING=1")
        assert await daemon.exited() == 0
        sock.close()
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
