"""``fleet-agent ingest``: the reference backend consumer.

Subscribes to ``{prefix}/+/+/reads|events|status`` (an MQTT shared subscription
``$share/{group}/...`` unless ``--group ''``, so several consumers split the
load), verifies every envelope against the keys registered in the store
(enrolled with ``fleet-agent enroll``, or copied by hand into ``--keys-dir``),
accepts an envelope only from the key bound to its agent id (and site),
rejects bad signatures, unknown, revoked or foreign keys, replays and malformed
payloads (counted by reason), drops duplicates, answers enrollment and key
rotation requests (signed with ``--backend-key``), notes sequence gaps and chain breaks, and stores
reads in SQLite (``--store sqlite:///path.db``, the default) or PostgreSQL
(``--store postgresql://...``, extra ``postgres``). Stops on SIGINT/SIGTERM,
``--once`` (when idle), ``--count N`` messages or ``--duration SECONDS`` and
prints a summary. Exit status 0, 2 for a bad argument, 1 for other failures.

Every message received is stored, then acknowledged; nothing received is
dropped. A watchdog publishes a heartbeat to the consumer's own topic every 5 s:
if the broker holds one for 30 s while nothing at all arrives, the consumer
logs ``ingest.stalled`` (error), reports it (``--metrics-port``: ``/healthz``
503, ``fleet_ingest_stalled`` 1) and reconnects.

Heartbeats and ``device_silent``/``device_back`` events are also kept per agent
and per device (``backend/agents.py``): ``fleet-agent agents`` reports them, and
``--metrics-port`` exports them (``fleet_agents_silent`` past ``--silent-after``,
``fleet_agents_below_min_version`` below ``--min-version``,
``fleet_devices_silent{site}``, ``fleet_agent_last_heartbeat_age_seconds{agent_id}``).

The session is persistent (fixed client id), so the broker queues messages
while the consumer is away. Mosquitto 2.0 does that for plain subscriptions
only: it neither queues for a shared subscription with no member connected nor
restores one after its own restart. With Mosquitto, use ``--group ''`` (one
consumer) when nothing may be missed; brokers that persist shared sessions
(EMQX, HiveMQ) keep the default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from agent.broker_options import add_broker_options, settings_from_args
from agent.cli_help import add_command
from agent.commands.agents import DEFAULT_SILENT_AFTER, duration_arg, version_arg
from agent.errors import UsageError
from agent.logging import configure_logging
from agent.metrics import MetricsServer
from backend.agent_metrics import LivenessMetrics
from backend.consume import ConsumerHealth, StopAfter, run_ingest
from backend.ingest import Ingestor, IngestSummary
from backend.store import DEFAULT_STORE, open_store
from uploader.config import MqttSettings
from uploader.keys import AgentKey, load_registered_keys

DEFAULT_GROUP = "fleet-ingest"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = add_command(
        subparsers,
        "ingest",
        help="reference backend consumer: verify and store signed reads",
        doc=__doc__,
    )
    broker = add_broker_options(
        parser, client_id_help="MQTT client id (default fleet-ingest-<group>-<host>)"
    )
    broker.add_argument(
        "--group",
        default=DEFAULT_GROUP,
        metavar="NAME",
        help=f"shared-subscription group (default {DEFAULT_GROUP}; '' subscribes unshared)",
    )
    parser.add_argument(
        "--keys-dir",
        type=Path,
        metavar="DIR",
        help="agent public keys registered by hand (*.jwk; member agent_id binds one to its "
        "agent, else it is bound to the first agent id that signs with it)",
    )
    parser.add_argument(
        "--backend-key",
        type=Path,
        metavar="FILE",
        help="the backend's Ed25519 key (PEM, from 'fleet-agent keys init --state-dir DIR'): "
        "signs the replies to enrollment and key rotation requests",
    )
    parser.add_argument(
        "--store",
        default=DEFAULT_STORE,
        metavar="DSN",
        help=f"sqlite:///path.db or postgresql://user@host/db (default {DEFAULT_STORE})",
    )
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--once", action="store_true", help="stop when no message came for 2 s")
    stop.add_argument("--count", type=int, metavar="N", help="stop after N messages")
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this many seconds"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="summary format")
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve /metrics and /healthz on 127.0.0.1:PORT (503 while the consumer is stalled)",
    )
    parser.add_argument(
        "--silent-after",
        type=duration_arg,
        default=DEFAULT_SILENT_AFTER,
        metavar="DURATION",
        help="metrics: an agent unheard this long counts as silent (default 15m)",
    )
    parser.add_argument(
        "--min-version",
        type=version_arg,
        metavar="X.Y.Z",
        help="metrics: count agents below this version",
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="warning",
        help="structured log events on stderr from this level (default warning)",
    )
    parser.set_defaults(handler=run)


def _stop_after(args: argparse.Namespace) -> StopAfter:
    if args.count is not None and args.count < 1:
        raise UsageError("--count: must be at least 1")
    if args.duration is not None and args.duration <= 0:
        raise UsageError("--duration: must be positive")
    return StopAfter(count=args.count, duration=args.duration, idle=2.0 if args.once else None)


def format_summary(summary: IngestSummary) -> str:
    rejected = ", ".join(f"{reason} {n}" for reason, n in summary.rejected.items()) or "none"
    return (
        f"received {summary.received}, verified {summary.verified}, stored {summary.stored}, "
        f"duplicates {summary.duplicates}, rejected: {rejected}; "
        f"gaps detected {summary.gaps_detected} (open {summary.gaps_open}), "
        f"chain breaks {summary.chain_breaks}, restarts {summary.restarts}"
    )


def run(args: argparse.Namespace, *, stdout: TextIO | None = None) -> int:
    out = stdout if stdout is not None else sys.stdout
    settings = settings_from_args(args)
    limits = _stop_after(args)
    group = args.group or None
    client_id = args.client_id or f"fleet-ingest-{group or 'solo'}-{socket.gethostname()}"
    file_keys = load_registered_keys(args.keys_dir) if args.keys_dir is not None else []
    backend_key = AgentKey.load(args.backend_key) if args.backend_key is not None else None
    store = open_store(args.store)
    configure_logging(args.log_level, stream=sys.stderr)
    try:
        ingestor = Ingestor(
            store,
            topic_prefix=settings.topic_prefix,
            file_keys=file_keys,
            backend_key=backend_key,
        )
        liveness = LivenessMetrics(
            store, silent_after=args.silent_after, min_version=args.min_version
        )
        summary = asyncio.run(
            _main(
                settings,
                ingestor,
                group,
                client_id,
                limits,
                metrics_port=args.metrics_port,
                liveness=liveness,
            )
        )
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps(summary.model_dump()), file=out)
    else:
        print(format_summary(summary), file=out)
    return 0


class ConsumerMetrics:
    """The consumer's Prometheus samples, read from its health and counters when scraped."""

    def __init__(
        self,
        ingestor: Ingestor,
        health: ConsumerHealth,
        *,
        liveness: LivenessMetrics | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        if liveness is not None:  # agents and devices gone silent (backend/agent_metrics.py)
            self.registry.register(liveness)
        samples: dict[str, tuple[str, Callable[[], float]]] = {
            "fleet_ingest_connected": (
                "1 while subscribed at the broker.",
                lambda: health.connected,
            ),
            "fleet_ingest_stalled": (
                "1 while the broker holds messages for this consumer and it receives none.",
                lambda: health.stalled,
            ),
            "fleet_ingest_stalls": ("Stalls detected since start.", lambda: health.stalls),
            "fleet_ingest_messages_received": (
                "Messages taken from the broker.",
                lambda: health.received,
            ),
            "fleet_ingest_messages_stored": ("Envelopes stored.", lambda: ingestor.stored),
            "fleet_ingest_messages_held": (
                "Messages received and not yet acknowledged.",
                lambda: health.held,
            ),
            "fleet_ingest_oldest_held_age_seconds": (
                "How long the oldest unacknowledged message has been held.",
                lambda: health.oldest_held_age,
            ),
        }
        for name, (text, read) in samples.items():
            Gauge(name, text, registry=self.registry).set_function(read)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def _main(
    settings: MqttSettings,
    ingestor: Ingestor,
    group: str | None,
    client_id: str,
    limits: StopAfter,
    *,
    metrics_port: int | None = None,
    liveness: LivenessMetrics | None = None,
) -> IngestSummary:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    health = ConsumerHealth()
    server: MetricsServer | None = None
    try:
        if metrics_port is not None:
            server = MetricsServer(
                ConsumerMetrics(ingestor, health, liveness=liveness),
                health.status,
                host="127.0.0.1",
                port=metrics_port,
            )
            try:
                await server.start()
            except OSError as exc:
                raise UsageError(f"--metrics-port {metrics_port}: {exc.strerror}") from exc
        return await run_ingest(
            settings,
            ingestor,
            group=group,
            client_id=client_id,
            stop=stop,
            stop_after=limits,
            health=health,
        )
    finally:
        if server is not None:
            await server.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
