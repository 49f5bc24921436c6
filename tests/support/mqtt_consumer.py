"""In-process reference consumer and agent helpers for the MQTT integration tests."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backend.consume import run_ingest
from backend.ingest import Ingestor, IngestSummary
from backend.store import SqlStore, open_store
from uploader.config import MqttSettings
from uploader.envelope import Signer
from uploader.keys import AgentKey, RegisteredKey
from uploader.mqtt import MqttPublisher
from uploader.outgoing import JsonMessage
from uploader.queue import Outbox


def unique_prefix(name: str = "t") -> str:
    """A topic prefix no other test (or parallel run) uses."""
    return f"{name}-{uuid.uuid4().hex[:12]}"


async def eventually(
    predicate: Callable[[], bool], *, within: float = 30.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


def register_key(keys_dir: Path, key: AgentKey, name: str = "agent") -> None:
    keys_dir.mkdir(parents=True, exist_ok=True)
    (keys_dir / f"{name}.jwk").write_text(json.dumps(key.public_jwk()))


@dataclass
class RunningConsumer:
    ingestor: Ingestor
    store: SqlStore
    stop: asyncio.Event
    task: asyncio.Task[IngestSummary]

    async def wait_stored(self, count: int, within: float = 60.0) -> None:
        await eventually(
            lambda: self.ingestor.stored >= count or self.task.done(),
            within=within,
            what=f"{count} stored messages (have {self.ingestor.stored})",
        )
        if self.task.done():
            self.task.result()  # re-raise what ended the consumer

    async def finish(self) -> IngestSummary:
        self.stop.set()
        return await asyncio.wait_for(self.task, timeout=30)


async def start_consumer(
    settings: MqttSettings,
    keys: dict[str, AgentKey] | list[AgentKey],
    db: Path,
    *,
    group: str | None = "backend",
    client_id: str | None = None,
    backend_key: AgentKey | None = None,
) -> RunningConsumer:
    """Subscribe (shared subscription ``group``) and return once subscribed.

    ``keys`` are registered by hand: a dict binds each to its agent id, a list's keys
    are bound to the first agent id that signs with each (``docs/enrollment.md``).
    """
    file_keys = (
        [RegisteredKey.of(key, agent_id) for agent_id, key in keys.items()]
        if isinstance(keys, dict)
        else [RegisteredKey.of(key) for key in keys]
    )
    store = open_store(f"sqlite:///{db}")
    ingestor = Ingestor(
        store,
        topic_prefix=settings.topic_prefix,
        file_keys=file_keys,
        backend_key=backend_key,
    )
    stop, subscribed = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        run_ingest(
            settings,
            ingestor,
            group=group,
            client_id=client_id or f"consumer-{uuid.uuid4().hex[:8]}",
            stop=stop,
            subscribed=subscribed,
        )
    )
    done, _ = await asyncio.wait(
        [task, asyncio.create_task(subscribed.wait())],
        timeout=20,
        return_when=asyncio.FIRST_COMPLETED,
    )
    if task in done:
        task.result()
    if not subscribed.is_set():
        task.cancel()
        raise AssertionError("the consumer did not subscribe within 20 s")
    return RunningConsumer(ingestor, store, stop, task)


@dataclass
class RunningAgent:
    outbox: Outbox
    publisher: MqttPublisher
    stop: asyncio.Event
    task: asyncio.Task[None]
    submitted: list[int] = field(default_factory=list)

    def submit(self, count: int) -> None:
        start = len(self.submitted)
        messages = self.outbox.submit_many(
            [JsonMessage("read", {"page_count": 1000 + start + i}) for i in range(count)]
        )
        self.submitted.extend(m.sequence for m in messages)
        self.publisher.notify()

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=30)
        self.outbox.close()


def start_agent(settings: MqttSettings, key: AgentKey, agent_id: str, outbox: Path) -> RunningAgent:
    box = Outbox(outbox, Signer(key, agent_id))
    publisher = MqttPublisher(settings, agent_id=agent_id, outbox=box)
    stop = asyncio.Event()
    task = asyncio.create_task(publisher.run(stop), name=f"publisher-{agent_id}")
    return RunningAgent(box, publisher, stop, task)
