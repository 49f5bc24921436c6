"""The demo's fallback broker when Mosquitto is not installed: amqtt, in-process.

amqtt (PyPI ``amqtt``, in the ``demo`` extra) speaks MQTT 3.1.1 only and has no
shared subscriptions: with it, the agent and the consumer use protocol 3.1.1 and
the consumer subscribes to the plain topics. It listens on 127.0.0.1 only and
accepts anonymous clients, like the Mosquitto the demo generates.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass
from typing import Any

from agent.demo.broker import HOST, free_tcp_port
from agent.demo.sim import DemoError


def embedded_available() -> bool:
    return importlib.util.find_spec("amqtt") is not None


@dataclass
class EmbeddedBroker:
    port: int
    _broker: Any
    host: str = HOST

    async def aclose(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.shutdown()


async def start_embedded_broker(port: int = 0) -> EmbeddedBroker:
    """Start amqtt on ``127.0.0.1:port`` (0: a free port) in the running event loop."""
    if not embedded_available():
        raise DemoError(
            "no MQTT broker: install Mosquitto (Debian/Ubuntu: sudo apt-get install mosquitto) "
            "or the embedded fallback (pip install -e '.[demo]', which brings amqtt)"
        )
    broker_module = importlib.import_module("amqtt.broker")  # optional, untyped dependency
    logging.getLogger("amqtt").setLevel(logging.ERROR)  # its INFO chatter is not the demo's
    port = port or free_tcp_port()
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = broker_module.Broker(config)
    try:
        await broker.start()
    except Exception as exc:  # amqtt raises its own BrokerError (or OSError) for a busy port
        raise DemoError(f"the embedded MQTT broker cannot listen on {HOST}:{port}: {exc}") from exc
    return EmbeddedBroker(port=port, _broker=broker)
