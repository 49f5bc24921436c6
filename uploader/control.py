"""Ask the backend something over MQTT and wait for its signed reply (enrollment, rotation).

One short connection with the agent's own broker settings (TCP or WebSockets,
TLS, proxy: the same :func:`uploader.mqtt.connect` the publisher uses), a
client id of its own so a running daemon is not disconnected, a subscription
to the agent's ``replies`` topic *before* the request is published, then the
first reply that ``accept`` recognises (the others, e.g. an older reply still
retained or for another request, are skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import aiomqtt
import structlog

from uploader.config import MqttSettings
from uploader.consumer import _inbound
from uploader.mqtt import connect

__all__ = ["ControlRequest", "request_reply"]

log = structlog.get_logger("uploader.control")

T = TypeVar("T")


@dataclass(frozen=True)
class ControlRequest:
    """A signed request and where it goes; ``reply_topic`` is where the answer comes."""

    client_id: str
    topic: str
    payload: bytes
    reply_topic: str


async def request_reply(
    settings: MqttSettings,
    request: ControlRequest,
    accept: Callable[[bytes], T | None],
    *,
    within: float,
) -> T | None:
    """Publish ``request`` (QoS 1) and return ``accept(payload)`` of the first reply it
    recognises, or ``None`` after ``within`` seconds.

    Raises :class:`uploader.mqtt.BrokerUnavailable` (naming the hop that failed) when
    the broker cannot be reached, ``aiomqtt.MqttError`` if the connection breaks.
    """
    async with connect(settings, client_id=request.client_id) as client:
        await client.subscribe(request.reply_topic, qos=1)
        await client.publish(request.topic, request.payload, qos=1, timeout=within)
        log.info("control.request_sent", topic=request.topic, reply_topic=request.reply_topic)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                async for message in client.messages:
                    inbound = _inbound(message)
                    result = accept(inbound.payload)
                    if result is not None:
                        return result
                    log.info("control.reply_skipped", topic=inbound.topic)
    return None


#: Raised when the connection breaks while waiting.
ConnectionLost = aiomqtt.MqttError
