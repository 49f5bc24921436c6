"""`fleet-agent run` as a subprocess against a simulated fleet, for the daemon's integration tests.

* :func:`start_printers` serves :data:`agent.demo.fleet.DEMO_FLEET` (or any specs) through
  the ``snmpsim_factory`` fixture, one process per printer on ``{subnet}.1``, ``.2``, ...
  sharing one UDP port.
* :func:`agent_config` writes a daemon configuration with short intervals and no jitter.
* ``daemon_runner`` starts daemons whose JSON log lines go to a file; :class:`DaemonProcess`
  waits for log events, sends signals and is killed at the end of the test if still running.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest
import yaml

from agent.demo.fleet import DEMO_FLEET, PrinterSpec, to_snmprec
from collectors.targets import HUGE_LIMIT

if TYPE_CHECKING:  # imported lazily: plugins load alphabetically, snmpsim after this module
    from tests.support.snmpsim import SnmpSim, SnmpSimFactory

FLEET_AGENT = Path(sys.executable).with_name("fleet-agent")
Event = dict[str, Any]


@dataclass
class Printers:
    port: int
    addresses: list[str]
    sims: list[SnmpSim]
    specs: Sequence[PrinterSpec]

    @property
    def target_range(self) -> str:
        return f"{self.addresses[0]}-{self.addresses[-1]}"

    def serials(self) -> set[str]:
        return {spec.serial for spec in self.specs}


def start_printers(
    snmpsim_factory: SnmpSimFactory,
    work_dir: Path,
    subnet: str,
    specs: Sequence[PrinterSpec] = DEMO_FLEET,
) -> Printers:
    from tests.support.snmpsim_fleet import common_free_port

    addresses = [f"{subnet}.{n}" for n in range(1, len(specs) + 1)]
    port = common_free_port(addresses)
    sims = []
    for spec, address in zip(specs, addresses, strict=True):
        data_dir = work_dir / f"printer-{address}"
        data_dir.mkdir(parents=True)
        (data_dir / "public.snmprec").write_text(to_snmprec(spec))
        sims.append(snmpsim_factory(data_dir, address=address, port=port))
    return Printers(port, addresses, sims, specs)


def past_the_sweep_limit(counted: int) -> list[str]:
    """Targets that pass the configuration and make discovery fail when it runs, silently.

    A private range filling the sweep limit up to ``counted`` addresses given
    beside it, and ``localhost`` (resolved from /etc/hosts, no DNS query). Names
    are counted only once resolved, so the configuration is accepted, and the
    discovery job refuses the sweep (TargetError: more than 262,144 addresses)
    before it sends a packet.
    """
    first = ipaddress.IPv4Address("10.0.0.0")
    last = first + (HUGE_LIMIT - counted) - 1
    return [f"{first}-{last}", "localhost"]


def agent_config(
    path: Path,
    *,
    state_dir: Path,
    snmp_port: int,
    targets: Sequence[str],
    broker_port: int | None,
    topic_prefix: str = "fleet",
    agent_id: str = "test-agent",
    policy: Path | None = None,
    http_port: int | None = 0,
    schedule: Mapping[str, Any] | None = None,
    snmp: Mapping[str, Any] | None = None,
    log_level: str = "info",
    shutdown_deadline: float = 5.0,
    liveness: Mapping[str, Any] | None = None,
) -> Path:
    """Write a daemon config to ``path``: 1 s meter/supply cycles, no jitter."""
    upload: dict[str, Any] = {"enabled": broker_port is not None}
    if broker_port is not None:
        upload["mqtt"] = {
            "host": "127.0.0.1",
            "port": broker_port,
            "tls": False,
            "topic_prefix": topic_prefix,
            "connect_timeout": 2,
            "ack_timeout": 5,
            "backoff_min": 0.1,
            "backoff_max": 0.5,
        }
    data: dict[str, Any] = {
        "agent_id": agent_id,
        "site": "lab",
        "state_dir": str(state_dir),
        "log_level": log_level,
        "shutdown_deadline": shutdown_deadline,
        "snmp": {
            "port": snmp_port,
            "timeout": 1,
            "retries": 1,
            "read_deadline": 10,
            **(snmp or {}),
        },
        "discovery": {"targets": list(targets), "rate": 1000},
        "schedule": {
            "discovery": "1h",
            "meters": "1s",
            "supplies": "1s",
            "jitter": 0,
            "misfire_grace": 30,
            **(schedule or {}),
        },
        "upload": upload,
        "http": {"enabled": http_port is not None, "port": http_port or 0},
    }
    if policy is not None:
        data["eligibility"] = {"policy": str(policy)}
    if liveness is not None:
        data["liveness"] = dict(liveness)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class DaemonProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    _consumed: int = field(default=0)

    def events(self) -> list[Event]:
        """Every JSON log line so far (anything else the process printed is skipped)."""
        out = []
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "event" in record:
                out.append(record)
        return out

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def mark(self) -> int:
        """A position in the event list: later ``wait_for(..., after=mark)`` see only newer ones."""
        return len(self.events())

    def wait_for(
        self,
        name: str,
        *,
        after: int = 0,
        where: Callable[[Event], bool] = lambda _e: True,
        timeout: float = 90.0,  # a loaded CI machine; only a failing wait pays it
    ) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events()[after:]:
                if event.get("event") == name and where(event):
                    return event
            if self.process.poll() is not None:
                # one last look: the event may have been written just before the exit
                for event in self.events()[after:]:
                    if event.get("event") == name and where(event):
                        return event
                code = self.process.returncode
                raise AssertionError(f"daemon exited ({code}) before {name}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {name} within {timeout} s:\n{self.log()[-4000:]}")
            time.sleep(0.05)

    def named(self, name: str, *, after: int = 0) -> list[Event]:
        return [e for e in self.events()[after:] if e.get("event") == name]

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout=timeout)

    async def exited(self) -> int:
        """Wait (90 s at most) for the exit without blocking the test's event loop."""
        return await asyncio.to_thread(self.process.wait, 90)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def http_port(self) -> int:
        return int(self.wait_for("http.listening")["port"])

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


class DaemonRunner(Protocol):
    def __call__(
        self, config: Path, *args: str, env: Mapping[str, str] | None = None
    ) -> DaemonProcess: ...


@pytest.fixture
def daemon_runner(tmp_path: Path) -> Iterator[DaemonRunner]:
    """Start ``fleet-agent run --config FILE [ARGS]``; leftovers are killed after the test."""
    started: list[DaemonProcess] = []

    def run(config: Path, *args: str, env: Mapping[str, str] | None = None) -> DaemonProcess:
        log_path = tmp_path / f"daemon-{len(started) + 1}.log"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_AGENT_")}
        environ.update(env or {})
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(FLEET_AGENT), "run", "--config", str(config), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environ,
            )
        daemon = DaemonProcess(process, log_path)
        started.append(daemon)
        return daemon

    yield run
    for daemon in started:
        daemon.kill()
