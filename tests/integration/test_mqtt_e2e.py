"""Outbox -> MqttPublisher -> Mosquitto -> reference consumer, against a real broker.

Each test starts Debian mosquitto on 127.0.0.1 with a free port and uses a
unique topic prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path

import aiomqtt
import pytest

from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_consumer import (
    eventually,
    start_agent,
    start_consumer,
    unique_prefix,
)
from uploader.config import MqttSettings
from uploader.envelope import Verifier
from uploader.keys import AgentKey

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def plain_settings(broker: Mosquitto, **overrides: object) -> MqttSettings:
    values: dict[str, object] = {
        "host": broker.host,
        "port": broker.port,
        "tls": False,
        "topic_prefix": unique_prefix(),
        "site": "site-a",
        "backoff_min": 0.05,
        "backoff_max": 0.5,
        "connect_timeout": 3,
        "ack_timeout": 5,
    }
    values.update(overrides)
    return MqttSettings.model_validate(values)


async def retained_presence(settings: MqttSettings, agent_id: str) -> bytes:
    async with aiomqtt.Client(settings.host, settings.effective_port) as client:
        await client.subscribe(settings.presence_topic(agent_id), qos=1)
        message = await asyncio.wait_for(anext(client.messages), timeout=5)
        assert message.retain
        return bytes(message.payload)  # type: ignore[arg-type]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_every_submitted_read_is_stored_once_verified_in_order(
    mosquitto: Mosquitto, tmp_path: Path, protocol: str
) -> None:
    settings = plain_settings(mosquitto, protocol=protocol, max_inflight=50)
    key = AgentKey.generate()
    consumer = await start_consumer(settings, [key], tmp_path / "ingest.db")
    agent = start_agent(settings, key, "agent-e2e", tmp_path / "outbox.db")
    n = 600
    for _ in range(n // 50):
        agent.submit(50)
        await asyncio.sleep(0.01)
    await consumer.wait_stored(n)
    await eventually(lambda: agent.outbox.depth() == 0, what="an empty outbox")
    assert await retained_presence(settings, "agent-e2e") == b"online"
    assert agent.publisher.connected
    assert agent.publisher.published == n
    assert agent.publisher.last_ack_at is not None
    await agent.finish()
    assert not agent.publisher.connected
    assert await retained_presence(settings, "agent-e2e") == b"offline"
    summary = await consumer.finish()

    assert summary.stored == n
    assert summary.duplicates == 0
    assert summary.rejected == {}
    assert (summary.gaps_detected, summary.gaps_open, summary.chain_breaks) == (0, 0, 0)
    assert consumer.store.sequences("agent-e2e") == list(range(1, n + 1))
    verifier = Verifier({key.key_id: key.jose_key})
    envelopes = [verifier.verify(token) for token in consumer.store.tokens("agent-e2e")]
    assert [e.body["page_count"] for e in envelopes] == [1000 + i for i in range(n)]
    consumer.store.close()


async def test_shared_subscription_splits_the_load(mosquitto: Mosquitto, tmp_path: Path) -> None:
    # A PUBACK slower than ack_timeout (a loaded machine) makes the agent reconnect and send
    # again, which the consumers rightly count as duplicates; this test is about the split.
    settings = plain_settings(mosquitto, ack_timeout=30)
    key = AgentKey.generate()
    db = tmp_path / "shared.db"
    first = await start_consumer(settings, [key], db, group="split")
    second = await start_consumer(settings, [key], db, group="split")
    agent = start_agent(settings, key, "agent-split", tmp_path / "outbox.db")
    agent.submit(400)
    await eventually(
        lambda: first.ingestor.stored + second.ingestor.stored >= 400, what="400 stored"
    )
    await agent.finish()
    one, two = await first.finish(), await second.finish()
    assert one.stored > 0
    assert two.stored > 0
    assert one.stored + two.stored == 400
    assert sorted(first.store.sequences("agent-split")) == list(range(1, 401))
    assert one.duplicates + two.duplicates == 0
    first.store.close()
    second.store.close()


async def test_reads_queue_on_disk_while_the_broker_is_down(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = plain_settings(mosquitto)
    key = AgentKey.generate()
    # Mosquitto 2.0 keeps a plain persistent subscription across its restart but
    # not a shared one ($share/...): the outage test uses the plain kind.
    consumer = await start_consumer(
        settings, [key], tmp_path / "ingest.db", group=None, client_id="c-outage"
    )
    agent = start_agent(settings, key, "agent-outage", tmp_path / "outbox.db")
    agent.submit(100)
    await consumer.wait_stored(100)
    await eventually(lambda: agent.outbox.depth() == 0, what="the first 100 acknowledged")

    mosquitto.stop()
    await eventually(lambda: not agent.publisher.connected, what="the publisher to notice")
    for _ in range(10):
        agent.submit(20)
        await asyncio.sleep(0.05)
    assert agent.outbox.depth() == 200  # on disk, waiting
    await asyncio.sleep(1.0)  # a few reconnect attempts fail meanwhile
    assert agent.publisher.last_error is not None
    assert "connection refused" in agent.publisher.last_error

    mosquitto.start()
    agent.submit(100)
    await consumer.wait_stored(400)
    await eventually(lambda: agent.outbox.depth() == 0, what="an empty outbox")
    await agent.finish()
    summary = await consumer.finish()
    assert agent.publisher.reconnects >= 1
    # The agent publishes oldest first, but Mosquitto may hand a reconnecting session
    # new messages before the rest of what it queued beyond its in-flight window, so
    # arrival order is not guaranteed: the consumer restores order by sequence and
    # checks every late message against the hash chain.
    stored = consumer.store.sequences("agent-outage")
    assert len(stored) == 400
    assert sorted(stored) == list(range(1, 401))
    assert stored[:100] == list(range(1, 101))  # before the outage: arrival order
    assert (summary.gaps_open, summary.chain_breaks, summary.rejected) == (0, 0, {})
    consumer.store.close()


def _outbox_state(path: Path) -> tuple[int, int]:
    """(last sequence ever submitted, messages still waiting), read once no process owns it.

    The agent opens its outbox with exclusive locking, so the test reads it only between
    the agent's runs, and closes its own connection before the next run starts.
    """
    with contextlib.closing(sqlite3.connect(path)) as db:
        row = db.execute("SELECT sequence FROM chain WHERE id = 1").fetchone()
        depth = db.execute("SELECT count(*) FROM messages").fetchone()[0]
    return (int(row[0]) if row else 0), int(depth)


async def _began_submitting(stream: asyncio.StreamReader) -> None:
    """Until the agent prints its first ``submitted N`` (its log lines come before it)."""
    while not (line := await stream.readline()).startswith(b"submitted"):
        assert line, "the agent ended before it submitted anything"


async def test_kill_9_of_the_agent_loses_nothing(mosquitto: Mosquitto, tmp_path: Path) -> None:
    settings = plain_settings(mosquitto)
    key = AgentKey.generate()
    key_file = tmp_path / "agent.key"
    key.save(key_file)
    outbox = tmp_path / "outbox.db"
    consumer = await start_consumer(settings, [key], tmp_path / "ingest.db")
    command = [
        sys.executable,
        "-m",
        "tests.support._publish_agent",
        "--outbox",
        str(outbox),
        "--key",
        str(key_file),
        "--agent-id",
        "agent-kill",
        "--port",
        str(mosquitto.port),
        "--prefix",
        settings.topic_prefix,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(20261122)
    killed_while_pending = 0
    for _ in range(6):
        process = await asyncio.create_subprocess_exec(
            *command,
            "--submit",
            "400",
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            # Kill at a random point of this round's work: first wait until it says it has
            # begun submitting (interpreter start-up alone can outlast a fixed sleep on a
            # loaded machine, or a fast one can finish first), then let it run a random
            # moment more. Its progress lines are drained meanwhile so the pipe never fills.
            assert process.stdout is not None
            await asyncio.wait_for(_began_submitting(process.stdout), timeout=30)
            drain = asyncio.create_task(process.stdout.read())
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            alive = process.returncode is None
            if alive:
                process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(process.wait(), timeout=10)
            await drain
            if alive and _outbox_state(outbox)[1] > 0:
                killed_while_pending += 1
        finally:
            if process.returncode is None:  # a failed wait above: leave no agent behind
                process.kill()
    assert killed_while_pending >= 1, "no kill landed while messages were waiting"

    final = await asyncio.create_subprocess_exec(
        *command, "--submit", "0", cwd=REPO, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(final.communicate(), timeout=60)
    assert final.returncode == 0, stderr.decode()
    last_sequence, depth = _outbox_state(outbox)
    assert depth == 0
    assert last_sequence > 0
    await consumer.wait_stored(last_sequence)
    summary = await consumer.finish()
    stored = consumer.store.sequences("agent-kill")
    assert sorted(stored) == list(range(1, last_sequence + 1))  # nothing lost, none twice
    assert summary.stored == last_sequence
    assert (summary.gaps_open, summary.rejected) == (0, {})
    consumer.store.close()


async def test_kill_9_of_the_consumer_loses_nothing(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Acks go to the broker only after the store committed: a killed consumer gets them again."""
    settings = plain_settings(mosquitto)
    key = AgentKey.generate()
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / "agent.jwk").write_text(json.dumps(key.public_jwk()))
    db = tmp_path / "ingest.db"
    command = [
        sys.executable,
        "-m",
        "agent.cli",
        "ingest",
        "--broker",
        "127.0.0.1",
        "--port",
        str(mosquitto.port),
        "--no-tls",
        "--topic-prefix",
        settings.topic_prefix,
        "--group",
        "",
        "--client-id",
        "consumer-kill",
        "--keys-dir",
        str(keys_dir),
        "--store",
        f"sqlite:///{db}",
        "--log-level",
        "info",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    drains: list[asyncio.Future[None]] = []

    async def _drain(stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass

    async def start_cli(*extra: str) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *command,
            *extra,
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        seen: list[bytes] = []
        while True:
            line = await asyncio.wait_for(process.stderr.readline(), timeout=90)
            seen.append(line)
            assert line, "the consumer exited before subscribing:\n" + b"".join(seen).decode()
            if b"ingest.subscribed" in line:
                return process

    def stored() -> int:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])

    first = await start_cli()
    assert first.stderr is not None
    # Keep reading its log: a full pipe would block the consumer, not the kill, mid-drain.
    drains.append(asyncio.ensure_future(_drain(first.stderr)))
    agent = start_agent(settings, key, "agent-ck", tmp_path / "outbox.db")
    n = 3000
    for _ in range(n // 100):
        agent.submit(100)
        await asyncio.sleep(0.01)
    await eventually(lambda: stored() >= 300, what="the consumer to be busy")
    first.send_signal(signal.SIGKILL)
    await first.wait()
    at_kill = stored()
    assert at_kill < n, "the consumer finished before the kill"
    await eventually(lambda: agent.outbox.depth() == 0, what="the agent to publish all")
    await agent.finish()

    second = await start_cli("--once")
    stdout, stderr = await asyncio.wait_for(second.communicate(), timeout=120)
    assert second.returncode == 0, stderr.decode()
    with sqlite3.connect(db) as conn:
        sequences = [r[0] for r in conn.execute("SELECT sequence FROM messages ORDER BY sequence")]
        gaps = conn.execute("SELECT coalesce(sum(gaps), 0) FROM agent_state").fetchone()[0]
    assert sequences == list(range(1, n + 1))  # nothing lost, nothing stored twice
    assert gaps == 0
    assert b"stored" in stdout
