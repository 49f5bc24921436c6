"""The reference consumer's MQTT shell: receive, process, then acknowledge; watch for stalls.

:func:`run_ingest` subscribes (a shared subscription
``$share/{group}/{prefix}/+/+/reads`` and ``events``, ``status``, so several
consumers split the load) with a persistent session and reconnects with backoff.
Every message received is handed to :class:`backend.ingest.Ingestor` in a batch
committed to the store, and only then acknowledged to the broker: a consumer
killed mid-batch is sent the uncommitted messages again; what was committed but
not yet acknowledged comes back as duplicates, which are dropped.

The watchdog: every ``heartbeat_interval`` seconds the consumer publishes a
heartbeat (QoS 1) to a topic only it subscribes to (``{prefix}/_consumer/{id}/
heartbeat``). Once the broker acknowledged a heartbeat, it holds a message for
this consumer; if that heartbeat has not come back within ``stall_after``
seconds and nothing else arrived meanwhile, the consumer stopped receiving while
the broker holds messages for it: ``ingest.stalled`` is logged at error level,
:class:`ConsumerHealth` says ``stalled`` (``/healthz`` answers 503, the metric
``fleet_ingest_stalled`` is 1) and the session is dropped and re-established, so
the broker sends again what it held. It says ``ingest.recovered`` when a
heartbeat arrives again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from backend.ingest import Ingestor, IngestSummary, subscription_topics
from uploader.config import MqttSettings
from uploader.consumer import ConnectionLost, ConsumerSession, InboundMessage, consumer_session
from uploader.mqtt import BrokerUnavailable, backoff_delay

__all__ = [
    "ConsumerHealth",
    "StallDetector",
    "StopAfter",
    "heartbeat_topic",
    "run_ingest",
]

log = structlog.get_logger("backend.consume")

_BATCH = 500
HEARTBEAT_INTERVAL = 5.0
STALL_AFTER = 30.0
REPLY_ACK_WITHIN = 10.0


@dataclass(frozen=True)
class StopAfter:
    """When ``run_ingest`` ends: after ``count`` messages, ``duration`` seconds, or when idle."""

    count: int | None = None
    duration: float | None = None
    idle: float | None = None  # --once: stop after this long without a message


def heartbeat_topic(topic_prefix: str, client_id: str) -> str:
    """The consumer's private heartbeat topic (its client id made a safe topic level)."""
    level = re.sub(r"[^A-Za-z0-9_.-]", "_", client_id) or "consumer"
    return f"{topic_prefix}/_consumer/{level}/heartbeat"


@dataclass
class StallDetector:
    """Pure stall logic: heartbeats published (and acknowledged by the broker) versus seen.

    A consumer is stalled when the oldest heartbeat the broker accepted for it has
    not come back within ``stall_after`` seconds and no message at all arrived
    in that time: the broker holds at least that heartbeat and the consumer gets
    nothing. A slow consumer working through a backlog keeps receiving, so it is
    not stalled even if its heartbeat waits behind the backlog.
    """

    stall_after: float
    awaiting_seq: int | None = None
    awaiting_since: float = 0.0
    last_seen_seq: int = 0

    def published(self, seq: int, now: float) -> None:
        if self.awaiting_seq is None and seq > self.last_seen_seq:
            self.awaiting_seq, self.awaiting_since = seq, now

    def seen(self, seq: int) -> None:
        self.last_seen_seq = max(self.last_seen_seq, seq)
        if self.awaiting_seq is not None and seq >= self.awaiting_seq:
            self.awaiting_seq = None

    def reset(self) -> None:
        """A new connection: heartbeats of the old one may never come back."""
        self.awaiting_seq = None

    def stalled(self, now: float, last_received_at: float | None) -> bool:
        if self.awaiting_seq is None or now - self.awaiting_since < self.stall_after:
            return False
        return last_received_at is None or now - last_received_at >= self.stall_after


@dataclass
class ConsumerHealth:
    """What the consumer is doing: ``/healthz`` and ``/metrics`` of ``fleet-agent ingest``."""

    connected: bool = False
    stalled: bool = False
    stalls: int = 0
    received: int = 0  # messages taken from the broker (heartbeats excluded)
    held: int = 0  # received and not yet acknowledged
    oldest_held_age: float = 0.0
    heartbeats_seen: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def status(self) -> dict[str, Any]:
        state = "stalled" if self.stalled else "ok" if self.connected else "disconnected"
        return {
            "status": state,
            "connected": self.connected,
            "stalls": self.stalls,
            "received": self.received,
            "held": self.held,
            "oldest_held_age_s": round(self.oldest_held_age, 3),
        }


@dataclass(frozen=True)
class Watch:
    """Watchdog timing: heartbeat every ``interval`` s, stalled after ``stall_after`` s."""

    interval: float = HEARTBEAT_INTERVAL
    stall_after: float = STALL_AFTER


class _Stalled(Exception):
    pass


async def run_ingest(
    settings: MqttSettings,
    ingestor: Ingestor,
    *,
    group: str | None,
    client_id: str,
    stop: asyncio.Event,
    stop_after: StopAfter | None = None,
    subscribed: asyncio.Event | None = None,
    health: ConsumerHealth | None = None,
    watch: Watch | None = None,
) -> IngestSummary:
    """Consume until ``stop`` or ``stop_after``; reconnects through broker outages and stalls."""
    limits = stop_after or StopAfter()
    health = health if health is not None else ConsumerHealth()
    watch = watch or Watch()
    started = time.monotonic()
    deadline = None if limits.duration is None else started + limits.duration
    attempt = 0
    beat_topic = heartbeat_topic(settings.topic_prefix, client_id)
    topics = [*subscription_topics(settings.topic_prefix, group), beat_topic]
    detector = StallDetector(watch.stall_after)
    shell = _Shell(ingestor, health, detector, beat_topic, secrets.token_hex(4))

    def finished() -> bool:
        if stop.is_set():
            return True
        if limits.count is not None and ingestor.processed >= limits.count:
            return True
        return deadline is not None and time.monotonic() >= deadline

    while not finished():
        try:
            async with consumer_session(settings, client_id=client_id, topics=topics) as session:
                attempt = 0
                health.connected = True
                detector.reset()
                log.info("ingest.subscribed", topics=topics, broker=settings.endpoint)
                if subscribed is not None:
                    subscribed.set()
                await shell.serve(
                    session,
                    watch,
                    limits=limits,
                    finished=finished,
                    deadline=deadline,
                    stop=stop,
                )
                if finished() or limits.idle is not None:
                    break
        except BrokerUnavailable as exc:
            log.warning("ingest.connect_failed", broker=settings.endpoint, reason=exc.reason)
            attempt += 1
        except ConnectionLost as exc:
            log.warning("ingest.disconnected", broker=settings.endpoint, error=str(exc))
        except _Stalled:
            pass  # logged where detected; reconnect so the broker sends what it holds
        finally:
            health.connected = False
        if finished():
            break
        delay = backoff_delay(attempt, minimum=settings.backoff_min, maximum=settings.backoff_max)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
    summary = ingestor.summary()
    log.info("ingest.finished", **summary.model_dump())
    return summary


@dataclass
class _Shell:
    ingestor: Ingestor
    health: ConsumerHealth
    detector: StallDetector
    beat_topic: str
    token: str  # tells this process's heartbeats from an earlier one's
    seq: int = 0

    async def serve(
        self,
        session: ConsumerSession,
        watch: Watch,
        *,
        limits: StopAfter,
        finished: Callable[[], bool],
        deadline: float | None,
        stop: asyncio.Event,
    ) -> None:
        """Consume beside the heartbeat until done; raises what ended either of them."""
        consume = asyncio.create_task(
            self.consume(session, limits=limits, finished=finished, deadline=deadline, stop=stop),
            name="ingest.consume",
        )
        beats = asyncio.create_task(self.heartbeats(session, watch), name="ingest.heartbeat")
        try:
            await asyncio.wait({consume, beats}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (consume, beats):
                task.cancel()
            await asyncio.gather(consume, beats, return_exceptions=True)
        if not consume.cancelled() and consume.exception() is not None:
            consume.result()
        if not beats.cancelled() and beats.exception() is not None:
            beats.result()

    def _update(self, session: ConsumerSession) -> None:
        self.health.held = session.held
        self.health.oldest_held_age = session.oldest_held_age()

    async def heartbeats(self, session: ConsumerSession, watch: Watch) -> None:
        """Publish heartbeats and declare a stall (raises :class:`_Stalled` to reconnect)."""
        while True:
            self.seq += 1
            with contextlib.suppress(ConnectionLost, TimeoutError):
                payload = f"{self.token}:{self.seq}".encode()
                await session.publish(self.beat_topic, payload, ack_within=watch.interval)
                self.detector.published(self.seq, time.monotonic())
            self._update(session)
            now = time.monotonic()
            if self.detector.stalled(now, session.last_received_at):
                self.health.stalled = True
                self.health.stalls += 1
                waited = now - self.detector.awaiting_since
                log.error(
                    "ingest.stalled",
                    held=session.held,
                    oldest_held_age_s=round(session.oldest_held_age(), 1),
                    heartbeat_waiting_s=round(waited, 1),
                    detail="the broker holds messages for this consumer and it receives none;"
                    " reconnecting",
                )
                raise _Stalled
            await asyncio.sleep(watch.interval)

    def _heartbeat(self, message: InboundMessage) -> bool:
        """Handle our own heartbeat (True) or say it is not one (False)."""
        if message.topic != self.beat_topic:
            return False
        token, _, seq = message.payload.decode("ascii", "replace").partition(":")
        if token == self.token and seq.isdigit():
            self.detector.seen(int(seq))
            self.health.heartbeats_seen += 1
            if self.health.stalled:
                self.health.stalled = False
                log.info("ingest.recovered", heartbeat=int(seq))
        return True

    async def reply(self, session: ConsumerSession, replies: list[tuple[str, bytes]]) -> None:
        """Publish the signed replies of a committed batch (enrollment, key rotation).

        A reply that cannot be sent is logged; the agent asks again and gets the same one.
        """
        for topic, payload in replies:
            try:
                await session.publish(topic, payload, ack_within=REPLY_ACK_WITHIN)
            except (ConnectionLost, TimeoutError) as exc:
                log.warning("ingest.reply_not_sent", topic=topic, error=str(exc))

    async def consume(
        self,
        session: ConsumerSession,
        *,
        limits: StopAfter,
        finished: Callable[[], bool],
        deadline: float | None,
        stop: asyncio.Event,
    ) -> None:
        """Receive in batches; each batch is committed, then acknowledged to the broker."""
        while not finished():
            timeout = 0.5 if limits.idle is None else limits.idle
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - time.monotonic()))
            first = await session.receive(timeout)
            self._update(session)
            if first is None:
                if limits.idle is not None:
                    return
                continue
            room = _BATCH
            if limits.count is not None:
                room = min(room, limits.count - self.ingestor.processed)
            batch = await session.take_ready(first, room)
            beats = [m for m in batch if self._heartbeat(m)]
            work = [m for m in batch if m not in beats] if beats else batch
            if work:
                self.health.received += len(work)
                outcomes = self.ingestor.handle_batch([(m.topic, m.payload) for m in work])
                await self.reply(session, [o.reply for o in outcomes if o.reply is not None])
            session.ack(batch)
            self._update(session)
            if stop.is_set():
                return
