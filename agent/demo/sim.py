"""The demo's simulated printers: one snmpsim process per printer, each on its own address.

snmpsim 1.2 selects data by community, not by endpoint, so each process serves a
single recording saved as ``public.snmprec``; all processes share one UDP port,
checked free on every address first. Readiness is one SNMPv2c GET of
sysObjectID encoded by the agent's own BER code (no SNMP engine needed to know
that a simulator answers). The test fixtures start snmpsim with the same pieces.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from agent.demo import process as processes
from agent.demo.fleet import PrinterSpec, to_snmprec
from agent.errors import LocalError
from collectors.snmp_message import PduKind, encode_request

COMMUNITY = "public"
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)


class DemoError(LocalError):
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
    packet = encode_request(
        version="v2c",
        community=community.encode(),
        kind=PduKind.GET,
        request_id=1,
        oids=[SYS_OBJECT_ID],
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(packet, (address, port))
            sock.recvfrom(65535)
        except OSError:
            return False
    return True


def snmpsim_args(
    responder: Path,
    data_dir: Path,
    address: str,
    port: int,
    cache_dir: Path,
    *,
    engine_options: Sequence[str] = (),
) -> list[str]:
    """The command line of one ``snmpsim-command-responder`` serving ``data_dir``.

    ``engine_options`` (SNMPv3 users) go before the endpoint: snmpsim 1.2 gives
    them to the engine that the next endpoint option then belongs to.
    """
    return [
        str(responder),
        f"--data-dir={data_dir}",
        *engine_options,
        f"--agent-udpv4-endpoint={address}:{port}",
        "--logging-method=stdout",
        "--log-level=error",
        f"--cache-dir={cache_dir}",
    ]


def spawn_snmpsim(args: Sequence[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start snmpsim; it refuses to run as root unless told it may."""
    return processes.spawn(args, log_path, env=dict(os.environ, SNMPSIM_ALLOW_ROOT="true"))


def wait_for_snmp(
    process: subprocess.Popen[bytes], address: str, port: int, community: str, timeout: float
) -> bool:
    """True once the simulator answers; False if it exited or ``timeout`` passed."""
    return processes.wait_until(
        process, partial(snmp_probe, address, port, community), timeout, interval=0.1
    )


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
        processes.stop(self.process, grace=5)


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


#: snmpsim compiles its data on start: over 30 s on a busy two-core machine.
START_TIMEOUT = 90.0


def _start_one(
    responder: Path, spec: PrinterSpec, address: str, port: int, work_dir: Path
) -> SimulatedPrinter:
    data_dir = work_dir / spec.name
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / f"{COMMUNITY}.snmprec").write_text(to_snmprec(spec), encoding="utf-8")
    log_path = work_dir / f"snmpsim-{spec.name}.log"
    cache_dir = work_dir / ("cache-" + spec.name)
    process = spawn_snmpsim(snmpsim_args(responder, data_dir, address, port, cache_dir), log_path)
    printer = SimulatedPrinter(spec, address, port, process, log_path)
    if wait_for_snmp(process, address, port, COMMUNITY, timeout=START_TIMEOUT):
        return printer
    if process.poll() is not None:
        raise DemoError(
            f"snmpsim for {spec.name} on {address}:{port} exited ({process.returncode}):\n"
            + printer.log()[-2000:]
        )
    printer.stop()
    raise DemoError(
        f"snmpsim for {spec.name} on {address}:{port} did not answer within {START_TIMEOUT:g} s"
    )


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
    starters = [
        partial(_start_one, responder, spec, address, port, work_dir)
        for spec, address in zip(specs, addresses, strict=True)
    ]
    return SimulatedFleet(port, processes.start_all(starters, failures=(DemoError,)))
