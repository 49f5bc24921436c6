"""The daemon on a full disk: real tmpfs volumes, real Mosquitto, real snmpsim printers.

The state directory is a 2 MiB or 4 MiB tmpfs, filled to the last byte while
the daemon runs, with the broker stopped and started again meanwhile. The
daemon never exits; its reserve file takes the first reads and acks, then reads
wait in memory; when space returns they are written, sent and stored: every
read it took reaches the consumer, numbered without a gap. An outbox that
starts on a full volume still drains to the broker.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.demo.fleet import DEMO_FLEET
from agent.inventory import Inventory
from agent.state import OUTBOX_FILE, inventory_path, load_or_create_key
from tests.support.daemon import DaemonProcess, DaemonRunner, agent_config, start_printers
from tests.support.mosquitto import MosquittoFactory
from tests.support.mqtt_consumer import eventually, start_consumer, unique_prefix
from tests.support.snmpsim import SnmpSimFactory
from tests.support.tmpfs import TmpfsFactory, fill
from uploader.config import MqttSettings
from uploader.envelope import Signer
from uploader.outgoing import JsonMessage
from uploader.queue import Outbox

pytestmark = pytest.mark.integration

AGENT_ID = "test-agent"


def health(daemon: DaemonProcess) -> dict[str, Any]:
    url = f"http://127.0.0.1:{daemon.http_port()}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as exc:  # 503 while degraded: the body says why
        return dict(json.load(exc))


def metric(daemon: DaemonProcess, name: str) -> float:
    url = f"http://127.0.0.1:{daemon.http_port()}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def write_config(path: Path, state: Path, snmp_port: int, targets: list[str], **kw: Any) -> Path:
    agent_config(
        path,
        state_dir=state,
        snmp_port=snmp_port,
        targets=targets,
        broker_port=kw["broker_port"],
        topic_prefix=kw["prefix"],
        http_port=0,
        schedule={"meters": "1s", "supplies": "1h"},
        shutdown_deadline=60,  # the last cycle finishes: its reads are counted
    )
    data = yaml.safe_load(path.read_text())
    data["upload"]["disk_reserve"] = kw["reserve"]
    data["upload"]["memory_buffer"] = 10_000
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def reads_taken(daemon: DaemonProcess) -> int:
    return sum(e["ok"] + e["partial"] for e in daemon.named("reads.completed"))


async def drained(daemon: DaemonProcess, within: float) -> None:
    """Nothing held in memory and nothing queued on disk: the broker has every message."""

    def done() -> bool:
        return (
            health(daemon)["queue"]["depth"] == 0
            and metric(daemon, "fleet_agent_outbox_memory_held") == 0
        )

    await eventually(lambda: done() or not daemon.running, within=within, what="a full drain")
    assert daemon.running, daemon.log()[-3000:]


def signed(state: Path) -> int:
    """The outbox's chain position: how many messages the agent signed."""
    with sqlite3.connect(state / OUTBOX_FILE) as conn:
        return int(conn.execute("SELECT sequence FROM chain").fetchone()[0])


def stored_kinds(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT kind FROM messages")]


@pytest.mark.parametrize(
    ("size", "reserve", "subnet"),
    [("2m", 256 * 1024, "127.0.73"), ("4m", 1024 * 1024, "127.0.74")],
    ids=["2MiB", "4MiB"],
)
async def test_a_full_volume_costs_no_read_and_never_stops_the_daemon(
    size: str,
    reserve: int,
    subnet: str,
    tmpfs: TmpfsFactory,
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    daemon_runner: DaemonRunner,
    tmp_path: Path,
) -> None:
    volume = tmpfs(size)
    state = volume / "state"
    key = load_or_create_key(state)
    printers = start_printers(snmpsim_factory, tmp_path, subnet, DEMO_FLEET[:2])
    broker = mosquitto_factory()
    prefix = unique_prefix("diskfull")
    settings = MqttSettings(host="127.0.0.1", port=broker.port, tls=False, topic_prefix=prefix)
    consumer = await start_consumer(settings, [key], tmp_path / "consumer.db", group=None)
    config = write_config(
        tmp_path / "agent.yaml",
        state,
        printers.port,
        [printers.target_range],
        broker_port=broker.port,
        prefix=prefix,
        reserve=reserve,
    )
    daemon = daemon_runner(config)
    await eventually(lambda: consumer.ingestor.stored >= 10, within=60, what="first reads stored")
    assert (state / (OUTBOX_FILE + ".reserve")).stat().st_size == reserve

    # The volume fills up while reads go on; the broker goes away and comes back.
    mark = daemon.mark()  # before filling: the daemon may release the reserve while we fill
    filler = fill(volume)
    daemon.wait_for("outbox.reserve_released", after=mark, timeout=60)
    broker.stop()
    held = daemon.wait_for("outbox.held_in_memory", after=mark, timeout=120)
    assert held["held"] > 0
    assert metric(daemon, "fleet_agent_outbox_reserve_released") == 1
    degraded = health(daemon)
    assert "disk reserve is in use" in " ".join(degraded["problems"])
    assert degraded["queue"]["memory_only"] > 0  # what `fleet-agent status` reports
    assert degraded["queue"]["memory_limit"] > 0
    broker.start()
    await asyncio.sleep(3)
    assert daemon.running, daemon.log()[-3000:]

    # Space returns: what waited in memory is written, sent and stored.
    filler.unlink()
    daemon.wait_for("outbox.memory_flushed", after=mark, timeout=60)
    await drained(daemon, within=120)
    daemon.signal(signal.SIGTERM)
    assert await daemon.exited() == 0
    events = [e["event"] for e in daemon.events()]
    assert "outbox.dropped" not in events
    assert not [e for e in daemon.events() if "exception" in e or e["level"] == "critical"]
    assert "Traceback" not in daemon.log()

    with Outbox(state / OUTBOX_FILE, Signer(key, AGENT_ID)) as outbox:
        left = outbox.pending(100_000)  # a last cycle may end after the drain
        assert outbox.size_bytes() < 1024 * 1024  # the WAL stayed bounded
    total = signed(state)
    await consumer.wait_stored(total - len(left))
    summary = await consumer.finish()
    sequences = consumer.store.sequences(AGENT_ID)
    consumer.store.close()
    assert sequences + [m.sequence for m in left] == list(range(1, total + 1))  # none lost
    assert summary.duplicates + summary.stored >= len(sequences)
    reads = stored_kinds(tmp_path / "consumer.db").count("read")
    assert reads + sum(m.kind == "read" for m in left) == reads_taken(daemon)  # every read


async def test_start_up_on_a_full_volume_drains_the_queue(
    tmpfs: TmpfsFactory,
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    daemon_runner: DaemonRunner,
    tmp_path: Path,
) -> None:
    volume = tmpfs("2m")
    state = volume / "state"
    key = load_or_create_key(state)
    queued = 300
    with Outbox(state / OUTBOX_FILE, Signer(key, AGENT_ID)) as outbox:
        outbox.submit_many([JsonMessage("read", {"n": n, "pad": "x" * 200}) for n in range(queued)])
        assert outbox.depth() == queued
    Inventory(inventory_path(state)).close()  # the daemon ran here before
    fill(volume)  # not one byte left, and no reserve file to give back
    printers = start_printers(snmpsim_factory, tmp_path, "127.0.75", DEMO_FLEET[:1])
    broker = mosquitto_factory()
    prefix = unique_prefix("fullstart")
    settings = MqttSettings(host="127.0.0.1", port=broker.port, tls=False, topic_prefix=prefix)
    consumer = await start_consumer(settings, [key], tmp_path / "consumer.db", group=None)
    config = write_config(
        tmp_path / "agent.yaml",
        state,
        printers.port,
        [printers.target_range],
        broker_port=broker.port,
        prefix=prefix,
        reserve=0,
    )
    daemon = daemon_runner(config)
    daemon.wait_for("outbox.disk_full", timeout=60)
    await consumer.wait_stored(queued, within=60)  # drained although nothing can be written
    assert daemon.running, daemon.log()[-3000:]
    assert daemon.named("outbox.ack_deferred")
    assert consumer.store.sequences(AGENT_ID) == list(range(1, queued + 1))
    daemon.signal(signal.SIGTERM)
    assert await daemon.exited() == 0
    # Discovery cannot record what it finds on a full disk: that job fails (logged, with
    # its traceback, as any failing job); nothing else raised.
    raised = [e for e in daemon.events() if "exception" in e]
    assert all(e["event"] == "job.failed" and e["job"] == "discovery" for e in raised), raised
    await consumer.finish()
    consumer.store.close()
