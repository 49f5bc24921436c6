"""Invalid discovery targets at start-up and on SIGHUP; ``run --once`` fails when a job did.

Each invalid kind is refused with file:line:field before anything is swept: at
start-up the daemon exits 2 without a traceback, on SIGHUP the reload is
rejected and the running configuration keeps reading.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.daemon import DaemonRunner, agent_config, past_the_sweep_limit, start_printers
from tests.support.snmpsim import SnmpSimFactory

pytestmark = pytest.mark.integration

INVALID = {
    "bad-prefix": "10.0.0.0/33",
    "reversed-range": "10.0.0.200-10.0.0.10",
    "huge": "10.0.0.0/8",
    "everything": "0.0.0.0/0",
    "this-network": "0.1.2.3",
    "multicast": "224.0.1.0/24",
    "reserved": "240.0.0.0/28",
    "broadcast": "255.255.255.255",
    "public": "8.8.8.0/24",
    "name-long-label": "p" * 64 + ".example",
    "name-underscore": "print_server.example",
}


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize("kind", sorted(INVALID))
def test_start_up_refuses_an_invalid_target(
    kind: str, daemon_runner: DaemonRunner, tmp_path: Path
) -> None:
    spec = INVALID[kind]
    config = agent_config(
        tmp_path / "agent.yaml",
        state_dir=tmp_path / "state",
        snmp_port=16100,
        targets=["127.0.70.1", spec],
        broker_port=None,
        http_port=None,
    )
    daemon = daemon_runner(config)
    assert daemon.wait(timeout=60) == 2
    output = daemon.log()
    line = _line_of(config, spec) if kind != "huge" else _line_of(config, "127.0.70.1")
    field = "discovery.targets[1]" if kind != "huge" else "discovery.targets"
    assert f"{config}:{line}: {field}: target" in output, output
    assert "Traceback" not in output
    assert not (tmp_path / "state" / "outbox.db").exists()  # nothing was started


def test_sighup_refuses_each_invalid_target_and_keeps_reading(
    snmpsim_factory: SnmpSimFactory, daemon_runner: DaemonRunner, tmp_path: Path
) -> None:
    printers = start_printers(snmpsim_factory, tmp_path, "127.0.71")
    config_path = tmp_path / "agent.yaml"

    def write(targets: list[str]) -> None:
        agent_config(
            config_path,
            state_dir=tmp_path / "state",
            snmp_port=printers.port,
            targets=targets,
            broker_port=None,
            http_port=None,
        )

    write([printers.target_range])
    daemon = daemon_runner(config_path)
    every = len(printers.addresses)
    daemon.wait_for("reads.completed", where=lambda e: e.get("devices") == every, timeout=60)
    for kind, spec in sorted(INVALID.items()):
        write([printers.target_range, spec])
        mark = daemon.mark()
        daemon.signal(signal.SIGHUP)
        rejected = daemon.wait_for("config.reload_rejected", after=mark)
        field = "discovery.targets[1]" if kind != "huge" else "discovery.targets"
        assert f"{config_path}:" in rejected["reason"], kind
        assert f": {field}: target" in rejected["reason"], (kind, rejected["reason"])
        assert "exception" not in rejected
        # the running configuration goes on: a full meter cycle after the rejection
        daemon.wait_for(
            "reads.completed", after=mark, where=lambda e: e.get("devices") == every, timeout=60
        )
        assert not daemon.named("job.failed")
    assert daemon.running
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


def test_run_once_exits_non_zero_when_a_job_failed(
    snmpsim_factory: SnmpSimFactory, daemon_runner: DaemonRunner, tmp_path: Path
) -> None:
    printers = start_printers(snmpsim_factory, tmp_path, "127.0.72")
    # Valid targets whose host name is counted only when discovery resolves it: the
    # sweep is then one address over the limit and the job fails, sending nothing.
    config = agent_config(
        tmp_path / "agent.yaml",
        state_dir=tmp_path / "state",
        snmp_port=printers.port,
        targets=[printers.target_range, *past_the_sweep_limit(len(printers.addresses))],
        broker_port=None,
        http_port=None,
    )
    daemon = daemon_runner(config, "--once")
    assert daemon.wait(timeout=90) == 1
    failed = daemon.named("job.failed")
    assert [event["job"] for event in failed] == ["discovery"]
    assert "TargetError" in failed[0]["error"]
    assert daemon.named("daemon.once_failed")[0]["jobs"] == ["discovery"]

    good = agent_config(
        tmp_path / "good.yaml",
        state_dir=tmp_path / "state",
        snmp_port=printers.port,
        targets=[printers.target_range],
        broker_port=None,
        http_port=None,
    )
    assert daemon_runner(good, "--once").wait(timeout=90) == 0
