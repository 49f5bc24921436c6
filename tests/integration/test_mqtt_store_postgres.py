"""The consumer's PostgreSQL store: same verdicts as SQLite, shared by two consumers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from backend.consume import run_ingest
from backend.ingest import Ingestor
from backend.store import PostgresStore, open_store
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_consumer import eventually, start_agent, unique_prefix
from uploader.config import MqttSettings
from uploader.envelope import Signer, envelope_hash
from uploader.keys import AgentKey, RegisteredKey

pytestmark = pytest.mark.integration


def test_verdicts_and_state_on_postgresql(postgres_dsn: str) -> None:
    key = AgentKey.generate()
    store = open_store(postgres_dsn)
    assert isinstance(store, PostgresStore)
    ingestor = Ingestor(store, topic_prefix="pg", file_keys=[RegisteredKey.of(key)])
    signer = Signer(key, "agent-pg")
    tokens, prev = [], None
    for sequence in range(1, 6):
        message = signer.sign(
            kind="read", body={"pages": sequence}, sequence=sequence, prev_hash=prev
        )
        prev = envelope_hash(message.token)
        tokens.append(message.token.encode())
    topic = "pg/site/agent-pg/reads"
    outcomes = ingestor.handle_batch([(topic, tokens[i]) for i in (0, 1, 4, 1)])
    assert [o.kind for o in outcomes] == ["stored", "stored", "stored", "duplicate"]
    assert store.missing("agent-pg") == [3, 4]
    tampered = tokens[2].replace(b".", b".x", 1)
    assert ingestor.handle(topic, tampered).kind == "rejected"
    ingestor.handle_batch([(topic, tokens[3]), (topic, tokens[2])])
    summary = ingestor.summary()
    assert (summary.stored, summary.duplicates, summary.gaps_detected, summary.gaps_open) == (
        5,
        1,
        2,
        0,
    )
    assert sorted(store.sequences("agent-pg")) == [1, 2, 3, 4, 5]
    pages = store.execute("SELECT (body->>'pages')::int FROM messages ORDER BY sequence").fetchall()
    assert [row[0] for row in pages] == [1, 2, 3, 4, 5]
    assert set(store.rejections()) == {"duplicate", "malformed"}
    store.close()


async def test_two_consumers_share_one_postgresql_store(
    mosquitto: Mosquitto, postgres_dsn: str, tmp_path: Path
) -> None:
    settings = MqttSettings(
        host=mosquitto.host, port=mosquitto.port, tls=False, topic_prefix=unique_prefix("pg")
    )
    keys = [AgentKey.generate() for _ in range(3)]  # one key per agent id
    stores = [open_store(postgres_dsn), open_store(postgres_dsn)]
    file_keys = [RegisteredKey.of(key, f"agent-{n}") for n, key in enumerate(keys)]
    ingestors = [
        Ingestor(s, topic_prefix=settings.topic_prefix, file_keys=file_keys) for s in stores
    ]
    stop = asyncio.Event()
    ready = [asyncio.Event(), asyncio.Event()]
    tasks = [
        asyncio.create_task(
            run_ingest(settings, ing, group="pg", client_id=f"pg-{i}", stop=stop, subscribed=ev)
        )
        for i, (ing, ev) in enumerate(zip(ingestors, ready, strict=True))
    ]
    await asyncio.wait_for(asyncio.gather(*(ev.wait() for ev in ready)), timeout=20)
    agents = [
        start_agent(settings, keys[n], f"agent-{n}", tmp_path / f"outbox-{n}.db") for n in range(3)
    ]
    for _ in range(5):
        for agent in agents:
            agent.submit(40)
        await asyncio.sleep(0.05)
    await eventually(lambda: sum(i.stored for i in ingestors) >= 600, what="600 stored")
    for agent in agents:
        await agent.finish()
    stop.set()
    summaries = await asyncio.gather(*tasks)
    assert all(s.stored > 0 for s in summaries)
    assert sum(s.stored for s in summaries) == 600
    assert sum(s.duplicates for s in summaries) == 0
    for n in range(3):
        assert sorted(stores[0].sequences(f"agent-{n}")) == list(range(1, 201))
    states = stores[0].agent_states()
    assert [(s.last_sequence, s.gaps) for s in states] == [(200, 0)] * 3
    for store in stores:
        store.close()
