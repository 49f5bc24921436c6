"""Tampered, replayed and foreign envelopes through a real broker into ``fleet-agent ingest``.

The consumer here is the real CLI in its own process (``python -m agent.cli
ingest --count N --format json``); the attacker publishes raw payloads with a
plain MQTT client. Each bad payload is rejected with its reason and nothing of
it is stored.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import aiomqtt
import pytest

from backend.store import open_store
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_consumer import eventually, register_key, start_consumer, unique_prefix
from uploader.config import MqttSettings
from uploader.envelope import Signer, envelope_hash
from uploader.keys import AgentKey

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def flip_one_byte(token: str) -> bytes:
    raw = bytearray(token.encode())
    header, payload, _ = token.split(".")
    index = len(header) + 1 + len(payload) // 2
    raw[index] = ord("B") if raw[index] == ord("A") else ord("A")
    return bytes(raw)


async def test_tampering_replay_and_unknown_keys_are_rejected_by_reason(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    prefix = unique_prefix("tamper")
    key, stranger = AgentKey.generate(), AgentKey.generate()
    keys_dir = tmp_path / "keys"
    register_key(keys_dir, key)
    db = tmp_path / "ingest.db"
    signer = Signer(key, "agent-t")
    first = signer.sign(kind="read", body={"pages": 1}, sequence=1, prev_hash=None)
    second = signer.sign(
        kind="read", body={"pages": 2}, sequence=2, prev_hash=envelope_hash(first.token)
    )
    reused_sequence = signer.sign(
        kind="read", body={"pages": 999}, sequence=1, prev_hash=None, message_id=None
    )
    foreign = Signer(stranger, "agent-t").sign(
        kind="read", body={"pages": 3}, sequence=3, prev_hash=envelope_hash(second.token)
    )
    payloads = [
        first.token.encode(),  # stored
        second.token.encode(),  # stored
        flip_one_byte(second.token),  # bad_signature
        first.token.encode(),  # the old envelope again: duplicate, not stored twice
        reused_sequence.token.encode(),  # sequence 1 re-used: a restart, see below
        foreign.token.encode(),  # unknown_key
        b'{"sequence": 4, "agent_id": "agent-t"}',  # malformed
    ]

    consumer = await asyncio.create_subprocess_exec(
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
        prefix,
        "--keys-dir",
        str(keys_dir),
        "--store",
        f"sqlite:///{db}",
        "--count",
        str(len(payloads)),
        "--duration",
        "60",
        "--format",
        "json",
        "--log-level",
        "info",
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert consumer.stderr is not None
    log_lines: list[str] = []
    while True:
        line = (await asyncio.wait_for(consumer.stderr.readline(), timeout=90)).decode()
        assert line, "consumer exited before subscribing:\n" + "".join(log_lines)
        log_lines.append(line)
        if "ingest.subscribed" in line:
            break

    topic = f"{prefix}/site-x/agent-t/reads"
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as attacker:
        for payload in payloads:
            await attacker.publish(topic, payload, qos=1)
    stdout, stderr = await asyncio.wait_for(consumer.communicate(), timeout=30)
    assert consumer.returncode == 0, stderr.decode()
    summary = json.loads(stdout)
    log_text = "".join(log_lines) + stderr.decode()

    assert summary["received"] == len(payloads)
    assert summary["rejected"] == {"bad_signature": 1, "malformed": 1, "unknown_key": 1}
    assert summary["duplicates"] == 1
    assert summary["restarts"] == 1  # a validly signed sequence 1 again means a lost outbox
    for reason in ("bad_signature", "unknown_key", "malformed"):
        assert f'"reason": "{reason}"' in log_text
    store = open_store(f"sqlite:///{db}")
    try:
        bodies = [
            json.loads(row[0])["pages"]
            for row in store.execute("SELECT body FROM messages ORDER BY received_at").fetchall()
        ]
        assert bodies == [1, 2, 999]
        assert store.rejections() == {
            "bad_signature": 1,
            "duplicate": 1,
            "malformed": 1,
            "unknown_key": 1,
        }
    finally:
        store.close()


async def test_a_replayed_sequence_with_new_content_is_rejected(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """An envelope re-using sequence 2 of 3 (not a gap, not a restart) is a replay."""
    settings = MqttSettings(
        host="127.0.0.1", port=mosquitto.port, tls=False, topic_prefix=unique_prefix("replay")
    )
    key = AgentKey.generate()
    consumer = await start_consumer(settings, [key], tmp_path / "ingest.db")
    signer = Signer(key, "agent-r")
    chain, prev = [], None
    for sequence in (1, 2, 3):
        message = signer.sign(kind="read", body={"n": sequence}, sequence=sequence, prev_hash=prev)
        prev = envelope_hash(message.token)
        chain.append(message)
    replay = signer.sign(
        kind="read", body={"n": 20}, sequence=2, prev_hash=envelope_hash(chain[0].token)
    )
    topic = settings.agent_topic("agent-r", "read")
    async with aiomqtt.Client("127.0.0.1", mosquitto.port) as client:
        for message in [*chain, replay, chain[2]]:
            await client.publish(topic, message.token.encode(), qos=1)
    await eventually(lambda: consumer.ingestor.processed >= 5, what="5 messages")
    summary = await consumer.finish()
    assert summary.rejected == {"replay": 1}
    assert summary.duplicates == 1
    assert consumer.store.sequences("agent-r") == [1, 2, 3]
    consumer.store.close()
