"""Chaos soak (issue #10): agent, broker and consumer for a long run, with kills and junk.

Runs, all on 127.0.0.0/8:

* ``fleet-agent run`` reading a small synthetic fleet (``bench/soak_fleet.py``,
  served by ``bench/replay_responder.py``) on a short meter interval;
* Debian Mosquitto with persistence, *stopped* (SIGTERM, it saves its queues) at
  random moments and started again on the same port after a few seconds;
* the reference consumer (``fleet-agent ingest``, one persistent session),
  killed with SIGKILL at random moments and started again;
* a junk publisher sending malformed payloads to a reads topic alongside;
* a witness: a plain persistent QoS 1 subscriber that notes when each envelope
  was first seen at the broker.

At the end the daemon is stopped (SIGTERM), whatever it still had queued is
drained by an in-process publisher on its outbox, and the consumer's store is
compared with the agent's chain: every sequence 1..N the agent signed must be
stored exactly once. Reported: messages signed and published, stored, lost,
stored twice, redeliveries dropped as duplicates, junk published and rejected,
and the longest time an envelope waited at the broker *while the consumer and
the broker were both up* (from the later of its first sighting by the witness
and the last consumer/broker start, to the consumer's ``received_at``).

    .venv/bin/python bench/chaos_soak.py --duration 1800 --json chaos.json
    .venv/bin/python bench/chaos_soak.py --duration 60 --devices 10   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import json
import os
import platform
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiomqtt
import yaml
from soak_fleet import (
    fleet_addresses,
    start_responders,
    synthetic_fleet,
    target_ranges,
    write_recordings,
)

from agent.demo import broker as launcher
from agent.demo import process as processes
from agent.state import key_path
from uploader.config import MqttSettings
from uploader.envelope import Signer
from uploader.keys import AgentKey
from uploader.mqtt import MqttPublisher
from uploader.queue import Outbox

HERE = Path(__file__).resolve().parent
AGENT_ID = "chaos-agent"
SITE = "chaos"
PREFIX = "fleet"
CONSUMER_ID = "chaos-consumer"


@dataclass
class Options:
    duration: float
    devices: int
    base: str
    meters: str
    consumer_kill_every: tuple[float, float]
    broker_stop_every: tuple[float, float]
    junk_every: tuple[float, float]
    seed: int
    workdir: Path | None


@dataclass
class Chaos:
    """What happened when (monotonic seconds), for the report and the wait computation."""

    consumer_kills: int = 0
    broker_stops: int = 0
    live_starts: list[float] = field(default_factory=list)  # wall times the broker came up
    junk_published: int = 0
    seen_at: dict[str, float] = field(default_factory=dict)  # message id -> wall time seen


def _now() -> float:
    return time.time()


class Peers:
    """The broker and consumer processes, restartable on the same port / store."""

    def __init__(self, workdir: Path, chaos: Chaos) -> None:
        self.workdir = workdir
        self.chaos = chaos
        self.broker_dir = workdir / "broker"
        self.broker_dir.mkdir()
        self.port = launcher.free_tcp_port()
        config = self.broker_dir / "mosquitto.conf"
        config.write_text(
            launcher.config_text(self.port, self.broker_dir, persistence=True), encoding="utf-8"
        )
        launcher.hand_to_mosquitto_user(self.broker_dir)
        self.broker_config = config
        self.broker: subprocess.Popen[bytes] | None = None
        self.consumer: subprocess.Popen[bytes] | None = None
        self.store = workdir / "consumer.db"

    def start_broker(self) -> None:
        binary = launcher.mosquitto_path()
        if binary is None:
            raise SystemExit(launcher.INSTALL_HINT)
        self.broker = launcher.spawn_mosquitto(
            binary, self.broker_config, self.broker_dir / "mosquitto.log"
        )
        if not launcher.wait_for_broker(self.broker, self.port, 20):
            raise SystemExit("mosquitto did not start")
        self.chaos.live_starts.append(_now())

    def stop_broker(self) -> None:
        processes.stop(self.broker, grace=20)
        self.broker = None

    def subscriptions(self) -> int:
        log = self.workdir / "consumer.log"
        return log.read_bytes().count(b'"ingest.subscribed"') if log.exists() else 0

    def start_consumer(self, *, wait: bool = False) -> None:
        before = self.subscriptions()
        command = [sys.executable, "-m", "agent.cli", "ingest", "--broker", "127.0.0.1"]
        command += ["--port", str(self.port), "--no-tls", "--topic-prefix", PREFIX]
        command += ["--group", "", "--client-id", CONSUMER_ID]
        command += ["--keys-dir", str(self.workdir / "keys"), "--store", f"sqlite:///{self.store}"]
        command += ["--log-level", "info"]
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
        with (self.workdir / "consumer.log").open("ab") as log:
            self.consumer = subprocess.Popen(
                command, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + 120
        while wait and self.subscriptions() == before:
            if time.monotonic() > deadline or self.consumer.poll() is not None:
                raise SystemExit("the consumer did not subscribe; see consumer.log")
            time.sleep(0.2)

    def kill_consumer(self) -> None:
        if self.consumer is not None and self.consumer.poll() is None:
            self.consumer.send_signal(signal.SIGKILL)
            self.consumer.wait()
        self.consumer = None

    def stop_all(self) -> None:
        if self.consumer is not None and self.consumer.poll() is None:
            self.consumer.send_signal(signal.SIGTERM)
            try:
                self.consumer.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.consumer.kill()
                self.consumer.wait()
        self.stop_broker()


def message_id_of(payload: bytes) -> str | None:
    """The envelope's message id, read without verifying (the witness only times it)."""
    parts = payload.split(b".")
    if len(parts) != 3:
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode(parts[1] + b"=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    value = body.get("message_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


async def witness(port: int, chaos: Chaos, stop: asyncio.Event) -> None:
    """A persistent QoS 1 subscriber noting when each envelope was first at the broker."""
    while not stop.is_set():
        try:
            async with aiomqtt.Client(
                "127.0.0.1", port, identifier="chaos-witness", clean_session=False
            ) as client:
                await client.subscribe(f"{PREFIX}/+/+/reads", qos=1)
                await client.subscribe(f"{PREFIX}/+/+/events", qos=1)
                async for message in client.messages:  # the only reader: nothing is cancelled
                    payload = message.payload
                    if isinstance(payload, bytes):
                        mid = message_id_of(payload)
                        if mid is not None:
                            chaos.seen_at.setdefault(mid, _now())
        except aiomqtt.MqttError:
            await asyncio.sleep(0.5)


async def junk(port: int, chaos: Chaos, options: Options, rng: random.Random) -> None:
    topic = f"{PREFIX}/{SITE}/junk-agent/reads"
    while True:
        try:
            async with aiomqtt.Client("127.0.0.1", port) as client:
                while True:
                    await asyncio.sleep(rng.uniform(*options.junk_every))
                    await client.publish(topic, f"junk {chaos.junk_published}".encode(), qos=1)
                    chaos.junk_published += 1
        except aiomqtt.MqttError:
            await asyncio.sleep(0.5)


async def chaos_loop(
    peers: Peers, options: Options, rng: random.Random, stop: asyncio.Event
) -> None:
    loop = asyncio.get_running_loop()
    next_kill = loop.time() + rng.uniform(*options.consumer_kill_every)
    next_stop = loop.time() + rng.uniform(*options.broker_stop_every)
    while not stop.is_set():
        await asyncio.sleep(0.2)
        now = loop.time()
        if now >= next_kill:
            peers.kill_consumer()
            peers.chaos.consumer_kills += 1
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            peers.start_consumer()
            next_kill = loop.time() + rng.uniform(*options.consumer_kill_every)
        if now >= next_stop:
            peers.stop_broker()
            peers.chaos.broker_stops += 1
            await asyncio.sleep(rng.uniform(1.0, 8.0))
            peers.start_broker()
            next_stop = loop.time() + rng.uniform(*options.broker_stop_every)


def daemon_config(
    targets: list[str], snmp_port: int, broker_port: int, options: Options
) -> dict[str, Any]:
    return {
        "agent_id": AGENT_ID,
        "site": SITE,
        "state_dir": "state",
        "log_level": "info",
        "snmp": {
            "port": snmp_port,
            "timeout": 2,
            "retries": 1,
            "credentials": [{"name": "public-v2c", "version": "v2c", "community": "public"}],
        },
        "discovery": {"targets": targets},
        "schedule": {
            "discovery": "1d",
            "meters": options.meters,
            "supplies": "1d",
            "jitter": 0,
            "misfire_grace": "5m",
        },
        "upload": {
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker_port,
                "tls": False,
                "topic_prefix": PREFIX,
                "backoff_min": 0.2,
                "backoff_max": 3,
            }
        },
        "http": {"enabled": False},
    }


async def drain_outbox(workdir: Path, key: AgentKey, port: int) -> tuple[int, int]:
    """After the daemon stopped: publish what its outbox still holds. (chain sequence, drained)"""
    outbox = Outbox(workdir / "state" / "outbox.db", Signer(key, AGENT_ID))
    try:
        left = outbox.depth()
        settings = MqttSettings(
            host="127.0.0.1", port=port, tls=False, topic_prefix=PREFIX, site=SITE
        )
        publisher = MqttPublisher(settings, agent_id=AGENT_ID, outbox=outbox)
        stop = asyncio.Event()
        task = asyncio.create_task(publisher.run(stop))
        deadline = time.monotonic() + 120
        while outbox.depth() and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a file
            await asyncio.sleep(0.2)
        stop.set()
        await bounded("the drain publisher", [task], 30)
    finally:
        outbox.close()
    with sqlite3.connect(workdir / "state" / "outbox.db") as db:
        row = db.execute("SELECT sequence FROM chain").fetchone()
    sequence = int(row[0]) if row else 0  # nothing signed yet (a very short run)
    return sequence, left


def note(text: str) -> None:
    """A teardown step on stderr with the wall time (where a run waits, if it ever does)."""
    print(f"{datetime.now().isoformat(timespec='seconds')} chaos_soak: {text}", file=sys.stderr)


async def bounded(what: str, tasks: list[asyncio.Task[Any]], within: float) -> None:
    """Wait up to ``within`` s for ``tasks``; cancel and name the ones still running.

    An aiomqtt client cancelled mid-session waits in its ``__aexit__`` for the
    broker to close the connection, without a timeout; after a broker restart
    paho can lose the socket under it (``add_writer``: "Bad file descriptor")
    and that wait never ends. A plain ``gather`` of the cancelled witness or
    junk publisher then held the whole run in its teardown.
    """
    _done, pending = await asyncio.wait(tasks, timeout=within)
    for task in pending:
        task.cancel()
        note(f"{what}: {task.get_name()} still running after {within:.0f} s; cancelled")
    if pending:
        await asyncio.wait(pending, timeout=5)


def consumer_state(store: Path) -> dict[str, Any]:
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT sequence, message_id, received_at FROM messages WHERE agent_id = ?", (AGENT_ID,)
        ).fetchall()
        rejections = dict(db.execute("SELECT reason, count FROM rejections").fetchall())
    return {"rows": rows, "rejections": rejections}


def subscribed_times(log: Path) -> list[float]:
    """Wall times the consumer (re)subscribed, from its JSON log lines."""
    times = []
    for line in log.read_text(errors="replace").splitlines():
        if '"ingest.subscribed"' in line:
            with contextlib.suppress(ValueError, KeyError):
                stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
                times.append(datetime.fromisoformat(stamp).timestamp())
    return times


def live_waits(
    rows: list[tuple[int, str, str]], chaos: Chaos, subscribed: list[float]
) -> list[tuple[float, int, float, float, float]]:
    """(wait, sequence, seen, live_from, stored_at) per stored message, longest first."""
    starts = sorted([*chaos.live_starts, *subscribed])
    waits = []
    for sequence, mid, received in rows:
        seen = chaos.seen_at.get(mid)
        if seen is None:
            continue
        stored_at = datetime.fromisoformat(received).timestamp()
        index = bisect.bisect_right(starts, stored_at) - 1
        live_from = max(seen, starts[index] if index >= 0 else seen)
        waits.append((max(0.0, stored_at - live_from), sequence, seen, live_from, stored_at))
    return sorted(waits, reverse=True)


async def wait_stored(store: Path, count: int, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if store.exists():  # noqa: ASYNC240 - a bench, nothing else runs meanwhile
            with sqlite3.connect(store) as db:
                have = db.execute(
                    "SELECT count(*) FROM messages WHERE agent_id = ?", (AGENT_ID,)
                ).fetchone()[0]
            if have >= count:
                return
        await asyncio.sleep(0.5)


async def run(options: Options) -> dict[str, Any]:
    rng = random.Random(options.seed)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="chaos-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # Mosquitto drops root: it must reach its persistence directory under here, or it
    # cannot save its sessions at a stop and every restart loses what it queued.
    workdir.chmod(workdir.stat().st_mode | 0o005)  # mkdtemp makes it 0700
    closed = [d for d in workdir.resolve().parents if not d.stat().st_mode & 0o001]
    if closed:
        raise SystemExit(f"mosquitto could not reach {workdir}: {closed[0]} is not o+x")
    chaos = Chaos()
    specs = synthetic_fleet(options.devices)
    addresses = fleet_addresses(options.devices, options.base)
    recordings = write_recordings(specs, workdir / "recordings")
    responders = start_responders(list(zip(addresses, recordings, strict=True)))
    key = AgentKey.generate()
    (workdir / "state").mkdir()
    key.save(key_path(workdir / "state"))
    (workdir / "keys").mkdir()
    (workdir / "keys" / "agent.jwk").write_text(json.dumps(key.public_jwk()))
    peers = Peers(workdir, chaos)
    peers.start_broker()
    peers.start_consumer(wait=True)  # its persistent session exists before anything is sent
    config = workdir / "agent.yaml"
    config.write_text(
        yaml.safe_dump(
            daemon_config(target_ranges(addresses), responders.port, peers.port, options)
        )
    )
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    with (workdir / "daemon.log").open("wb") as out:
        daemon = subprocess.Popen(  # noqa: ASYNC220 - only forks; waited for by polling
            [sys.executable, "-m", "agent.cli", "run", "--config", str(config)],
            cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    stop = asyncio.Event()
    started = time.monotonic()
    tasks = [
        asyncio.create_task(witness(peers.port, chaos, stop), name="witness"),
        asyncio.create_task(junk(peers.port, chaos, options, rng), name="junk"),
        asyncio.create_task(chaos_loop(peers, options, rng, stop), name="chaos"),
    ]
    daemon_exits = 0
    loads: list[float] = []
    summary: dict[str, Any] = {}
    try:
        while time.monotonic() - started < options.duration:
            await asyncio.sleep(1)
            if int(time.monotonic() - started) % 30 == 0:
                loads.append(os.getloadavg()[0])
            if daemon.poll() is not None:
                daemon_exits += 1
                break
        note("duration over: chaos stops")
        stop.set()
        await bounded("the chaos loop", tasks[2:], 60)
        if peers.broker is None:
            peers.start_broker()
        if peers.consumer is None or peers.consumer.poll() is not None:
            peers.start_consumer()
        daemon.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        daemon.wait(timeout=120)
        note(f"daemon stopped in {time.monotonic() - stopping:.1f} s, exit {daemon.returncode}")
        sequence, left = await drain_outbox(workdir, key, peers.port)
        note(f"outbox drained: chain at {sequence}, {left} were left")
        await wait_stored(peers.store, sequence, within=120)
        await asyncio.sleep(3)  # junk and redeliveries still in flight
        # Counted now, with every peer still up: nothing after this can lose the result.
        summary = summarize(workdir, peers.store, chaos, sequence, left)
        summary.update(
            duration_s=options.duration,
            devices=options.devices,
            daemon_exited_early=bool(daemon_exits),
            load_1min={
                "min": min(loads, default=0.0),
                "mean": round(sum(loads) / len(loads), 1) if loads else 0.0,
                "max": max(loads, default=0.0),
            },
            machine=f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs",
            workdir=str(workdir),
        )
        (workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        note("summary written; tearing down")
    finally:
        for task in tasks:
            task.cancel()
        await bounded("teardown", tasks, 20)
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        peers.stop_all()
        responders.stop()
        note("teardown done")
    return summary


def summarize(workdir: Path, store: Path, chaos: Chaos, sequence: int, left: int) -> dict[str, Any]:
    """The store against the agent's chain, and the waits for a live consumer."""
    state = consumer_state(store)
    rows = state["rows"]
    sequences = [row[0] for row in rows]
    stored = set(sequences)
    lost = sorted(set(range(1, sequence + 1)) - stored)
    subscribed = subscribed_times(workdir / "consumer.log")
    waits = live_waits(rows, chaos, subscribed)
    (workdir / "waits.json").write_text(
        json.dumps(
            {
                "waits": waits[:200],
                "broker_starts": chaos.live_starts,
                "subscribed": subscribed,
            }
        )
    )
    return {
        "signed": sequence,
        "left_in_outbox_at_stop": left,
        "stored": len(stored),
        "lost": len(lost),
        "lost_sequences": lost[:20],
        "stored_twice": len(sequences) - len(stored),
        "redeliveries_dropped": state["rejections"].get("duplicate", 0),
        "junk_published": chaos.junk_published,
        "junk_rejected": state["rejections"].get("malformed", 0),
        "consumer_kills": chaos.consumer_kills,
        "broker_stops": chaos.broker_stops,
        "longest_live_wait_s": round(waits[0][0], 2) if waits else 0.0,
        "messages_waiting_over_10s": sum(wait[0] > 10 for wait in waits),
        "witnessed": len(chaos.seen_at),
    }


def parse_args(argv: list[str] | None = None) -> tuple[Options, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=1800.0)
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--base", default="127.77.0.0")
    parser.add_argument("--meters", default="20s", help="meter read interval of the agent")
    parser.add_argument("--consumer-kill-every", type=float, nargs=2, default=(30.0, 120.0))
    parser.add_argument("--broker-stop-every", type=float, nargs=2, default=(90.0, 240.0))
    parser.add_argument("--junk-every", type=float, nargs=2, default=(0.3, 1.5))
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", type=Path, help="write the summary here")
    args = parser.parse_args(argv)
    options = Options(
        duration=args.duration,
        devices=args.devices,
        base=args.base,
        meters=args.meters,
        consumer_kill_every=tuple(args.consumer_kill_every),
        broker_stop_every=tuple(args.broker_stop_every),
        junk_every=tuple(args.junk_every),
        seed=args.seed,
        workdir=args.workdir,
    )
    return options, args.json


def main(argv: list[str] | None = None) -> int:
    options, json_path = parse_args(argv)
    summary = asyncio.run(run(options))
    text = json.dumps(summary, indent=2)
    print(text)
    if json_path is not None:
        json_path.write_text(text + "\n")
    ok = (
        summary["lost"] == 0
        and summary["stored_twice"] == 0
        and summary["messages_waiting_over_10s"] == 0
        and not summary["daemon_exited_early"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
