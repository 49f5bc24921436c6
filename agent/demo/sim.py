"""The demo's simulated printers: one snmpsim process per printer, each on its own address.

snmpsim 1.2 selects data by community, not by endpoint, so each process serves a
single recording saved as ``public.snmprec``; all processes share one UDP port,
checked free on every address first. Readiness is one hand-encoded SNMPv2c GET
of sysObjectID (no SNMP library needed to know that a simulator answers).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from agent.demo.fleet import PrinterSpec, to_snmprec
from agent.errors import FleetAgentError

COMMUNITY = "public"


class DemoError(FleetAgentError):
    """A part of the demo could not be set up; the message says what to install or free."""


def responder_path() -> Path | None:
    """``snmpsim-command-responder`` beside this Python, else on ``$PATH``."""
    beside = Path(sys.executable).with_name("snmpsim-command-responder")
    if beside.exists():
        return beside
    found = shutil.which("snmpsim-command-responder")
    return Path(found) if found else None


def snmp_probe(address: str, port: int, community: str = COMMUNITY, timeout: float = 0.3) -> bool:
    """True when an SNMPv2c GET of sysObjectID.0 gets any answer."""
    oid = bytes([0x2B, 6, 1, 2, 1, 1, 2, 0])  # 1.3.6.1.2.1.1.2.0
    varbind = b"\x30" + bytes([len(oid) + 4]) + b"\x06" + bytes([len(oid)]) + oid + b"\x05\x00"
    varbinds = b"\x30" + bytes([len(varbind)]) + varbind
    pdu_body = b"\x02\x01\x01" + b"\x02\x01\x00" + b"\x02\x01\x00" + varbinds
    pdu = b"\xa0" + bytes([len(pdu_body)]) + pdu_body
    name = community.encode()
    body = b"\x02\x01\x01" + b"\x04" + bytes([len(name)]) + name + pdu
    packet = b"\x30" + bytes([len(body)]) + body
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(packet, (address, port))
            sock.recvfrom(65535)
        except OSError:
            return False
    return True


def common_free_udp_port(addresses: Sequence[str]) -> int:
    """A UDP port free on every one of ``addresses``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((addresses[0], 0))
            port = int(sock.getsockname()[1])
        if all(_udp_free(address, port) for address in addresses):
            return port
    raise DemoError(f"no UDP port is free on all of {addresses[0]}..{addresses[-1]}")


def _udp_free(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


@dataclass
class SimulatedPrinter:
    spec: PrinterSpec
    address: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@dataclass
class SimulatedFleet:
    port: int
    printers: list[SimulatedPrinter] = field(default_factory=list)

    @property
    def addresses(self) -> list[str]:
        return [p.address for p in self.printers]

    def stop(self) -> None:
        for printer in self.printers:
            printer.stop()


def _start_one(
    responder: Path, spec: PrinterSpec, address: str, port: int, work_dir: Path
) -> SimulatedPrinter:
    data_dir = work_dir / spec.name
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / f"{COMMUNITY}.snmprec").write_text(to_snmprec(spec), encoding="utf-8")
    log_path = work_dir / f"snmpsim-{spec.name}.log"
    args = [
        str(responder),
        f"--data-dir={data_dir}",
        f"--agent-udpv4-endpoint={address}:{port}",
        "--logging-method=stdout",
        "--log-level=error",
        f"--cache-dir={work_dir / ('cache-' + spec.name)}",
    ]
    env = dict(os.environ, SNMPSIM_ALLOW_ROOT="true")
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)  # noqa: S603
    printer = SimulatedPrinter(spec, address, port, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(
                f"snmpsim for {spec.name} on {address}:{port} exited ({process.returncode}):\n"
                + printer.log()[-2000:]
            )
        if snmp_probe(address, port):
            return printer
        time.sleep(0.1)
    printer.stop()
    raise DemoError(f"snmpsim for {spec.name} on {address}:{port} did not answer within 30 s")


def start_fleet(
    specs: Sequence[PrinterSpec], work_dir: Path, *, subnet: str = "127.0.50", first_host: int = 1
) -> SimulatedFleet:
    """Render each spec and serve it from ``{subnet}.{first_host + n}`` (all on one UDP port)."""
    responder = responder_path()
    if responder is None:
        raise DemoError(
            "snmpsim is not installed (needed to simulate printers): "
            "pip install -e '.[demo]' (or run scripts/demo.sh)"
        )
    addresses = [f"{subnet}.{first_host + n}" for n in range(len(specs))]
    port = common_free_udp_port(addresses)
    work_dir.mkdir(parents=True, exist_ok=True)
    fleet = SimulatedFleet(port)
    errors: list[DemoError] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [
            pool.submit(_start_one, responder, spec, address, port, work_dir)
            for spec, address in zip(specs, addresses, strict=True)
        ]
        for future in futures:
            try:
                fleet.printers.append(future.result())
            except DemoError as exc:
                errors.append(exc)
    if errors:
        fleet.stop()
        raise errors[0]
    return fleet
