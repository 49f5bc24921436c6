"""A small simulated fleet: one snmpsim process per printer, each on its own 127.0.1.x address.

snmpsim selects data by community, not by endpoint; each process therefore
serves a single recording copied in as ``<community>.snmprec`` (``public`` by
default), so one ``fleet-agent scan 127.0.1.1-N`` reads every device with the
default community. All processes share one UDP port, checked free on every
address before anything starts.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.snmpsim import _RESPONDER, SnmpSim, V3User, _answers, start_snmpsim

FLEET_AGENT = Path(sys.executable).with_name("fleet-agent")
SUBNET = "127.0.1"


def _port_free_everywhere(port: int, addresses: Sequence[str]) -> bool:
    for address in addresses:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                return False
    return True


def common_free_port(addresses: Sequence[str]) -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((addresses[0], 0))
            port = int(sock.getsockname()[1])
        if _port_free_everywhere(port, addresses):
            return port
    raise RuntimeError(f"no UDP port free on all of {addresses[0]}..{addresses[-1]}")


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
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [
            pool.submit(
                start_snmpsim, data_dir, work_dir, address=address, port=port, v3_user=v3_user
            )
            for data_dir, address in jobs
        ]
        sims = []
        errors = []
        for future in futures:
            try:
                sims.append(future.result())
            except RuntimeError as exc:
                errors.append(exc)
    fleet = Fleet(port, devices, sims)
    if errors:
        fleet.stop()
        raise errors[0]
    return fleet


def start_snmpsim_v3(
    data_dir: Path, log_dir: Path, *, address: str, port: int, user: V3User
) -> SnmpSim:
    """snmpsim with an SNMPv3 user. ``--v3-engine-id`` must be the very first option:
    snmpsim 1.2.2 opens an implicit engine for any option before it, and that engine
    then owns the endpoint while the v3 user lands on a second engine without one
    ("agent endpoint address(es) not specified for SNMP engine ID auto")."""
    log_path = log_dir / f"snmpsim-v3-{address}-{port}.log"
    args = [
        str(_RESPONDER),
        "--v3-engine-id=auto",
        f"--data-dir={data_dir}",
        f"--agent-udpv4-endpoint={address}:{port}",
        "--logging-method=stdout",
        "--log-level=error",
        f"--cache-dir={log_dir / 'snmpsim-cache'}",
        f"--v3-user={user.user}",
        f"--v3-auth-key={user.auth_key}",
        f"--v3-auth-proto={user.auth_proto}",
        f"--v3-priv-key={user.priv_key}",
        f"--v3-priv-proto={user.priv_proto}",
    ]
    env = dict(os.environ, SNMPSIM_ALLOW_ROOT="true")
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    communities = sorted(p.stem for p in data_dir.glob("*.snmprec"))
    sim = SnmpSim(address, port, data_dir, process, log_path, communities)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"snmpsim exited early ({process.returncode}):\n{sim.log()}")
        if _answers(address, port, communities[0]):
            return sim
        time.sleep(0.1)
    sim.stop()
    raise RuntimeError(f"snmpsim v3 on {address}:{port} did not answer:\n{sim.log()}")


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
