"""The consumer's stall watchdog against a real Mosquitto.

The consumer talks to the broker through a proxy that, on demand, stops
delivering PUBLISH packets on the consumer's connection while letting everything
else through: the broker acknowledges the consumer's heartbeats and holds the
agent's reads in flight for it, and none reaches the consumer, which is how the
lost receive of issue #10 left it. The watchdog must say so (error log,
``stalled`` health, a stall counted), drop the session and connect again, and
then every read the agent published must be stored exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from backend.consume import ConsumerHealth, Watch, run_ingest
from backend.ingest import Ingestor
from backend.store import open_store
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_blackhole import PublishBlackHole
from tests.support.mqtt_consumer import eventually, start_agent, unique_prefix
from uploader.config import MqttSettings
from uploader.keys import AgentKey, RegisteredKey

pytestmark = pytest.mark.integration


@pytest.fixture
async def black_hole(mosquitto: Mosquitto) -> AsyncIterator[PublishBlackHole]:
    proxy = PublishBlackHole(mosquitto.host, mosquitto.port)
    await proxy.start()
    yield proxy
    await proxy.close()


async def test_watchdog_recovers_a_consumer_that_stopped_receiving(
    mosquitto: Mosquitto, black_hole: PublishBlackHole, tmp_path: Path
) -> None:
    prefix = unique_prefix("watchdog")
    broker = MqttSettings(
        host=mosquitto.host, port=mosquitto.port, tls=False, topic_prefix=prefix,
        backoff_min=0.05, backoff_max=0.5, connect_timeout=3,
    )  # fmt: skip
    via_proxy = broker.model_copy(update={"port": black_hole.port})
    key = AgentKey.generate()
    store = open_store(f"sqlite:///{tmp_path / 'ingest.db'}")
    ingestor = Ingestor(store, topic_prefix=prefix, file_keys=[RegisteredKey.of(key, "agent-wd")])
    health = ConsumerHealth()
    stop, subscribed = asyncio.Event(), asyncio.Event()
    agent = start_agent(broker, key, "agent-wd", tmp_path / "outbox.db")
    with capture_logs() as logs:
        consumer = asyncio.create_task(
            run_ingest(
                via_proxy,
                ingestor,
                group=None,
                client_id="consumer-wd",
                stop=stop,
                subscribed=subscribed,
                health=health,
                watch=Watch(interval=0.2, stall_after=2.0),
            )
        )
        try:
            await asyncio.wait_for(subscribed.wait(), 30)
            agent.submit(5)
            await eventually(lambda: ingestor.stored == 5, what="the first 5 reads stored")
            assert health.stalls == 0

            black_hole.withhold()  # the consumer's connection now receives nothing
            agent.submit(20)
            await eventually(lambda: agent.outbox.depth() == 0, what="the broker to take all")
            await eventually(lambda: health.stalls >= 1, within=30, what="a stall declared")
            assert black_hole.dropped > 0  # reads or heartbeats really were held back

            await eventually(lambda: ingestor.stored == 25, within=30, what="all 25 stored")
            await eventually(lambda: not health.stalled, within=10, what="the stall cleared")
            assert health.status()["status"] == "ok"
        finally:
            stop.set()
            await asyncio.wait_for(consumer, 30)
            await agent.finish()
    stalled = [entry for entry in logs if entry["event"] == "ingest.stalled"]
    assert stalled
    assert stalled[0]["log_level"] == "error"
    events = [entry["event"] for entry in logs]
    assert events.index("ingest.recovered") > events.index("ingest.stalled")
    assert events.count("ingest.subscribed") >= 2  # the stall dropped the session
    sequences = sorted(store.sequences("agent-wd"))
    store.close()
    assert sequences == list(range(1, 26))  # nothing lost, nothing stored twice
