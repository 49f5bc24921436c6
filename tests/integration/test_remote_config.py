"""Issue 13, remote configuration: the real daemon, a real Mosquitto, snmpsim, `config push`.

One printer (snmpsim) at 127.0.93.1 and a silent UDP sink at 127.0.93.2 that counts
every datagram: the bad documents all point discovery at the sink, so "the previous
configuration still runs" is proven from the peer's side (not one packet reached it)
as well as from the daemon's (it goes on sweeping and reading the printer).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.daemon import load_or_create_key
from agent.demo.fleet import DEMO_FLEET
from agent.state import backend_key_path, remote_config_path
from tests.support.daemon import FLEET_AGENT, DaemonProcess, DaemonRunner, start_printers
from tests.support.mosquitto import Mosquitto, MosquittoFactory
from tests.support.mqtt_consumer import RunningConsumer, eventually, start_consumer, unique_prefix
from tests.support.snmpsim import SnmpSimFactory
from tests.support.udp_counter import UdpCounterFactory
from uploader.config import MqttSettings
from uploader.envelope import Verifier
from uploader.keys import AgentKey

pytestmark = pytest.mark.integration

AGENT_ID = "rc-agent"
SINK = "127.0.93.2"


def _local_config(
    path: Path, *, state: Path, snmp_port: int, broker: Mosquitto, prefix: str
) -> Path:
    """No targets and no meter/discovery intervals locally: the backend sets them."""
    data: dict[str, Any] = {
        "agent_id": AGENT_ID,
        "site": "lab",
        "state_dir": str(state),
        "shutdown_deadline": 5,
        "snmp": {"port": snmp_port, "timeout": 1, "retries": 1, "read_deadline": 10},
        "discovery": {"rate": 1000},
        "schedule": {"supplies": "1h", "jitter": 0, "misfire_grace": 30},
        "upload": {
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "tls": False,
                "topic_prefix": prefix,
                "connect_timeout": 2,
                "ack_timeout": 5,
                "backoff_min": 0.1,
                "backoff_max": 0.5,
            }
        },
        "http": {"enabled": False},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _push(
    tmp_path: Path,
    broker: Mosquitto,
    prefix: str,
    key_file: Path,
    settings: dict[str, Any],
    *extra: str,
) -> subprocess.CompletedProcess[str]:
    document = tmp_path / f"push-{len(list(tmp_path.glob('push-*.yaml')))}.yaml"
    document.write_text(yaml.safe_dump(settings))
    return subprocess.run(
        [
            str(FLEET_AGENT),
            "config",
            "push",
            str(document),
            "--site",
            "lab",
            "--backend-key",
            str(key_file),
            "--broker",
            broker.host,
            "--port",
            str(broker.port),
            "--no-tls",
            "--topic-prefix",
            prefix,
            "--format",
            "json",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _config_reports(consumer: RunningConsumer, agent_key: AgentKey) -> list[dict[str, Any]]:
    verifier = Verifier({agent_key.key_id: agent_key.jose_key})
    out = []
    for token in consumer.store.tokens(AGENT_ID):
        envelope = verifier.verify(token)
        if envelope.kind == "status" and envelope.body.get("type") == "config_status":
            out.append(dict(envelope.body))
    return out


async def _report(
    consumer: RunningConsumer, agent_key: AgentKey, version: int | None, outcome: str
) -> dict[str, Any]:
    def found() -> bool:
        return any(
            r["version"] == version and r["outcome"] == outcome
            for r in _config_reports(consumer, agent_key)
        )

    await eventually(found, within=60, what=f"config_status {outcome} v{version}")
    return next(
        r
        for r in _config_reports(consumer, agent_key)
        if r["version"] == version and r["outcome"] == outcome
    )


async def _still_sweeping_the_printer(daemon: DaemonProcess, mark: int) -> None:
    """After ``mark``: a discovery over the one printer, then a meter read of it."""
    swept = await asyncio.to_thread(daemon.wait_for, "discovery.completed", after=mark, timeout=60)
    assert (swept["addresses"], swept["printers"]) == (1, 1), swept
    later = daemon.mark()
    read = await asyncio.to_thread(
        daemon.wait_for,
        "reads.completed",
        after=later,
        where=lambda e: e.get("purpose") == "meters",
        timeout=60,
    )
    assert (read["devices"], read["ok"]) == (1, 1), read


async def test_pushes_applied_refused_rolled_back_and_kept_across_a_restart(
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    udp_counter_factory: UdpCounterFactory,
    daemon_runner: DaemonRunner,
    tmp_path: Path,
) -> None:
    printers = start_printers(snmpsim_factory, tmp_path, "127.0.93", DEMO_FLEET[:1])
    printer = printers.addresses[0]
    sink = udp_counter_factory([SINK], printers.port)
    broker = mosquitto_factory()
    prefix = unique_prefix("rconf")
    state = tmp_path / "state"
    agent_key = load_or_create_key(state)
    backend_dir = tmp_path / "backend"
    backend_key, forger_key = AgentKey.generate(), AgentKey.generate()
    backend_key.save(backend_dir / "backend.key")
    forger_key.save(backend_dir / "forger.key")
    # What enrollment pins (or the admin copies by hand): the backend's public JWK.
    backend_key_path(state).write_text(json.dumps(backend_key.public_jwk()))
    consumer = await start_consumer(
        MqttSettings(host=broker.host, port=broker.port, tls=False, topic_prefix=prefix),
        [agent_key],
        tmp_path / "backend.db",
    )
    config = _local_config(
        tmp_path / "agent.yaml", state=state, snmp_port=printers.port, broker=broker, prefix=prefix
    )
    daemon = daemon_runner(config)
    await asyncio.to_thread(daemon.wait_for, "upload.connected", timeout=60)

    # 1. A good push: applied at once (discovery runs on the new targets), reported.
    mark = daemon.mark()
    good = {"discovery": {"targets": [printer]}, "schedule": {"discovery": "3s", "meters": "2s"}}
    pushed = await asyncio.to_thread(
        _push, tmp_path, broker, prefix, backend_dir / "backend.key", good
    )
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout) == {"topic": f"{prefix}/lab/config", "version": 1}
    applied = await asyncio.to_thread(daemon.wait_for, "config.remote_applied", after=mark)
    assert applied["version"] == 1
    await _still_sweeping_the_printer(daemon, mark)
    report = await _report(consumer, agent_key, 1, "applied")
    assert report["applied_version"] == 1
    assert json.loads(remote_config_path(state).read_text())["version"] == 1

    # 2. Signed by another key (to this agent alone): refused, nothing changes.
    mark = daemon.mark()
    forged = {"discovery": {"targets": [SINK]}}
    pushed = await asyncio.to_thread(
        _push,
        tmp_path,
        broker,
        prefix,
        backend_dir / "forger.key",
        forged,
        "--agent",
        AGENT_ID,
    )
    assert pushed.returncode == 0, pushed.stderr
    refused = await asyncio.to_thread(daemon.wait_for, "config.remote_refused", after=mark)
    assert refused["reason"] == "rejected"
    assert "unknown_key" in refused["detail"]
    report = await _report(consumer, agent_key, None, "refused")
    assert report["reason"] == "rejected"
    assert report["applied_version"] == 1
    await _still_sweeping_the_printer(daemon, mark)

    # 3. An invalid target: refused with the field, exactly as `config check` words it.
    mark = daemon.mark()
    invalid = {"discovery": {"targets": [SINK, "224.0.1.0/24"]}}
    pushed = await asyncio.to_thread(
        _push, tmp_path, broker, prefix, backend_dir / "backend.key", invalid, "--agent", AGENT_ID
    )
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["version"] == 2  # above the retained v1 (the forgery ignored)
    refused = await asyncio.to_thread(daemon.wait_for, "config.remote_refused", after=mark)
    assert refused["reason"] == "invalid"
    assert refused["detail"].startswith(
        f"remote config v2 (agent {AGENT_ID} at site lab): discovery.targets[1]: target "
        "'224.0.1.0/24'"
    ), refused["detail"]
    report = await _report(consumer, agent_key, 2, "refused")
    assert report["reason"] == "invalid"
    assert report["applied_version"] == 1
    await _still_sweeping_the_printer(daemon, mark)

    # 4. Valid, but the jobs cannot be scheduled with it: applied, failed, rolled back.
    mark = daemon.mark()
    unstartable = {"discovery": {"targets": [SINK]}, "schedule": {"meters": "99999999999d"}}
    pushed = await asyncio.to_thread(
        _push, tmp_path, broker, prefix, backend_dir / "backend.key", unstartable
    )
    assert pushed.returncode == 0, pushed.stderr
    assert json.loads(pushed.stdout)["version"] == 3
    rolled = await asyncio.to_thread(daemon.wait_for, "config.remote_rolled_back", after=mark)
    assert rolled["reason"] == "cannot_start"
    assert rolled["applied_version"] == 1
    assert "previous one restored" in rolled["detail"]
    report = await _report(consumer, agent_key, 3, "rolled_back")
    assert report["applied_version"] == 1
    await _still_sweeping_the_printer(daemon, mark)
    assert json.loads(remote_config_path(state).read_text())["version"] == 1
    assert sink.count() == 0, "a refused configuration reached the network"
    assert daemon.running

    # 5. Restarted with the broker down: the last good document runs before any reconnect.
    daemon.signal(signal.SIGTERM)
    assert await daemon.exited() == 0
    await consumer.finish()
    broker.stop()
    restarted = daemon_runner(config)
    loaded = await asyncio.to_thread(restarted.wait_for, "config.remote_loaded")
    assert loaded["version"] == 1
    assert restarted.wait_for("daemon.started")["config_version"] == 1
    await _still_sweeping_the_printer(restarted, 0)
    assert restarted.named("upload.connected") == []
    assert sink.count() == 0
    restarted.signal(signal.SIGTERM)
    assert await restarted.exited() == 0
