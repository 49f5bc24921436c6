"""Issue 13, remote configuration: the real daemon, a real Mosquitto, snmpsim, `config push`.

One printer (snmpsim) at .1 and a silent UDP sink at .2 of a 127.0.9x block that counts
every datagram: the bad documents all point discovery at the sink, so "the previous
configuration still runs" is proven from the peer's side (not one packet reached it)
as well as from the daemon's (it goes on sweeping and reading the printer).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.daemon import load_or_create_key
from agent.demo.fleet import DEMO_FLEET
from agent.state import backend_key_path, remote_config_path
from backend.config_push import push
from tests.support.daemon import FLEET_AGENT, DaemonProcess, DaemonRunner, start_printers
from tests.support.mosquitto import Mosquitto, MosquittoFactory
from tests.support.mqtt_consumer import RunningConsumer, start_consumer, unique_prefix
from tests.support.snmpsim import SnmpSimFactory
from tests.support.udp_counter import UdpCounter, UdpCounterFactory
from uploader.config import MqttSettings
from uploader.envelope import Verifier
from uploader.keys import AgentKey

pytestmark = pytest.mark.integration

AGENT_ID = "rc-agent"


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
        timeout=120,
    )


def _config_reports(consumer: RunningConsumer, agent_key: AgentKey) -> list[dict[str, Any]]:
    verifier = Verifier({agent_key.key_id: agent_key.jose_key})
    out = []
    for token in consumer.store.tokens(AGENT_ID):
        envelope = verifier.verify(token)
        if envelope.kind == "status" and envelope.body.get("report") == "config_status":
            out.append(dict(envelope.body))
    return out


async def _report(
    consumer: RunningConsumer, agent_key: AgentKey, version: int | None, outcome: str
) -> dict[str, Any]:
    """The agent's signed config_status report of ``version``, once the backend stored it."""
    deadline = time.monotonic() + 60
    while True:
        for report in _config_reports(consumer, agent_key):
            if report["version"] == version and report["outcome"] == outcome:
                return report
        if time.monotonic() > deadline:
            raise AssertionError(f"no config_status {outcome} v{version} stored within 60 s")
        await asyncio.sleep(0.5)


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


@dataclass
class Site:
    tmp_path: Path
    printer: str
    sink: UdpCounter
    broker: Mosquitto
    prefix: str
    state: Path
    agent_key: AgentKey
    backend_dir: Path
    consumer: RunningConsumer
    config: Path
    daemon: DaemonProcess

    async def push(self, key: str, settings: dict[str, Any], agent: str | None = None) -> int:
        """The backend's push (in this process), signed with ``backend_dir/{key}.key``."""
        pushed = await push(
            MqttSettings(
                host=self.broker.host, port=self.broker.port, tls=False, topic_prefix=self.prefix
            ),
            AgentKey.load(self.backend_dir / f"{key}.key"),
            settings,
            site="lab",
            agent_id=agent,
        )
        return pushed.version

    async def push_cli(self, key: str, settings: dict[str, Any], *extra: str) -> int:
        """``fleet-agent config push``, signed with ``backend_dir/{key}.key``."""
        done = await asyncio.to_thread(
            _push,
            self.tmp_path,
            self.broker,
            self.prefix,
            self.backend_dir / f"{key}.key",
            settings,
            *extra,
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["topic"] == f"{self.prefix}/lab/config"
        return int(result["version"])


async def _site(
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    udp_counter_factory: UdpCounterFactory,
    daemon_runner: DaemonRunner,
    tmp_path: Path,
    subnet: str,
) -> Site:
    """A printer, a silent sink, a broker, the backend's consumer and a connected daemon."""
    printers = start_printers(snmpsim_factory, tmp_path, subnet, DEMO_FLEET[:1])
    sink = udp_counter_factory([f"{subnet}.2"], printers.port)
    broker = mosquitto_factory()
    prefix = unique_prefix("rconf")
    state = tmp_path / "state"
    agent_key = load_or_create_key(state)
    backend_dir = tmp_path / "backend"
    AgentKey.generate().save(backend_dir / "backend.key")
    AgentKey.generate().save(backend_dir / "forger.key")
    # What enrollment pins (or the admin copies by hand): the backend's public JWK.
    backend_public = AgentKey.load(backend_dir / "backend.key").public_jwk()
    backend_key_path(state).write_text(json.dumps(backend_public))
    consumer = await start_consumer(
        MqttSettings(host=broker.host, port=broker.port, tls=False, topic_prefix=prefix),
        [agent_key],
        tmp_path / "backend.db",
    )
    config = _local_config(
        tmp_path / "agent.yaml", state=state, snmp_port=printers.port, broker=broker, prefix=prefix
    )
    daemon = daemon_runner(config)
    await asyncio.to_thread(daemon.wait_for, "upload.connected", timeout=120)
    return Site(
        tmp_path,
        printers.addresses[0],
        sink,
        broker,
        prefix,
        state,
        agent_key,
        backend_dir,
        consumer,
        config,
        daemon,
    )


async def _good_push(site: Site, *, cli: bool) -> None:
    """Version 1 for the whole site: applied at once (discovery sweeps it now), reported."""
    mark = site.daemon.mark()
    good = {
        "discovery": {"targets": [site.printer]},
        "schedule": {"discovery": "3s", "meters": "2s"},
    }
    version = await (site.push_cli("backend", good) if cli else site.push("backend", good))
    assert version == 1
    applied = await asyncio.to_thread(site.daemon.wait_for, "config.remote_applied", after=mark)
    assert applied["version"] == 1
    await _still_sweeping_the_printer(site.daemon, mark)
    report = await _report(site.consumer, site.agent_key, 1, "applied")
    assert report["applied_version"] == 1
    assert json.loads(remote_config_path(site.state).read_text())["version"] == 1


async def test_a_good_push_applies_bad_ones_are_refused_or_rolled_back(
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    udp_counter_factory: UdpCounterFactory,
    daemon_runner: DaemonRunner,
    tmp_path: Path,
) -> None:
    site = await _site(
        snmpsim_factory, mosquitto_factory, udp_counter_factory, daemon_runner, tmp_path, "127.0.93"
    )
    daemon, consumer, agent_key, sink = site.daemon, site.consumer, site.agent_key, site.sink
    sink_address = "127.0.93.2"
    await _good_push(site, cli=True)

    # 2. Signed by another key (to this agent alone): refused, nothing changes.
    mark = daemon.mark()
    await site.push("forger", {"discovery": {"targets": [sink_address]}}, AGENT_ID)
    refused = await asyncio.to_thread(daemon.wait_for, "config.remote_refused", after=mark)
    assert refused["reason"] == "rejected"
    assert "unknown_key" in refused["detail"]
    report = await _report(consumer, agent_key, None, "refused")
    assert report["reason"] == "rejected"
    assert report["applied_version"] == 1
    await _still_sweeping_the_printer(daemon, mark)

    # 3. An invalid target: refused with the field, exactly as `config check` words it.
    mark = daemon.mark()
    invalid = {"discovery": {"targets": [sink_address, "224.0.1.0/24"]}}
    # above the retained v1; the forgery retained on the agent's topic does not count
    assert await site.push("backend", invalid, AGENT_ID) == 2
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
    unstartable = {"discovery": {"targets": [sink_address]}, "schedule": {"meters": "99999999999d"}}
    assert await site.push("backend", unstartable) == 3
    rolled = await asyncio.to_thread(daemon.wait_for, "config.remote_rolled_back", after=mark)
    assert rolled["reason"] == "cannot_start"
    assert rolled["applied_version"] == 1
    assert "previous one restored" in rolled["detail"]
    report = await _report(consumer, agent_key, 3, "rolled_back")
    assert report["applied_version"] == 1
    await _still_sweeping_the_printer(daemon, mark)
    assert json.loads(remote_config_path(site.state).read_text())["version"] == 1
    assert sink.count() == 0, "a refused configuration reached the network"
    assert daemon.running
    daemon.signal(signal.SIGTERM)
    assert await daemon.exited() == 0


async def test_an_agent_restarted_after_a_push_runs_it_before_reconnecting(
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    udp_counter_factory: UdpCounterFactory,
    daemon_runner: DaemonRunner,
    tmp_path: Path,
) -> None:
    site = await _site(
        snmpsim_factory, mosquitto_factory, udp_counter_factory, daemon_runner, tmp_path, "127.0.94"
    )
    await _good_push(site, cli=False)
    site.daemon.signal(signal.SIGTERM)
    assert await site.daemon.exited() == 0
    site.broker.stop()  # restarted with the broker down: only the last good file can say
    await site.consumer.finish()
    restarted = daemon_runner(site.config)
    loaded = await asyncio.to_thread(restarted.wait_for, "config.remote_loaded", timeout=120)
    assert loaded["version"] == 1
    assert restarted.wait_for("daemon.started")["config_version"] == 1
    await _still_sweeping_the_printer(restarted, 0)
    assert restarted.named("upload.connected") == []
    restarted.signal(signal.SIGTERM)
    assert await restarted.exited() == 0
