"""``config push``, the backend's side: sign a configuration document, publish it retained.

The broker is the record of what was pushed: each document is published
retained (QoS 1) on its topic (:func:`uploader.remote_config.config_topic`), so an
agent that connects later still gets it, and the next version is one above the
newest document retained for the site or any of its agents (read back, and
verified with the backend's own key, before publishing). Agents refuse a version
that is not newer than the one they run, so versions only grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import aiomqtt
import structlog
from pydantic import JsonValue

from uploader.config import MqttSettings
from uploader.errors import DocumentRejected
from uploader.keys import AgentKey
from uploader.mqtt import BrokerUnavailable, connect
from uploader.remote_config import (
    CONFIG_TOPIC_LEVEL,
    ConfigDocument,
    config_topic,
    sign_document,
    verify_document,
)

__all__ = ["Pushed", "newest_versions", "publish_document", "push"]

log = structlog.get_logger("backend.config_push")


@dataclass(frozen=True)
class Pushed:
    topic: str
    version: int
    document: ConfigDocument


@contextlib.asynccontextmanager
async def _lost(settings: MqttSettings, doing: str) -> AsyncIterator[None]:
    """A broker that stops answering midway: :class:`BrokerUnavailable`, not a traceback."""
    try:
        yield
    except (aiomqtt.MqttError, TimeoutError) as exc:
        raise BrokerUnavailable(
            host=settings.host,
            port=settings.effective_port,
            reason=f"no answer while {doing} the configuration documents ({exc or 'timed out'})",
        ) from exc


async def newest_versions(
    settings: MqttSettings, key: AgentKey, *, site: str, client_id: str
) -> dict[str, int]:
    """Topic -> version of every document retained for ``site`` (site-wide and per agent).

    MQTT has no "end of retained messages": after subscribing, the command publishes a
    marker to a topic of its own and reads until the marker comes back. The broker
    queued the retained messages when it handled the subscriptions, before the marker.
    """
    topics = [
        config_topic(settings.topic_prefix, site),
        f"{settings.topic_prefix}/{site}/+/{CONFIG_TOPIC_LEVEL}",
    ]
    marker_topic = f"{settings.topic_prefix}/_config_push/{client_id}"
    marker = secrets.token_hex(8).encode("ascii")
    found: dict[str, int] = {}
    async with connect(settings, client_id=client_id) as client, _lost(settings, "reading"):
        for topic in [marker_topic, *topics]:
            await client.subscribe(topic, qos=1, timeout=settings.ack_timeout)
        await client.publish(marker_topic, marker, qos=1, timeout=settings.ack_timeout)
        async with asyncio.timeout(settings.ack_timeout):
            async for message in client.messages:
                payload = message.payload
                if str(message.topic) == marker_topic:
                    if payload == marker:
                        break
                    continue
                if not isinstance(payload, bytes | bytearray) or not payload:
                    continue
                try:
                    document = verify_document(bytes(payload), key.jose_key)
                except DocumentRejected as exc:
                    # Not ours (another backend key, or junk): it cannot lower our versions.
                    log.warning(
                        "config.retained_unverified", topic=str(message.topic), error=str(exc)
                    )
                    continue
                found[str(message.topic)] = document.version
    return found


async def publish_document(
    settings: MqttSettings, token: str, topic: str, *, client_id: str
) -> None:
    """Publish a signed document retained (QoS 1) on ``topic``."""
    async with connect(settings, client_id=client_id) as client, _lost(settings, "publishing"):
        await client.publish(
            topic, token.encode("ascii"), qos=1, retain=True, timeout=settings.ack_timeout
        )


async def push(
    settings: MqttSettings,
    key: AgentKey,
    document_settings: Mapping[str, JsonValue],
    *,
    site: str,
    agent_id: str | None = None,
    version: int | None = None,
    client_id: str | None = None,
) -> Pushed:
    """Sign ``document_settings`` for ``site`` (or one agent of it) and publish it.

    ``version``: the document's version; by default one above the newest retained.
    Raises ``ValueError`` when an explicit version is not above the newest retained.
    """
    client = client_id or f"fleet-config-push-{int(time.time() * 1000)}"
    retained = await newest_versions(settings, key, site=site, client_id=client)
    newest = max(retained.values(), default=0)
    if version is None:
        version = newest + 1
    elif version <= newest:
        where = max(retained, key=lambda topic: retained[topic])
        raise ValueError(
            f"version {version} is not above version {newest} retained on {where}: agents "
            "would refuse it as a replay"
        )
    document = ConfigDocument(
        version=version,
        site=site,
        agent_id=agent_id,
        issued_at=datetime.now(UTC),
        settings=dict(document_settings),
    )
    topic = config_topic(settings.topic_prefix, site, agent_id)
    token = sign_document(key, document)
    await publish_document(settings, token, topic, client_id=client)
    log.info("config.pushed", topic=topic, version=version)
    return Pushed(topic=topic, version=version, document=document)
