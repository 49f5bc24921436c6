"""A small simulated fleet: one snmpsim process per printer, each on its own 127.0.1.x address.

snmpsim selects data by community, not by endpoint; each process therefore
serves a single recording copied in as ``<community>.snmprec`` (``public`` by
default), so one ``fleet-agent scan 127.0.1.1-N`` reads every device with the
default community. All processes share one UDP port, checked free on every
address before anything starts. The port search and the parallel start are the
demo's own (:mod:`agent.demo.sim`, :mod:`agent.demo.process`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from agent.demo import process as processes
from agent.demo.sim import common_free_udp_port
from tests.support.snmpsim import SnmpSim, V3User, start_snmpsim

FLEET_AGENT = Path(sys.executable).with_name("fleet-agent")
SUBNET = "127.0.1"


common_free_port = common_free_udp_port


@dataclass
class Fleet:
    port: int
    devices: dict[str, Path]  # address -> recording it serves
    sims: list[SnmpSim]

    def stop(self) -> None:
        for sim in self.sims:
            sim.stop()

    def address_of(self, recording_name: str) -> str:
        for address, path in self.devices.items():
            if path.name == recording_name:
                return address
        raise KeyError(recording_name)


def start_fleet(
    recordings: Sequence[Path],
    work_dir: Path,
    *,
    first_host: int = 1,
    community: str = "public",
    v3_user: V3User | None = None,
    ready_timeout: float = 90.0,  # a loaded CI machine can take over 20 s
) -> Fleet:
    addresses = [f"{SUBNET}.{first_host + n}" for n in range(len(recordings))]
    port = common_free_port(addresses)
    devices: dict[str, Path] = {}
    jobs = []
    for address, recording in zip(addresses, recordings, strict=True):
        data_dir = work_dir / f"data-{address}"
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(recording, data_dir / f"{community}.snmprec")
        devices[address] = recording
        jobs.append((data_dir, address))
    starters = [
        partial(
            start_snmpsim,
            data_dir,
            work_dir,
            address=address,
            port=port,
            v3_user=v3_user,
            ready_timeout=ready_timeout,
        )
        for data_dir, address in jobs
    ]
    return Fleet(port, devices, processes.start_all(starters, failures=(RuntimeError,)))


@dataclass
class ScanRun:
    returncode: int
    stdout: str
    stderr: str

    def reads(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def run_scan(*args: str, timeout: float = 120, stdout: Any = None) -> ScanRun:
    """``fleet-agent scan ARGS`` as a subprocess (the installed console script)."""
    process = subprocess.run(
        [str(FLEET_AGENT), "scan", *args],
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    return ScanRun(process.returncode, process.stdout or "", process.stderr)


def scan_fleet_json(fleet: Fleet, *, timeout: float = 1, retries: int = 1) -> ScanRun:
    """One ``scan --format json`` of every device of ``fleet`` (they are consecutive)."""
    addresses = sorted(fleet.devices, key=lambda address: int(address.rsplit(".", 1)[1]))
    first, last = addresses[0], addresses[-1].rsplit(".", 1)[1]
    return run_scan(
        f"{first}-{last}",
        "--snmp-port",
        str(fleet.port),
        "--format",
        "json",
        "--timeout",
        str(timeout),
        "--retries",
        str(retries),
    )
