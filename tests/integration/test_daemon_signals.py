"""Issue #6: the daemon under SIGHUP (good and bad config), a failing job, SIGTERM mid-cycle."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.state import OUTBOX_FILE, load_or_create_key
from tests.support.daemon import (
    DaemonRunner,
    Event,
    agent_config,
    past_the_sweep_limit,
    start_printers,
)
from tests.support.mosquitto import MosquittoFactory
from tests.support.mqtt_consumer import start_consumer, unique_prefix
from tests.support.snmpsim import SnmpSimFactory
from tests.support.udp_counter import UdpCounterFactory
from uploader.config import MqttSettings
from uploader.envelope import Signer, Verifier, envelope_hash
from uploader.queue import Outbox

pytestmark = pytest.mark.integration

AGENT_ID = "test-agent"


def meters_cycle(devices: int) -> Callable[[Event], bool]:
    """Matches the ``reads.completed`` of a meter cycle over ``devices`` printers."""
    return lambda e: e.get("purpose") == "meters" and e.get("devices") == devices


def test_sighup_applies_good_config_rejects_bad_and_survives_failing_job(
    snmpsim_factory: SnmpSimFactory, daemon_runner: DaemonRunner, tmp_path: Path
) -> None:
    printers = start_printers(snmpsim_factory, tmp_path, "127.0.64")
    config_path = tmp_path / "agent.yaml"
    first_three = f"{printers.addresses[0]}-{printers.addresses[2]}"

    def write(targets: list[str], **schedule: object) -> None:
        agent_config(
            config_path,
            state_dir=tmp_path / "state",
            snmp_port=printers.port,
            targets=targets,
            broker_port=None,
            http_port=None,
            schedule=schedule,
        )

    write([first_three])
    daemon = daemon_runner(config_path)
    daemon.wait_for("reads.completed", where=meters_cycle(3))

    # A bad config: rejected with the place and the reason; the old one keeps running.
    config_path.write_text(config_path.read_text().replace("meters: 1s", "meters: soon"))
    mark = daemon.mark()
    daemon.signal(signal.SIGHUP)
    rejected = daemon.wait_for("config.reload_rejected", after=mark)
    assert str(config_path) in rejected["reason"]
    assert "schedule.meters" in rejected["reason"]
    assert "duration" in rejected["reason"]
    assert rejected["level"] == "error"
    assert "exception" not in rejected  # a user error: no traceback
    mark = daemon.mark()
    daemon.wait_for("reads.completed", after=mark, where=meters_cycle(3))
    assert daemon.running

    # A good config: more targets and a 1 s discovery interval take effect without a restart.
    write([printers.target_range], discovery="1s")
    mark = daemon.mark()
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("config.reloaded", after=mark)
    daemon.wait_for("reads.completed", after=mark, where=meters_cycle(5))

    # A job that raises: a host name is counted only when discovery resolves it, and
    # here it takes the sweep one address past the limit, so discovery raises
    # (TargetError) before it sends anything. (A block beyond the limit, or a malformed
    # name, is refused by the reload itself.) Logged as job.failed; the daemon goes on,
    # the meter/supply jobs keep running and discovery runs (and fails) again.
    write(
        [printers.target_range, *past_the_sweep_limit(len(printers.addresses))],
        discovery="1s",
    )
    mark = daemon.mark()
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("config.reloaded", after=mark)
    failed = daemon.wait_for("job.failed", after=mark, where=lambda e: e.get("job") == "discovery")
    assert "TargetError" in failed["error"]
    assert "exception" in failed  # our code path raised: logged with its traceback
    after_failure = daemon.mark()
    daemon.wait_for("reads.completed", after=after_failure, where=meters_cycle(5))
    daemon.wait_for("job.failed", after=after_failure, where=lambda e: e.get("job") == "discovery")
    assert daemon.running

    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert daemon.named("daemon.stopped")


#: How long the silent printer's read holds a cycle (its timeout, no retry).
SILENT_WAIT = 8


@pytest.mark.parametrize(
    ("deadline", "subnet"), [(0.3, "127.0.63"), (15.0, "127.0.65")], ids=["cancelled", "finished"]
)
async def test_sigterm_mid_cycle_leaves_a_consistent_queue_that_a_restart_delivers(
    deadline: float,
    subnet: str,
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    daemon_runner: DaemonRunner,
    udp_counter_factory: UdpCounterFactory,
    tmp_path: Path,
) -> None:
    printers = start_printers(snmpsim_factory, tmp_path, subnet)
    broker = mosquitto_factory()
    broker.stop()  # no broker at first: everything the daemon collects stays queued
    prefix = unique_prefix("sigterm")
    state = tmp_path / "state"
    key = load_or_create_key(state)
    config = agent_config(
        tmp_path / "agent.yaml",
        state_dir=state,
        snmp_port=printers.port,
        targets=[printers.target_range],
        broker_port=broker.port,
        topic_prefix=prefix,
        http_port=None,
        log_level="debug",  # poll.completed marks the start of each cycle
        # The silent printer holds each cycle for SILENT_WAIT s: the window SIGTERM must land in
        # (a loaded machine may take seconds to notice the cycle started and send it).
        snmp={"timeout": SILENT_WAIT, "retries": 0, "read_deadline": SILENT_WAIT + 4},
        shutdown_deadline=deadline,
    )
    daemon = daemon_runner(config)
    daemon.wait_for("reads.completed", where=lambda e: e.get("ok") == 5)

    # One printer goes silent: each cycle now waits SILENT_WAIT s for it after the others.
    silent_printer = printers.sims[4]
    silent_printer.stop()
    # A sink on its port drops what is sent, as a firewall would (a closed port answers ICMP
    # port unreachable at once, which would not hold the cycle).
    sink = udp_counter_factory([silent_printer.address], printers.port)
    daemon.wait_for("read.silent", after=daemon.mark())
    mark = daemon.mark()
    daemon.wait_for("poll.completed", after=mark)  # a new cycle is under way ...
    daemon.signal(signal.SIGTERM)  # ... and is interrupted
    assert await daemon.exited() == 0
    assert daemon.named("daemon.waiting_for_jobs", after=mark)
    stopping = next(i for i, e in enumerate(daemon.events()) if e["event"] == "daemon.stopping")
    if deadline < SILENT_WAIT:  # shorter than the silent read: the running cycles are cancelled
        assert daemon.named("daemon.jobs_abandoned", after=mark)
        assert daemon.named("job.cancelled", after=mark)
    else:  # the running cycles get to finish: nothing cancelled, their reads are queued
        assert not daemon.named("job.cancelled", after=mark)
        assert daemon.named("reads.completed", after=stopping)

    # The outbox reopens cleanly: every message whole, signed, chained, numbered 1..n.
    verifier = Verifier({key.key_id: key.jose_key})
    with Outbox(state / OUTBOX_FILE, Signer(key, AGENT_ID)) as outbox:
        queued = outbox.pending(100_000)
        assert outbox.depth() == len(queued) >= 10
    assert [m.sequence for m in queued] == list(range(1, len(queued) + 1))
    previous = None
    for message in queued:
        envelope = verifier.verify(message.token)
        assert envelope.sequence == message.sequence
        assert envelope.prev_hash == previous
        previous = envelope_hash(message.token)
    assert sum(m.kind == "read" for m in queued) >= 5

    # Restart with the broker back: the queued messages and the new ones all arrive.
    broker.start()
    sink.close()
    snmpsim_factory(silent_printer.data_dir, address=silent_printer.address, port=printers.port)
    consumer = await start_consumer(
        MqttSettings(host="127.0.0.1", port=broker.port, tls=False, topic_prefix=prefix),
        [key],
        tmp_path / "consumer.db",
    )
    again = daemon_runner(config, "--once")
    assert await again.exited() == 0, again.log()
    published = again.wait_for("daemon.stopped")["published"]
    assert published > len(queued)
    await consumer.wait_stored(published)
    summary = await consumer.finish()
    assert summary.stored == published
    assert summary.rejected == {}
    assert summary.gaps_open == 0
    assert summary.chain_breaks == 0
    assert summary.restarts == 0
    assert sorted(consumer.store.sequences(AGENT_ID)) == list(range(1, published + 1))
