"""``fleet-agent demo``: the whole pipeline once, on loopback, with nothing to configure.

1. the demo fleet (:data:`agent.demo.fleet.DEMO_FLEET`) rendered to ``.snmprec`` files
   and served by one snmpsim process per printer on ``127.0.50.1``, ``.2``, ...;
2. a local Mosquitto on ``127.0.0.1`` (plain TCP, anonymous, loopback only);
3. the reference consumer (:mod:`backend.ingest`) in-process, trusting the agent's key;
4. the daemon (:class:`agent.daemon.Daemon`) for one cycle (``--once``) with a generated
   configuration and the demo contract policy (agent/demo/demo-policy.yaml, package data);
5. the fleet table and the eligibility report, both rebuilt from what the consumer
   verified and stored, and the count of signed reads it accepted.

Everything runs in one temporary directory, removed at the end unless ``keep``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

import yaml

from agent.daemon import Daemon
from agent.demo.broker import mosquitto_path, start_broker
from agent.demo.embedded import start_embedded_broker
from agent.demo.fleet import DEMO_FLEET, PrinterSpec
from agent.demo.sim import DemoError, start_fleet
from agent.eligibility.fleet import evaluate_fleet
from agent.eligibility.policy import load_policy
from agent.eligibility.report import write_report
from agent.logging import configure_logging
from agent.output import print_table, printer_table
from agent.state import load_or_create_key
from backend.consume import run_ingest
from backend.ingest import Ingestor, IngestSummary
from backend.store import SqlStore, open_store
from mibs.messages import AgentMessage, ReadMessage, parse_body
from mibs.models import PrinterRead
from uploader.config import MqttSettings
from uploader.envelope import Verifier
from uploader.keys import RegisteredKey

DEFAULT_POLICY = Path(__file__).resolve().parent / "demo-policy.yaml"
AGENT_ID = "demo-agent"
SITE = "demo"
TOPIC_PREFIX = "fleet-demo"


BrokerChoice = Literal["auto", "mosquitto", "embedded"]


@dataclass(frozen=True)
class BrokerInfo:
    """The broker the demo started, and how clients talk to it."""

    label: str
    host: str
    port: int
    protocol: Literal["5", "3.1.1"]
    group: str | None  # shared-subscription group of the consumer (None: plain topics)


@dataclass(frozen=True)
class DemoOptions:
    keep: bool = False
    port: int = 0  # broker TCP port; 0 picks a free one
    policy: Path = DEFAULT_POLICY
    subnet: str = "127.0.50"
    printers: tuple[PrinterSpec, ...] = DEMO_FLEET
    broker: BrokerChoice = "auto"


@dataclass(frozen=True)
class DemoResult:
    reads_stored: int
    events_stored: int
    rejected: int
    work_dir: Path | None  # kept directory, or None when removed


def agent_config(
    *,
    state_dir: Path,
    addresses: Sequence[str],
    snmp_port: int,
    broker: BrokerInfo,
    policy: Path,
) -> dict[str, Any]:
    """The daemon configuration the demo writes (YAML), short timeouts, no jitter."""
    return {
        "agent_id": AGENT_ID,
        "site": SITE,
        "state_dir": str(state_dir),
        "log_level": "info",
        "shutdown_deadline": "10s",
        "snmp": {"port": snmp_port, "timeout": 1.0, "retries": 1, "read_deadline": 15},
        "discovery": {"targets": [f"{addresses[0]}-{addresses[-1]}"], "rate": 500},
        "schedule": {"jitter": 0, "discovery_at_start": True},
        "upload": {
            "enabled": True,
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "tls": False,
                "protocol": broker.protocol,
                "topic_prefix": TOPIC_PREFIX,
                "connect_timeout": 5,
                "ack_timeout": 10,
            },
        },
        "eligibility": {"policy": str(policy)},
        "http": {"enabled": False},
    }


def _say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


def stored_messages(
    store: SqlStore, verifier: Verifier, agent_id: str
) -> Iterator[AgentMessage | None]:
    """The message of every stored envelope of ``agent_id``, each verified and parsed again.

    ``None`` for a body without a model (a ``status`` report other than the heartbeat).
    """
    for token in store.tokens(agent_id):
        envelope = verifier.verify(token.encode("ascii"))
        yield parse_body(envelope.kind, envelope.body)


async def _wait_stored(ingestor: Ingestor, task: asyncio.Task[Any], count: int) -> None:
    deadline = time.monotonic() + 30
    while ingestor.stored < count and not task.done():
        if time.monotonic() > deadline:
            raise DemoError(
                f"the consumer stored {ingestor.stored} of {count} published messages in 30 s"
            )
        await asyncio.sleep(0.05)


async def _start_broker(
    options: DemoOptions, work: Path, stack: contextlib.AsyncExitStack
) -> BrokerInfo:
    """Mosquitto when installed (or asked for), else the embedded amqtt broker."""
    choice = options.broker
    if choice == "auto":
        choice = "mosquitto" if mosquitto_path() is not None else "embedded"
    if choice == "mosquitto":
        local = await asyncio.to_thread(start_broker, work / "broker", port=options.port)
        stack.callback(local.stop)
        return BrokerInfo("Mosquitto", local.host, local.port, "5", "demo")
    embedded = await start_embedded_broker(options.port)
    stack.push_async_callback(embedded.aclose)
    return BrokerInfo(
        "the embedded MQTT broker (amqtt)", embedded.host, embedded.port, "3.1.1", None
    )


async def _stop_consumer(task: asyncio.Task[IngestSummary], stop: asyncio.Event) -> None:
    stop.set()
    try:
        await asyncio.wait_for(task, timeout=15)
    except TimeoutError:
        task.cancel()


async def _pipeline(options: DemoOptions, work: Path, out: TextIO) -> DemoResult:
    policy = load_policy(options.policy)  # a bad policy fails before anything starts
    count = len(options.printers)
    first = f"{options.subnet}.1"
    async with contextlib.AsyncExitStack() as stack:
        broker = await _start_broker(options, work, stack)
        _say(out, f"Started {broker.label} on {broker.host}:{broker.port}")
        _say(out, f"Starting {count} simulated printers (snmpsim) from {first} ...")
        fleet = await asyncio.to_thread(
            start_fleet, options.printers, work / "printers", subnet=options.subnet
        )
        stack.callback(fleet.stop)
        _say(out, f"  {', '.join(fleet.addresses)} on UDP port {fleet.port}")
        state_dir = work / "state"
        key = load_or_create_key(state_dir)
        config_path = work / "agent.yaml"
        config = agent_config(
            state_dir=state_dir,
            addresses=fleet.addresses,
            snmp_port=fleet.port,
            broker=broker,
            policy=options.policy,
        )
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

        settings = MqttSettings(
            host=broker.host,
            port=broker.port,
            tls=False,
            protocol=broker.protocol,
            topic_prefix=TOPIC_PREFIX,
        )
        store = open_store(f"sqlite:///{work / 'consumer.db'}")
        stack.callback(store.close)
        ingestor = Ingestor(
            store, topic_prefix=TOPIC_PREFIX, file_keys=[RegisteredKey.of(key, AGENT_ID)]
        )
        stop, subscribed = asyncio.Event(), asyncio.Event()
        consumer = asyncio.create_task(
            run_ingest(
                settings,
                ingestor,
                group=broker.group,
                client_id=f"demo-consumer-{uuid.uuid4().hex[:8]}",
                stop=stop,
                subscribed=subscribed,
            ),
            name="demo.consumer",
        )
        stack.push_async_callback(_stop_consumer, consumer, stop)
        try:
            async with asyncio.timeout(20):
                await subscribed.wait()
        except TimeoutError:
            raise DemoError("the reference consumer did not subscribe within 20 s") from None
        _say(out, f"Reference consumer subscribed to {TOPIC_PREFIX}/+/+/reads|events|status")

        _say(out, "Running the agent for one cycle (discovery, meter reads, signed upload) ...")
        daemon = Daemon(config_path, once=True)
        code = await daemon.run()
        published = int(daemon.metrics.value("fleet_agent_messages_uploaded_total"))
        if code != 0:
            raise DemoError(f"the agent exited with status {code}")
        await _wait_stored(ingestor, consumer, published)
        summary = ingestor.summary()

        reads: list[PrinterRead] = []
        events = 0
        verifier = Verifier({key.key_id: key.jose_key})
        for message in stored_messages(store, verifier, AGENT_ID):
            if isinstance(message, ReadMessage):
                reads.append(message)
            elif message is not None and message.kind == "event":
                events += 1
        _say(out, "")
        print_table(out, printer_table(reads, title="Fleet (as stored by the consumer)"))
        report = evaluate_fleet(reads, policy)
        write_report(out, report, "table")
        rejected = sum(summary.rejected.values())
        _say(
            out,
            f"The consumer verified and stored {len(reads)} signed reads "
            f"(and {events} events; {rejected} rejected) published by agent {AGENT_ID}.",
        )
        return DemoResult(len(reads), events, rejected, None)


async def run_demo(options: DemoOptions, out: TextIO) -> DemoResult:
    """Run the demo; everything started is stopped, the work directory removed unless kept."""
    work = Path(tempfile.mkdtemp(prefix="fleet-agent-demo-"))
    log_file = (work / "demo.log").open("w", encoding="utf-8")
    configure_logging("info", stream=log_file)
    try:
        result = await _pipeline(options, work, out)
    except BaseException:
        log_file.close()
        if options.keep:
            sys.stderr.write(f"fleet-agent demo: kept {work} for inspection\n")
        else:
            tail = (work / "demo.log").read_text(errors="replace").splitlines()[-15:]
            sys.stderr.write("".join(f"  log: {line}\n" for line in tail))
            shutil.rmtree(work, ignore_errors=True)
        raise
    log_file.close()
    if not options.keep:
        shutil.rmtree(work, ignore_errors=True)
    if options.keep:
        _say(out, f"Kept {work} (agent.yaml, state/, consumer.db, demo.log, printers/, broker/).")
        return DemoResult(result.reads_stored, result.events_stored, result.rejected, work)
    return result
