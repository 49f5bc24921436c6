"""MqttPublisher's drain loop against an in-memory broker seam (no sockets).

A fake client stands in for aiomqtt: ``publish`` completes when the test's
"broker" acknowledges, and ``messages`` fails when the connection drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from structlog.testing import capture_logs

from uploader.config import MqttSettings
from uploader.errors import QueueDiskFull
from uploader.mqtt import MqttPublisher, _ConnectionLost


@dataclass(frozen=True)
class Message:
    message_id: str
    kind: str
    token: str


class MemoryOutbox:
    def __init__(self, count: int) -> None:
        self.messages = [Message(f"m{i:04d}", "read", f"token-{i}") for i in range(count)]
        self.acked: list[str] = []
        self.lock = threading.Lock()
        self.reads = 0

    def pending(self, limit: int) -> Sequence[Message]:
        with self.lock:
            self.reads += 1
            return list(self.messages[:limit])

    def ack(self, message_ids: Sequence[str]) -> None:
        with self.lock:
            gone = set(message_ids)
            self.acked.extend(message_ids)
            self.messages = [m for m in self.messages if m.message_id not in gone]

    def add(self, count: int) -> None:
        with self.lock:
            start = len(self.acked) + len(self.messages)
            self.messages += [
                Message(f"m{i:04d}", "event", f"t{i}") for i in range(start, start + count)
            ]


class FakeClient:
    """publish() waits for the broker's PUBACK; drop() breaks the connection."""

    def __init__(self, *, auto_ack: bool = True) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.auto_ack = auto_ack
        self._dropped = asyncio.Event()

    async def publish(self, topic: str, payload: bytes, qos: int, **_options: float) -> None:
        assert qos == 1
        self.sent.append((topic, payload))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.auto_ack:
                await asyncio.sleep(0.001)
            else:
                await self._dropped.wait()
            if self._dropped.is_set():
                raise aiomqtt.MqttError("Disconnected during publish")
        finally:
            self.in_flight -= 1

    @property
    def messages(self) -> FakeClient:
        return self

    def __aiter__(self) -> FakeClient:
        return self

    async def __anext__(self) -> None:
        await self._dropped.wait()
        raise aiomqtt.MqttError("Disconnected during message iteration")

    def drop(self) -> None:
        self._dropped.set()


def settings(max_inflight: int = 8) -> MqttSettings:
    return MqttSettings(
        host="broker.invalid", topic_prefix="p", site="s", max_inflight=max_inflight
    )


async def test_drains_everything_oldest_first_within_the_in_flight_bound() -> None:
    outbox = MemoryOutbox(100)
    publisher = MqttPublisher(settings(8), agent_id="a1", outbox=outbox)
    client, stop = FakeClient(), asyncio.Event()
    task = asyncio.create_task(publisher._drain(client, stop))  # type: ignore[arg-type]
    while outbox.messages:  # noqa: ASYNC110 - polling the fake
        await asyncio.sleep(0.005)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert [payload for _, payload in client.sent] == [f"token-{i}".encode() for i in range(100)]
    assert {topic for topic, _ in client.sent} == {"p/s/a1/reads"}
    assert 1 < client.max_in_flight <= 8
    assert sorted(outbox.acked) == [f"m{i:04d}" for i in range(100)]
    assert publisher.published == 100
    assert publisher.last_ack_at is not None


async def test_notify_wakes_an_idle_publisher_even_from_another_thread() -> None:
    outbox = MemoryOutbox(0)
    publisher = MqttPublisher(settings(), agent_id="a1", outbox=outbox)
    publisher._loop = asyncio.get_running_loop()
    client, stop = FakeClient(), asyncio.Event()
    task = asyncio.create_task(publisher._drain(client, stop))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert client.sent == []
    outbox.add(3)
    await asyncio.to_thread(publisher.notify)
    for _ in range(200):
        if len(outbox.acked) == 3:
            break
        await asyncio.sleep(0.005)
    assert [topic for topic, _ in client.sent] == ["p/s/a1/events"] * 3
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_a_dropped_connection_keeps_unacknowledged_messages_for_the_next_session() -> None:
    outbox = MemoryOutbox(20)
    publisher = MqttPublisher(settings(5), agent_id="a1", outbox=outbox)
    stalled, stop = FakeClient(auto_ack=False), asyncio.Event()
    task = asyncio.create_task(publisher._drain(stalled, stop))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert len(stalled.sent) == 5  # the window is full, nothing acknowledged
    stalled.drop()
    with pytest.raises(_ConnectionLost):
        await asyncio.wait_for(task, 5)
    assert outbox.acked == []
    assert len(outbox.messages) == 20

    healthy = FakeClient()
    task = asyncio.create_task(publisher._drain(healthy, stop))  # type: ignore[arg-type]
    while outbox.messages:  # noqa: ASYNC110 - polling the fake
        await asyncio.sleep(0.005)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert [p for _, p in healthy.sent][:5] == [p for _, p in stalled.sent]  # resent first
    assert len(outbox.acked) == 20


async def test_stop_finishes_what_is_in_flight_and_starts_nothing_new() -> None:
    outbox = MemoryOutbox(500)
    publisher = MqttPublisher(settings(10), agent_id="a1", outbox=outbox)
    client, stop = FakeClient(), asyncio.Event()
    task = asyncio.create_task(publisher._drain(client, stop))  # type: ignore[arg-type]
    while len(client.sent) < 10:  # noqa: ASYNC110 - polling the fake
        await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(task, 5)
    sent_ids = {f"m{int(p.decode().split('-')[1]):04d}" for _, p in client.sent}
    assert set(outbox.acked) == sent_ids  # everything in flight was acknowledged and acked
    assert 10 <= len(sent_ids) < 500
    assert len(outbox.messages) == 500 - len(sent_ids)


async def test_an_idle_publisher_does_not_poll_the_outbox() -> None:
    outbox = MemoryOutbox(3)
    publisher = MqttPublisher(settings(), agent_id="a1", outbox=outbox)
    client, stop = FakeClient(), asyncio.Event()
    task = asyncio.create_task(publisher._drain(client, stop))  # type: ignore[arg-type]
    async with asyncio.timeout(10):  # acked after ACK_DELAY although the batch is small
        while len(outbox.acked) < 3:  # noqa: ASYNC110 - a fake outbox has no event
            await asyncio.sleep(0.01)
    reads_when_idle = outbox.reads
    await asyncio.sleep(0.3)
    assert outbox.reads == reads_when_idle
    assert reads_when_idle <= 3
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_run_refuses_to_run_twice() -> None:
    publisher = MqttPublisher(settings(), agent_id="a1", outbox=MemoryOutbox(0))
    publisher._running = True
    with pytest.raises(RuntimeError, match="already running"):
        await publisher.run(asyncio.Event())


class FailingOnceOutbox(MemoryOutbox):
    """An outbox whose first ack fails as a full disk once did (issue #10: the daemon exited)."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.failures = 0

    def ack(self, message_ids: Sequence[str]) -> None:
        if not self.failures:
            self.failures += 1
            raise QueueDiskFull("cannot remove acknowledged messages", path=Path("outbox.db"))
        super().ack(message_ids)


async def test_an_outbox_error_ends_the_session_not_the_publisher(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outbox = FailingOnceOutbox(20)
    sessions: list[FakeClient] = []

    @contextlib.asynccontextmanager
    async def fake_connect(*_args: object, **_kwargs: object) -> AsyncIterator[FakeClient]:
        sessions.append(FakeClient())
        yield sessions[-1]

    monkeypatch.setattr("uploader.mqtt.connect", fake_connect)
    fast = settings().model_copy(update={"backoff_min": 0.01, "backoff_max": 0.05})
    publisher = MqttPublisher(fast, agent_id="a1", outbox=outbox)
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(publisher.run(stop))
        for _ in range(3000):  # at least 30 s: generous on a loaded machine
            if not outbox.messages or task.done():
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)  # returns: the QueueDiskFull did not escape
    assert outbox.failures == 1
    assert sorted(set(outbox.acked)) == [f"m{i:04d}" for i in range(20)]  # sent again, all acked
    assert len(sessions) >= 2  # the failed round dropped the session; a new one drained
    failed = [entry for entry in logs if entry["event"] == "upload.outbox_failed"]
    assert len(failed) == 1
    assert failed[0]["log_level"] == "error"
    assert "cannot remove acknowledged messages" in failed[0]["error"]
