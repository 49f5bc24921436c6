"""Issue #13, liveness: a printer that stops and comes back, an agent that stops.

Everything real on loopback: snmpsim printers on 127.0.131.x, Mosquitto, the
daemon (``fleet-agent run``, restarted once mid-outage) and the reference
consumer (``fleet-agent ingest --metrics-port``) as subprocesses. The backend
stores exactly one ``device_silent`` and one ``device_back`` for the outage,
``fleet-agent agents`` and the consumer's metrics show the silent device, then
the stopped agent as silent once the threshold has passed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent import __version__
from agent.cli import build_parser
from agent.daemon import load_or_create_key
from agent.demo.broker import free_tcp_port
from agent.demo.fleet import DEMO_FLEET
from backend.agents import FleetLiveness, fleet_liveness
from backend.store import open_store
from tests.support.daemon import FLEET_AGENT, DaemonRunner, agent_config, start_printers
from tests.support.mosquitto import MosquittoFactory
from tests.support.mqtt_consumer import register_key, unique_prefix
from tests.support.snmpsim import SnmpSimFactory

# Two daemon starts, a printer restart and the consumer: over 300 s on a loaded machine.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

AGENT_ID = "live-agent"
SILENT_AFTER = "3s"  # the agent sends a heartbeat every second
WAIT = 180.0  # polling bound: a start-up takes over 30 s on a loaded shared machine


@contextmanager
def ingest_process(
    broker_port: int, prefix: str, keys_dir: Path, db: Path, metrics_port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    command = [
        str(FLEET_AGENT),
        "ingest",
        "--broker",
        "127.0.0.1",
        "--port",
        str(broker_port),
        "--no-tls",
        "--topic-prefix",
        prefix,
        "--group",
        "",
        "--client-id",
        f"ingest-{prefix}",
        "--keys-dir",
        str(keys_dir),
        "--store",
        f"sqlite:///{db}",
        "--metrics-port",
        str(metrics_port),
        "--silent-after",
        SILENT_AFTER,
        "--min-version",
        "0.0.1",
        "--log-level",
        "info",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + WAIT
        while b"ingest.subscribed" not in log.read_bytes():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "ingest did not subscribe:\n" + log.read_text()
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def liveness(db: Path, silent_after: float = 3.0) -> FleetLiveness:
    store = open_store(f"sqlite:///{db}")
    try:
        return fleet_liveness(store, now=datetime.now(UTC), silent_after=silent_after)
    finally:
        store.close()


def outage_events(db: Path) -> list[dict[str, object]]:
    """Every device_silent / device_back body stored in ``messages``, oldest first."""
    store = open_store(f"sqlite:///{db}")
    try:
        return [
            body
            for _agent, body in store.bodies("event")
            if isinstance(body, dict) and body["event"] in ("device_silent", "device_back")
        ]
    finally:
        store.close()


def outage_rows(db: Path) -> list[tuple[str, str]]:
    store = open_store(f"sqlite:///{db}")
    try:
        rows = store.execute("SELECT address, event FROM device_outages ORDER BY at").fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]
    finally:
        store.close()


async def until(check: Callable[[], bool], what: str, within: float = WAIT) -> None:
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.2)


def agents_command(db: Path, *args: str) -> tuple[int, str]:
    """``fleet-agent agents --db ... ARGS`` in this process: (exit status, output)."""
    arguments = build_parser("agents").parse_args(["agents", "--db", f"sqlite:///{db}", *args])
    out = io.StringIO()
    return arguments.handler(arguments, stdout=out), out.getvalue()


def agents_cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEET_AGENT), "agents", "--db", f"sqlite:///{db}", *args],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_printer_outage_and_agent_stop_reach_the_backend_once(
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    daemon_runner: DaemonRunner,
    tmp_path: Path,
) -> None:
    printers = start_printers(snmpsim_factory, tmp_path, "127.0.131", DEMO_FLEET[:2])
    stopped, steady = printers.addresses
    broker = mosquitto_factory()
    prefix = unique_prefix("live")
    state = tmp_path / "state"
    key = load_or_create_key(state)
    register_key(tmp_path / "keys", key)
    db = tmp_path / "backend.db"
    metrics_port = free_tcp_port()
    config = agent_config(
        tmp_path / "agent.yaml",
        state_dir=state,
        snmp_port=printers.port,
        targets=[printers.target_range],
        broker_port=broker.port,
        topic_prefix=prefix,
        agent_id=AGENT_ID,
        http_port=None,
        liveness={"device_silent_after": 2, "heartbeat_interval": "1s"},
    )
    with ingest_process(
        broker.port, prefix, tmp_path / "keys", db, metrics_port, tmp_path / "ingest.log"
    ):
        daemon = daemon_runner(config)

        def read_both() -> bool:
            report = liveness(db)
            return bool(report.agents) and report.agents[0].last_good_read_at is not None

        await until(read_both, "a heartbeat after the first reads")
        first = liveness(db, silent_after=60).agents[0]
        assert (first.agent_id, first.site, first.agent_version) == (AGENT_ID, "lab", __version__)
        assert first.devices_known == 2
        assert not first.silent

        # -- the printer stops: one device_silent after two missed reads ------------------
        printers.sims[0].stop()
        await until(lambda: bool(liveness(db).silent_devices), "device_silent at the backend")
        (silent,) = liveness(db).silent_devices
        assert (silent.address, silent.site, silent.agent_id) == (stopped, "lab", AGENT_ID)
        assert silent.missed_reads == 2
        assert silent.reason in ("port_closed", "timeout")
        samples = await asyncio.to_thread(scrape, metrics_port)
        assert samples[("fleet_devices_silent", (("site", "lab"),))] == 1
        assert samples[("fleet_agents_silent", ())] == 0
        status, out = await asyncio.to_thread(agents_command, db, "--format", "json", "--check")
        assert status == 1  # a silent device needs attention
        document = json.loads(out)
        assert document["silent_devices_by_site"] == {"lab": 1}
        assert document["silent_devices"][0]["address"] == stopped

        # -- the daemon restarts mid-outage: it remembers, and says nothing again ---------
        daemon.signal(signal.SIGTERM)
        assert await daemon.exited() == 0, daemon.log()
        daemon = daemon_runner(config)
        for _ in range(3):  # three more missed reads of the stopped printer
            mark = daemon.mark()
            await asyncio.to_thread(
                daemon.wait_for,
                "reads.completed",
                after=mark,
                where=lambda e: e["silent"] >= 1,
                timeout=WAIT,
            )
        assert daemon.named("device.silent") == []

        # -- the printer comes back: one device_back ------------------------------------
        snmpsim_factory(printers.sims[0].data_dir, address=stopped, port=printers.port)
        await until(lambda: not liveness(db).silent_devices, "device_back at the backend")
        samples = await asyncio.to_thread(scrape, metrics_port)
        assert samples.get(("fleet_devices_silent", (("site", "lab"),)), 0) == 0
        status, out = await asyncio.to_thread(agents_command, db, "--check", "--silent-after", "1m")
        assert status == 0, out  # nothing needs attention

        # -- the agent stops: silent once the threshold has passed ----------------------
        daemon.signal(signal.SIGTERM)
        assert await daemon.exited() == 0, daemon.log()
        await until(lambda: liveness(db).agents[0].silent, "the stopped agent to be silent")
        code = await asyncio.to_thread(
            agents_cli, db, "--check", "--format", "json", "--silent-after", SILENT_AFTER
        )
        assert code.returncode == 1, code.stderr
        (agent,) = json.loads(code.stdout)["agents"]
        assert agent["agent_id"] == AGENT_ID
        assert agent["silent"] is True
        assert agent["age_s"] > 3
        assert json.loads(code.stdout)["silent_devices"] == []
        samples = await asyncio.to_thread(scrape, metrics_port)
        assert samples[("fleet_agents_silent", ())] == 1
        assert samples[("fleet_agents_below_min_version", ())] == 0
        assert samples[("fleet_agent_last_heartbeat_age_seconds", (("agent_id", AGENT_ID),))] > 3
        _, table = await asyncio.to_thread(agents_command, db, "--format", "csv")
        rows = list(csv.reader(io.StringIO(table)))
        assert rows[0][:3] == ["record", "site", "agent_id"]
        assert [row[0] for row in rows[1:]] == ["agent"]
        assert {len(row) for row in rows} == {len(rows[0])}

    # Exactly one of each, in the messages the backend stored and in its outage table.
    events = outage_events(db)
    assert [(e["event"], e["address"]) for e in events] == [
        ("device_silent", stopped),
        ("device_back", stopped),
    ]
    assert events[0]["since"] == events[1]["since"]
    assert events[1]["missed_reads"] >= 5  # two before the restart, three after it at least
    assert outage_rows(db) == [(stopped, "device_silent"), (stopped, "device_back")]
    assert steady not in {e["address"] for e in events}
