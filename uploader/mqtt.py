"""The MQTT adapter: the only module that touches aiomqtt.

:class:`MqttPublisher` drains the durable outbox continuously::

    outbox.pending() -> publish QoS 1 (at most ``max_inflight`` in flight)
                     -> PUBACK -> outbox.ack(ids) -> repeat

It wakes when :meth:`MqttPublisher.notify` is called (new messages submitted),
survives broker outages (reconnect with capped, jittered backoff; what was not
acknowledged is sent again: at least once, the message id makes it idempotent),
optionally subscribes to topics on the same connection (the backend's configuration
documents: at a site that only lets one connection out, it is the only one),
announces presence on its own retained, unsigned ``presence`` topic (``online`` on
connect, ``offline`` by last will or on orderly shutdown; the ``status`` topic carries
signed envelopes only) and exposes its state for metrics.
Nothing broker-specific: standard MQTT 5 / 3.1.1, QoS 1, TLS, mTLS, user/password.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import aiomqtt
import structlog
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from uploader.broker_probe import PROBE_OK, BrokerUnavailable, diagnose_path, tls_context
from uploader.config import PRESENCE_OFFLINE, PRESENCE_ONLINE, MqttSettings
from uploader.errors import QueueError
from uploader.hops import proxy_type

__all__ = [
    "BrokerUnavailable",
    "MqttPublisher",
    "OutboxPort",
    "PublishableMessage",
    "backoff_delay",
    "build_client",
    "connect",
    "run_publisher",
]

log = structlog.get_logger("uploader.mqtt")

# How long a persistent consumer session survives a disconnect (MQTT 5 property).
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
#: Longest a PUBACKed message waits before it is removed from the outbox (acks are batched).
ACK_DELAY = 0.05


class PublishableMessage(Protocol):
    """What the publisher needs of :class:`uploader.envelope.SignedMessage`."""

    @property
    def message_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def token(self) -> str: ...


class OutboxPort(Protocol):
    """The part of :class:`uploader.queue.Outbox` the publisher drives."""

    def pending(self, limit: int) -> Sequence[PublishableMessage]: ...
    def ack(self, message_ids: Sequence[str]) -> None: ...


def backoff_delay(
    attempt: int, *, minimum: float, maximum: float, rng: Callable[[], float] = random.random
) -> float:
    """Capped exponential backoff with equal jitter: in ``[cap/2, cap]``, cap <= ``maximum``."""
    cap = min(maximum, minimum * (2 ** min(attempt, 32)))
    return float(cap / 2 + rng() * cap / 2)


def build_client(
    settings: MqttSettings,
    *,
    client_id: str,
    will: aiomqtt.Will | None = None,
    persistent_session: bool = False,
    manual_ack: bool = False,
) -> aiomqtt.Client:
    """An aiomqtt client for ``settings``; must be created inside the running loop.

    ``manual_ack``: QoS 1 messages are acknowledged only by an explicit
    ``client._client.ack(mid, qos)``. It is set before connecting: a persistent
    session's held messages arrive right behind the CONNACK, and paho would
    acknowledge those at once otherwise.
    """
    v5 = settings.protocol == "5"
    properties: Properties | None = None
    clean_session: bool | None = None
    if v5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if persistent_session:
            properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
    else:
        clean_session = not persistent_session
    proxy: aiomqtt.ProxySettings | None = None
    if settings.proxy is not None:
        # The proxy resolves the broker's name (rdns): the site's DNS may not know it.
        proxy = aiomqtt.ProxySettings(
            proxy_type=proxy_type(settings.proxy),
            proxy_addr=settings.proxy.host,
            proxy_port=settings.proxy.port,
            proxy_rdns=True,
            proxy_username=settings.proxy.username,
            proxy_password=(
                settings.proxy.password.get_secret_value() if settings.proxy.password else None
            ),
        )
    websockets = settings.transport == "websockets"
    client = aiomqtt.Client(
        settings.host,
        settings.effective_port,
        username=settings.username,
        password=settings.password.get_secret_value() if settings.password else None,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        will=will,
        clean_session=clean_session,
        clean_start=False if (v5 and persistent_session) else MQTT_CLEAN_START_FIRST_ONLY,
        timeout=settings.connect_timeout,
        keepalive=settings.keepalive,
        max_inflight_messages=settings.max_inflight,
        properties=properties,
        tls_context=tls_context(settings) if settings.tls else None,
        transport="websockets" if websockets else "tcp",
        websocket_path=settings.websocket_path if websockets else None,
        proxy=proxy,
    )
    client.pending_calls_threshold = settings.max_inflight + 10
    if manual_ack:
        # aiomqtt 2.x does not expose manual acks; its paho client does (pinned <3).
        client._client.manual_ack_set(True)
    return client


async def diagnose(settings: MqttSettings, exc: BaseException) -> BrokerUnavailable:
    """Translate an aiomqtt failure into :class:`BrokerUnavailable` with the real cause."""
    hop, reason = await asyncio.to_thread(diagnose_path, settings, timeout=settings.connect_timeout)
    if reason == PROBE_OK:
        reason = f"{reason}: {exc}"
    return BrokerUnavailable(
        host=settings.host, port=settings.effective_port, reason=reason, hop=hop
    )


@contextlib.asynccontextmanager
async def connect(
    settings: MqttSettings,
    *,
    client_id: str,
    will: aiomqtt.Will | None = None,
    persistent_session: bool = False,
    manual_ack: bool = False,
) -> AsyncIterator[aiomqtt.Client]:
    """A connected client; a failed connect raises :class:`BrokerUnavailable` naming the cause."""
    client = build_client(
        settings,
        client_id=client_id,
        will=will,
        persistent_session=persistent_session,
        manual_ack=manual_ack,
    )
    try:
        await client.__aenter__()
    except aiomqtt.MqttError as exc:
        raise await diagnose(settings, exc) from exc
    try:
        yield client
    finally:
        with contextlib.suppress(aiomqtt.MqttError):
            await client.__aexit__(None, None, None)


class _ConnectionLost(Exception):
    pass


class MqttPublisher:
    """Drains an outbox to the broker for one agent. State is readable for metrics."""

    def __init__(
        self,
        settings: MqttSettings,
        *,
        agent_id: str,
        outbox: OutboxPort,
        subscriptions: Sequence[str] = (),
        on_message: Callable[[str, bytes], None] | None = None,
    ) -> None:
        """``subscriptions``: topics to subscribe to (QoS 1) on every connection, on the
        same connection as the uploads; each message received is handed to ``on_message``
        (topic, payload) in the event loop. Retained messages arrive after each subscribe.
        """
        if subscriptions and on_message is None:
            raise ValueError("subscriptions need an on_message callback")
        self._settings = settings
        self._agent_id = agent_id
        self._outbox = outbox
        self._subscriptions = tuple(subscriptions)
        self._on_message = on_message
        self._topics = {
            kind: settings.agent_topic(agent_id, kind) for kind in ("read", "event", "status")
        }
        self._wake = asyncio.Event()
        self._submitted = True  # something may wait in the outbox
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
        self.connected = False
        self.last_ack_at: datetime | None = None
        self.published = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.in_flight = 0

    @property
    def client_id(self) -> str:
        return self._settings.client_id or f"fleet-agent-{self._agent_id}"

    def notify(self) -> None:
        """New messages were submitted to the outbox: publish them now. Any thread may call."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # not running: run() reads the outbox when it starts
        try:
            same_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            self._mark_submitted()
        else:
            loop.call_soon_threadsafe(self._mark_submitted)

    def _mark_submitted(self) -> None:
        self._submitted = True
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; then finish what is in flight and say ``offline``."""
        if self._running:
            raise RuntimeError("MqttPublisher.run is already running")
        self._running = True
        self._loop = asyncio.get_running_loop()
        settings = self._settings
        attempt = 0
        try:
            while not stop.is_set():
                try:
                    established = await self._session(stop)
                except BrokerUnavailable as exc:
                    established = False
                    self.last_error = exc.reason
                    log.warning(
                        "upload.connect_failed", broker=settings.endpoint, reason=exc.reason
                    )
                except (aiomqtt.MqttError, _ConnectionLost) as exc:
                    established = True
                    self.last_error = f"connection lost: {exc}"
                    log.warning("upload.disconnected", broker=settings.endpoint, error=str(exc))
                except QueueError as exc:
                    # The outbox failed (a damaged file, an I/O error): never end the
                    # daemon for it; drop the session and try again after the backoff.
                    established = False
                    self.last_error = f"outbox: {exc}"
                    log.error("upload.outbox_failed", error=str(exc))  # noqa: TRY400 - named
                self.connected = False
                if stop.is_set():
                    break
                attempt = 0 if established else attempt + 1
                delay = backoff_delay(
                    attempt, minimum=settings.backoff_min, maximum=settings.backoff_max
                )
                self.reconnects += 1
                log.info("upload.reconnect_scheduled", delay_s=round(delay, 3), attempt=attempt)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
        finally:
            self.connected = False
            self._running = False
            self._loop = None

    async def _session(self, stop: asyncio.Event) -> bool:
        presence_topic = self._settings.presence_topic(self._agent_id)
        will = aiomqtt.Will(presence_topic, PRESENCE_OFFLINE, qos=1, retain=True)
        async with connect(self._settings, client_id=self.client_id, will=will) as client:
            self.connected = True
            self.last_error = None
            log.info("upload.connected", broker=self._settings.endpoint, client_id=self.client_id)
            await client.publish(presence_topic, PRESENCE_ONLINE, qos=1, retain=True)
            for topic in self._subscriptions:
                await client.subscribe(topic, qos=1, timeout=self._settings.ack_timeout)
            await self._drain(client, stop)
            await client.publish(presence_topic, PRESENCE_OFFLINE, qos=1, retain=True)
            log.info("upload.stopped", published=self.published)
        return True

    def _db_round(self, ack_ids: list[str], limit: int) -> Sequence[PublishableMessage]:
        """In a worker thread: delete what the broker acknowledged, then read what waits."""
        if ack_ids:
            self._outbox.ack(ack_ids)
        return self._outbox.pending(limit) if limit else []

    async def _drain(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """Publish until ``stop`` (then finish in-flight work) or until the connection fails.

        Outbox calls run in a worker thread (``ack`` fsyncs) so PUBACKs keep flowing
        meanwhile; the ack-then-pending order in one thread call means a message
        is either still in ``inflight``/``unflushed`` or really unpublished.
        """
        settings = self._settings
        inflight: set[str] = set()
        unflushed: set[str] = set()  # PUBACK received, not yet removed from the outbox
        failures: list[BaseException] = []
        wake = self._wake

        async def publish_one(message: PublishableMessage) -> None:
            try:
                await client.publish(
                    self._topics[message.kind],
                    message.token.encode(),
                    qos=1,
                    timeout=settings.ack_timeout,
                )
            except aiomqtt.MqttError as exc:
                failures.append(exc)
            else:
                unflushed.add(message.message_id)
                self.published += 1
            finally:
                inflight.discard(message.message_id)
                self.in_flight = len(inflight)
                wake.set()

        async def watch_connection() -> None:
            try:
                async for message in client.messages:
                    payload = message.payload
                    if self._on_message is not None and isinstance(payload, bytes | bytearray):
                        self._on_message(str(message.topic), bytes(payload))
            except aiomqtt.MqttError as exc:
                failures.append(exc)
            wake.set()

        async def relay_stop() -> None:
            await stop.wait()
            wake.set()

        window = settings.max_inflight
        ack_batch = max(1, window // 2)
        buffer: deque[PublishableMessage] = deque()  # read from the outbox, not yet sent
        buffered: set[str] = set()
        first_unflushed_at = 0.0
        outbox_error: BaseException | None = None
        db_task: asyncio.Task[tuple[Sequence[PublishableMessage], int, BaseException | None]] | None
        db_task = None
        more_waiting = True  # the last read filled its page: the outbox may hold more

        async def db_round(
            ack_ids: list[str], limit: int
        ) -> tuple[Sequence[PublishableMessage], int, BaseException | None]:
            try:
                page = await asyncio.to_thread(self._db_round, ack_ids, limit)
            except Exception as exc:  # handed to the loop, re-raised after the group
                return [], 0, exc
            finally:
                wake.set()
            nonlocal more_waiting
            if limit:
                more_waiting = len(page) >= limit
            return page, len(ack_ids), None

        async with asyncio.TaskGroup() as group:
            helpers = [
                group.create_task(watch_connection(), name="upload.watch_connection"),
                group.create_task(relay_stop(), name="upload.relay_stop"),
            ]
            publishes: list[asyncio.Task[None]] = []
            while True:
                wake.clear()
                if db_task is not None and db_task.done():
                    page, acked, error = db_task.result()
                    db_task = None
                    if error is not None:
                        outbox_error = error
                        break
                    if acked:
                        self.last_ack_at = datetime.now(UTC)
                        log.debug("upload.acked", count=acked)
                    for message in page:
                        mid = message.message_id
                        if mid in inflight or mid in unflushed or mid in buffered:
                            continue
                        buffer.append(message)
                        buffered.add(mid)
                if failures:
                    break
                stopping = stop.is_set()
                if stopping:
                    buffer.clear()
                    buffered.clear()
                    if not inflight and not unflushed and db_task is None:
                        break
                while buffer and len(inflight) < window:
                    message = buffer.popleft()
                    buffered.discard(message.message_id)
                    inflight.add(message.message_id)
                    publishes.append(group.create_task(publish_one(message), name="upload.publish"))
                self.in_flight = len(inflight)
                if len(publishes) > 4 * window:
                    publishes = [task for task in publishes if not task.done()]
                if db_task is None:
                    fetch = (
                        not stopping and len(buffer) < window and (more_waiting or self._submitted)
                    )
                    # Acks cost an fsync: batch them, but hold none longer than ACK_DELAY.
                    if unflushed and not first_unflushed_at:
                        first_unflushed_at = time.monotonic()
                    ack_due = bool(unflushed) and (
                        stopping
                        or len(unflushed) >= ack_batch
                        or time.monotonic() - first_unflushed_at >= ACK_DELAY
                    )
                    if fetch or ack_due:
                        first_unflushed_at = 0.0
                        if fetch:
                            self._submitted = False  # a notify() from now on reads again
                        ack_ids = list(unflushed)
                        unflushed.clear()
                        # Rows still in the outbox: in flight, buffered, acked meanwhile, new.
                        limit = len(inflight) + len(buffer) + 3 * window if fetch else 0
                        db_task = group.create_task(
                            db_round(ack_ids, limit), name="upload.outbox_round"
                        )
                    elif unflushed:
                        remaining = ACK_DELAY - (time.monotonic() - first_unflushed_at)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wake.wait(), timeout=max(0.0, remaining))
                        continue
                await wake.wait()
            for task in helpers + publishes:
                task.cancel()
        if db_task is not None:  # finished with the group; its acks are on disk
            _page, acked, error = db_task.result()
            outbox_error = outbox_error or error
        if outbox_error is not None:
            raise outbox_error
        if unflushed:
            await asyncio.to_thread(self._outbox.ack, list(unflushed))
            self.last_ack_at = datetime.now(UTC)
        if failures:
            raise _ConnectionLost(str(failures[0])) from failures[0]


async def run_publisher(
    outbox: OutboxPort,
    settings: MqttSettings,
    stop: asyncio.Event,
    *,
    agent_id: str,
    publisher: MqttPublisher | None = None,
) -> MqttPublisher:
    """Drain ``outbox`` to the broker until ``stop``; returns the publisher (its counters)."""
    publisher = publisher or MqttPublisher(settings, agent_id=agent_id, outbox=outbox)
    await publisher.run(stop)
    return publisher
