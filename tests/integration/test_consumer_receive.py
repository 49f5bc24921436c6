"""The reference consumer never loses a delivered message, against a real Mosquitto.

aiomqtt 2.5 cancelled a ``queue.get()`` that might already hold a message when
the consumer's 0.5 s receive timeout fired: the message was neither processed
nor acknowledged, and once the broker's in-flight window was full of such
messages the consumer received nothing more until it reconnected.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

import aiomqtt
import pytest

from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_consumer import eventually, start_agent, start_consumer, unique_prefix
from uploader.config import MqttSettings
from uploader.keys import AgentKey

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def settings_for(broker: Mosquitto) -> MqttSettings:
    return MqttSettings(
        host=broker.host,
        port=broker.port,
        tls=False,
        topic_prefix=unique_prefix("recv"),
        backoff_min=0.05,
        backoff_max=0.5,
        connect_timeout=3,
    )


async def test_junk_at_receive_timeout_intervals_never_stalls_the_consumer(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """Messages arriving around the old 0.5 s receive timeout: every one is processed."""
    settings = settings_for(mosquitto)
    consumer = await start_consumer(settings, [AgentKey.generate()], tmp_path / "c.db", group=None)
    topic = f"{settings.topic_prefix}/site/agent-j/reads"
    junk, probes = 150, 5
    rng = random.Random(10)
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
        for index in range(junk):
            await client.publish(topic, f"junk {index}".encode(), qos=1)
            await asyncio.sleep(rng.uniform(0.45, 0.55))
        for index in range(probes):
            await client.publish(topic, f"probe {index}".encode(), qos=1)
    await eventually(
        lambda: consumer.ingestor.processed >= junk + probes,
        within=15,
        what=f"all {junk + probes} messages processed (have {consumer.ingestor.processed})",
    )
    summary = await consumer.finish()
    consumer.store.close()
    assert summary.received == junk + probes
    assert summary.rejected == {"malformed": junk + probes}


def _ingest_command(
    settings: MqttSettings, broker: Mosquitto, keys_dir: Path, db: Path
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "agent.cli",
        "ingest",
        "--broker",
        broker.host,
        "--port",
        str(broker.port),
        "--no-tls",
        "--topic-prefix",
        settings.topic_prefix,
        "--group",
        "",
        "--client-id",
        "consumer-kill-loop",
        "--keys-dir",
        str(keys_dir),
        "--store",
        f"sqlite:///{db}",
        "--log-level",
        "info",
    ]


async def _start_cli(command: list[str]) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    seen: list[bytes] = []
    while True:
        line = await asyncio.wait_for(process.stderr.readline(), timeout=60)
        seen.append(line)
        assert line, "the consumer exited before subscribing:\n" + b"".join(seen).decode()
        if b"ingest.subscribed" in line:
            break

    async def drain_stderr() -> None:  # keep the pipe from filling up
        assert process.stderr is not None
        while await process.stderr.readline():
            pass

    asyncio.get_running_loop().create_task(drain_stderr())
    return process


async def test_consumer_killed_in_a_loop_holds_nothing_back(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """kill -9 of the consumer, again and again, during a drain with pauses around the timeout.

    After the last restart every published read is stored within seconds by the
    running consumer: none waits in the broker for the next reconnect.
    """
    settings = settings_for(mosquitto)
    key = AgentKey.generate()
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / "agent.jwk").write_text(json.dumps(key.public_jwk()))
    db = tmp_path / "ingest.db"
    command = _ingest_command(settings, mosquitto, keys_dir, db)

    def stored() -> int:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])

    consumer = await _start_cli(command)
    agent = start_agent(settings, key, "agent-kl", tmp_path / "outbox.db")
    rng = random.Random(7)
    kills = 0
    try:
        for burst in range(40):
            agent.submit(rng.choice((1, 2, 50, 100)))
            await asyncio.sleep(rng.uniform(0.4, 0.6))
            if burst % 8 == 4:
                consumer.send_signal(signal.SIGKILL)
                await consumer.wait()
                kills += 1
                consumer = await _start_cli(command)
        for _ in range(40):  # single reads around the old receive timeout, after the last restart
            agent.submit(1)
            await asyncio.sleep(rng.uniform(0.45, 0.55))
        total = len(agent.submitted)
        await eventually(lambda: agent.outbox.depth() == 0, what="the agent to publish all")
        published_at = time.monotonic()
        await eventually(
            lambda: stored() >= total, within=15, what=f"{total} stored (have {stored()})"
        )
        assert time.monotonic() - published_at < 15
    finally:
        consumer.send_signal(signal.SIGTERM)
        await asyncio.wait_for(consumer.wait(), timeout=60)
        await agent.finish()
    assert kills == 5
    with sqlite3.connect(db) as conn:
        sequences = [r[0] for r in conn.execute("SELECT sequence FROM messages ORDER BY sequence")]
    assert sequences == list(range(1, total + 1))  # nothing lost, nothing stored twice
