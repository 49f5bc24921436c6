"""The consumer side of the MQTT adapter: a subscribed session that never loses a delivery.

One long-lived task per connection (:meth:`ConsumerSession.run_receiver`) takes
every message aiomqtt delivers and appends it to the session's own buffer;
:meth:`ConsumerSession.receive` only ever *waits for a signal* with a timeout,
never for the message itself. So no timeout can cancel a receive that already
holds a message (aiomqtt 2.5's ``anext(client.messages)`` under
``asyncio.wait_for`` did: the message was taken off the queue, then dropped,
neither processed nor acknowledged, and the broker, counting it in flight,
eventually stopped sending).

Acknowledgements are manual (paho's ``manual_ack``): the caller acknowledges a
message after it committed it, so what a killed consumer had not committed is
sent again on the next connection (persistent session). :attr:`held` counts
messages received and not yet acknowledged, :attr:`oldest_held_age` says for how
long, so a watchdog can tell a consumer that stopped acknowledging.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import aiomqtt

from uploader.config import MqttSettings
from uploader.mqtt import connect

__all__ = ["ConnectionLost", "ConsumerSession", "InboundMessage", "consumer_session"]

#: Event-loop turns without a new message that end a batch (a message takes about three).
_IDLE_TURNS = 4

#: Raised by a session whose broker connection broke (callers reconnect).
ConnectionLost = aiomqtt.MqttError


@dataclass(frozen=True)
class InboundMessage:
    topic: str
    payload: bytes
    mid: int
    qos: int


def _inbound(message: aiomqtt.Message) -> InboundMessage:
    payload = message.payload
    if isinstance(payload, bytes | bytearray):
        raw = bytes(payload)
    elif isinstance(payload, str):
        raw = payload.encode()
    else:
        raw = b"" if payload is None else str(payload).encode()
    return InboundMessage(str(message.topic), raw, message.mid, message.qos)


class ConsumerSession:
    """A subscribed consumer connection that acknowledges only what the caller committed."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._client = client
        self._paho = client._client  # acks by hand: connect(..., manual_ack=True)
        self._buffer: deque[InboundMessage] = deque()
        self._arrived = asyncio.Event()
        self._lost: BaseException | None = None
        self._held: dict[tuple[int, str], float] = {}  # (mid, topic) -> monotonic receive time
        self.received = 0
        self.last_received_at: float | None = None  # monotonic

    async def subscribe(self, topics: Sequence[str]) -> None:
        for topic in topics:
            await self._client.subscribe(topic, qos=1)

    async def publish(self, topic: str, payload: bytes, *, ack_within: float) -> None:
        """Publish QoS 1 on this connection (the watchdog's heartbeat)."""
        await self._client.publish(topic, payload, qos=1, timeout=ack_within)

    async def run_receiver(self) -> None:
        """Move every delivered message into the session's buffer until the connection ends.

        The only consumer of aiomqtt's message iterator; it is cancelled only
        with the connection itself, when nothing received can be acknowledged
        any more and the broker sends it again.
        """
        try:
            async for message in self._client.messages:
                inbound = _inbound(message)
                now = time.monotonic()
                if inbound.qos > 0:
                    self._held[(inbound.mid, inbound.topic)] = now
                self._buffer.append(inbound)
                self.received += 1
                self.last_received_at = now
                self._arrived.set()
        except aiomqtt.MqttError as exc:
            self._lost = exc
        else:  # pragma: no cover - aiomqtt's iterator ends only by raising
            self._lost = aiomqtt.MqttError("the message stream ended")
        self._arrived.set()

    def queued(self) -> int:
        """Messages received and waiting in memory."""
        return len(self._buffer)

    @property
    def held(self) -> int:
        """Messages received and not yet acknowledged (buffered or being processed)."""
        return len(self._held)

    def oldest_held_age(self) -> float:
        """Seconds the oldest unacknowledged message has been held (0 when none)."""
        if not self._held:
            return 0.0
        return time.monotonic() - min(self._held.values())

    async def receive(self, within: float | None) -> InboundMessage | None:
        """The next message, or None after ``within`` seconds without one.

        Raises :data:`ConnectionLost` once the buffer is empty and the connection broke.
        Waiting is on an event, so a timeout here never discards a message.
        """
        if not self._buffer and self._lost is None:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=within)
        if self._buffer:
            return self._buffer.popleft()
        if self._lost is not None:
            raise ConnectionLost(str(self._lost)) from self._lost
        return None

    async def take_ready(self, first: InboundMessage, limit: int) -> list[InboundMessage]:
        """``first`` and the messages right behind it, up to ``limit``, without a timer.

        Yields to the event loop between takes, so what is already readable on
        the socket reaches the buffer (the client reads one packet per loop
        turn); stops once a few turns brought nothing. A backlog after a
        reconnect is then committed and acknowledged in large batches instead
        of one store transaction and one PUBACK write per message.
        """
        batch = [first]
        idle = 0
        while len(batch) < limit and idle < _IDLE_TURNS:
            if self._buffer:
                batch.append(self._buffer.popleft())
                idle = 0
                continue
            if self._lost is not None:
                break
            await asyncio.sleep(0)
            idle = 0 if self._buffer or len(self._client.messages) else idle + 1
        return batch

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        for message in messages:
            if message.qos > 0:
                self._held.pop((message.mid, message.topic), None)
                self._paho.ack(message.mid, message.qos)


@contextlib.asynccontextmanager
async def consumer_session(
    settings: MqttSettings, *, client_id: str, topics: Sequence[str]
) -> AsyncIterator[ConsumerSession]:
    """Connect with a persistent session, subscribe QoS 1 to ``topics``, ack manually."""
    # Manual acks from before the CONNACK: the messages the broker held for this
    # session arrive right behind it, and would be acknowledged unprocessed.
    async with connect(
        settings, client_id=client_id, persistent_session=True, manual_ack=True
    ) as client:
        session = ConsumerSession(client)
        receiver = asyncio.create_task(session.run_receiver(), name="ingest.receiver")
        try:
            await session.subscribe(topics)
            yield session
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
