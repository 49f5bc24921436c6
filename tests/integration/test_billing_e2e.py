"""Issue #11 end to end: meters that grow between daemon runs, billed from the store and from reads.

Two snmpsim printers are read by the real daemon (``fleet-agent run --once``) three
times; between runs their lifetime counters grow (the recordings are rewritten and
snmpsim restarted: simulated time). The reads travel signed through Mosquitto to the
reference consumer, which stores them; ``fleet-agent billing`` for the current month
must give exactly the pages printed, from the store and from the same reads exported
as JSON lines.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.demo.fleet import DEMO_FLEET
from agent.state import load_or_create_key
from tests.support.daemon import FLEET_AGENT, DaemonRunner, agent_config, start_printers
from tests.support.mosquitto import MosquittoFactory
from tests.support.mqtt_consumer import eventually, start_consumer, unique_prefix
from tests.support.snmpsim import SnmpSimFactory
from uploader.config import MqttSettings
from uploader.envelope import Verifier

pytestmark = pytest.mark.integration

GROWTH = (0, 120, 290)  # pages printed by each printer before each run (within a minute's speed)
POLICY = """\
version: "e2e-1"
models: [{vendor: "*", patterns: ["*"]}]
billing:
  meter_types:
    pages: total
    pages_doubled: 2 * total
  under_contract: all
"""


def billing(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEET_AGENT), "billing", *args], capture_output=True, text=True, timeout=120
    )


async def test_the_month_is_billed_exactly_from_the_store_and_from_reads(
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    daemon_runner: DaemonRunner,
    tmp_path: Path,
) -> None:
    broker = mosquitto_factory()
    prefix = unique_prefix("billing")
    state = tmp_path / "state"
    key = load_or_create_key(state)
    consumer = await start_consumer(
        MqttSettings(host="127.0.0.1", port=broker.port, tls=False, topic_prefix=prefix),
        [key],
        tmp_path / "consumer.db",
    )
    fleet = DEMO_FLEET[:2]
    for step, grown in enumerate(GROWTH):
        specs = [dataclasses.replace(s, lifetime_pages=s.lifetime_pages + grown) for s in fleet]
        printers = start_printers(snmpsim_factory, tmp_path / f"step{step}", "127.0.66", specs)
        config = agent_config(
            tmp_path / f"agent{step}.yaml",
            state_dir=state,
            snmp_port=printers.port,
            targets=[printers.target_range],
            broker_port=broker.port,
            topic_prefix=prefix,
            http_port=None,
        )
        daemon = daemon_runner(config, "--once")
        assert await daemon.exited() == 0, daemon.log()
        for sim in printers.sims:
            sim.stop()
        await eventually(
            lambda n=2 * (step + 1): (
                consumer.store.execute("SELECT count(*) FROM meter_reads").fetchone()[0] >= n
            ),
            what=f"reads of run {step + 1} stored",
        )
    tokens = consumer.store.tokens("test-agent")
    await consumer.finish()

    period = datetime.now(UTC).strftime("%Y-%m")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    from_store = billing(
        [
            "--period",
            period,
            "--policy",
            str(policy),
            "--store",
            f"sqlite:///{tmp_path / 'consumer.db'}",
        ]
    )
    assert from_store.returncode == 0, from_store.stderr
    rows = list(csv.DictReader(io.StringIO(from_store.stdout)))
    usage = {(row["serial"], row["meter_type"]): int(row["usage"]) for row in rows}
    printed = GROWTH[-1] - GROWTH[0]
    assert usage == {
        (spec.serial, kind): printed * factor
        for spec in fleet
        for kind, factor in (("pages", 1), ("pages_doubled", 2))
    }
    first = next(row for row in rows if row["meter_type"] == "pages")
    assert (first["start_method"], first["end_method"], first["start_source"]) == (
        "first_read",
        "last_read",
        "device",
    )
    assert first["anomalies"] == ""

    # The same reads as JSON lines (what the agent uploaded), billed without the store.
    verifier = Verifier({key.key_id: key.jose_key})
    reads_file = tmp_path / "reads.jsonl"
    with reads_file.open("w") as stream:
        for token in tokens:
            envelope = verifier.verify(token)
            if envelope.kind == "read":
                stream.write(json.dumps(dict(envelope.body)) + "\n")
    from_reads = billing(["--period", period, "--policy", str(policy), "--reads", str(reads_file)])
    assert from_reads.returncode == 0, from_reads.stderr
    assert from_reads.stdout == from_store.stdout
    await asyncio.sleep(0)
