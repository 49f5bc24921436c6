"""A remote-configuration site for the daemon's integration tests (issue 13).

:func:`start_site` serves printers with snmpsim (on ``{subnet}.1``, ...) and a silent
UDP sink at ``{subnet}.{n+1}`` that counts every datagram, starts Mosquitto, the
backend's consumer and a daemon whose local file sets no targets and no meter or
discovery intervals (the backend sets them), with the backend's public key pinned.
:meth:`Site.push` / :meth:`Site.push_cli` publish signed documents;
:func:`wait_report` waits for the agent's signed ``config_status`` at the backend.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from agent.demo.fleet import DEMO_FLEET, PrinterSpec
from agent.state import backend_key_path, load_or_create_key
from backend.config_push import push
from tests.support.daemon import FLEET_AGENT, DaemonProcess, DaemonRunner, start_printers
from tests.support.mosquitto import Mosquitto, MosquittoFactory
from tests.support.mqtt_consumer import RunningConsumer, start_consumer, unique_prefix
from uploader.config import MqttSettings
from uploader.envelope import Verifier
from uploader.keys import AgentKey

if TYPE_CHECKING:  # imported lazily: plugins load alphabetically, these after this module
    from tests.support.snmpsim import SnmpSimFactory
    from tests.support.udp_counter import UdpCounter, UdpCounterFactory

AGENT_ID = "rc-agent"


def local_config(
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


def push_cli(
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


def config_reports(consumer: RunningConsumer, agent_key: AgentKey) -> list[dict[str, Any]]:
    verifier = Verifier({agent_key.key_id: agent_key.jose_key})
    out = []
    for token in consumer.store.tokens(AGENT_ID):
        envelope = verifier.verify(token)
        if envelope.kind == "status" and envelope.body.get("report") == "config_status":
            out.append(dict(envelope.body))
    return out


async def wait_report(
    consumer: RunningConsumer, agent_key: AgentKey, version: int | None, outcome: str
) -> dict[str, Any]:
    """The agent's signed config_status report of ``version``, once the backend stored it."""
    deadline = time.monotonic() + 60
    while True:
        for report in config_reports(consumer, agent_key):
            if report["version"] == version and report["outcome"] == outcome:
                return report
        if time.monotonic() > deadline:
            raise AssertionError(f"no config_status {outcome} v{version} stored within 60 s")
        await asyncio.sleep(0.5)


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
            push_cli,
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


async def start_site(
    snmpsim_factory: SnmpSimFactory,
    mosquitto_factory: MosquittoFactory,
    udp_counter_factory: UdpCounterFactory,
    daemon_runner: DaemonRunner,
    tmp_path: Path,
    subnet: str,
    specs: Sequence[PrinterSpec] = DEMO_FLEET[:1],
) -> Site:
    """A printer, a silent sink, a broker, the backend's consumer and a connected daemon."""
    printers = start_printers(snmpsim_factory, tmp_path, subnet, specs)
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
    config = local_config(
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
