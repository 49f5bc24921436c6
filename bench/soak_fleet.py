"""The soak benchmark's peers: a synthetic fleet, replay responders and a Mosquitto broker.

Everything here stays on loopback (127.0.0.0/8). Used by ``bench/soak_bench.py``
and its smoke test; no pytest, no agent internals beyond the demo fleet specs.

* :func:`synthetic_fleet` makes ``count`` printers of seven vendors, mono and
  colour, each with its own serial, MAC, page count and supply levels (a few
  low, so ``supply_low`` events flow too);
* :func:`fleet_addresses` lays them out from a loopback base, 250 a /24;
  :func:`target_ranges` turns that into ``discovery.targets`` ranges;
* :func:`start_responders` serves the recordings with the fake agent
  (``python -m collectors.fake_agent``), ``per_process`` addresses a process, all on one UDP port;
* :func:`start_broker` runs Debian ``mosquitto`` on a free 127.0.0.1 port with
  the queue limits raised (STACK_NOTES.md: the default 1000 silently drops).
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.demo.fleet import PrinterSpec, SupplySpec, to_snmprec

HERE = Path(__file__).resolve().parent
MOSQUITTO = Path("/usr/sbin/mosquitto")
PER_SUBNET = 250  # addresses .1-.250 of each /24

# (model, colour) per vendor; sysObjectID comes from agent.demo.fleet.ENTERPRISE.
MODELS: dict[str, tuple[tuple[str, bool], ...]] = {
    "HP": (("LaserJet Pro M404dn", False), ("Color LaserJet Pro MFP M479fdw", True)),
    "Lexmark": (("MS621dn", False), ("CX725", True)),
    "Xerox": (("VersaLink B405", False), ("AltaLink C8045", True)),
    "Ricoh": (("IM 430F", False), ("IM C3000", True)),
    "Canon": (("imageRUNNER 1643i", False), ("imageRUNNER ADVANCE C3530i", True)),
    "Kyocera": (("ECOSYS P3145dn", False), ("TASKalfa 2553ci", True)),
    "Brother": (("HL-L6400DW", False), ("MFC-L8900CDW", True)),
}
VENDORS = tuple(MODELS)


def synthetic_printer(number: int, seed: int = 6) -> PrinterSpec:
    """Printer ``number`` of the soak fleet: deterministic, unique serial and MAC."""
    rng = random.Random(seed * 1_000_003 + number)
    vendor = VENDORS[number % len(VENDORS)]
    model, colour = MODELS[vendor][(number // len(VENDORS)) % 2]
    low = rng.random() < 0.03  # about 3% of the fleet needs toner: supply_low events
    toner = rng.randint(2, 9) if low else rng.randint(15, 100)
    if colour:
        supplies: tuple[SupplySpec, ...] = (
            SupplySpec("Black Toner", "toner", toner, "black"),
            SupplySpec("Cyan Toner", "toner", rng.randint(15, 100), "cyan"),
            SupplySpec("Magenta Toner", "toner", rng.randint(15, 100), "magenta"),
            SupplySpec("Yellow Toner", "toner", rng.randint(15, 100), "yellow"),
            SupplySpec("Fuser Kit", "fuser", rng.randint(20, 100)),
            SupplySpec("Waste Toner Box", "waste_toner", rng.randint(20, 100)),
        )
    else:
        supplies = (
            SupplySpec("Black Toner Cartridge", "toner_cartridge", toner, "black"),
            SupplySpec("Imaging Drum", "opc", rng.randint(10, 100)),
        )
    return PrinterSpec(
        name=f"soak-{number:05d}",
        vendor=vendor,
        model=model,
        serial=f"{vendor[:3].upper()}SOAK{number:07d}",
        lifetime_pages=rng.randint(1_000, 900_000),
        location=f"Building {number // 1000}, floor {number % 1000 // 100}",
        mac=f"02{number:010X}",  # locally administered, unique per printer
        color=colour,
        hr_index=1 + number % 2,
        supplies=supplies,
        error_bits=b"\x20" if low else b"\x00",  # lowToner (RFC 2790 hrPrinterDetectedErrorState)
    )


def synthetic_fleet(count: int, seed: int = 6) -> list[PrinterSpec]:
    return [synthetic_printer(n, seed) for n in range(count)]


def fleet_addresses(count: int, base: str = "127.1.0.0") -> list[str]:
    """``count`` loopback addresses from ``base``: .1-.250 of consecutive /24 blocks."""
    start = ipaddress.IPv4Address(base)
    if not start.is_loopback:
        raise ValueError(f"base {base}: only loopback (127.0.0.0/8) addresses are allowed")
    first = int(start) & ~0xFF
    addresses = []
    for n in range(count):
        block, host = divmod(n, PER_SUBNET)
        address = ipaddress.IPv4Address(first + 256 * block + host + 1)
        if not address.is_loopback:
            raise ValueError(f"{count} devices from {base} leave 127.0.0.0/8 at {address}")
        addresses.append(str(address))
    return addresses


def target_ranges(addresses: list[str]) -> list[str]:
    """``discovery.targets`` covering exactly ``addresses`` (one range a /24)."""
    blocks: dict[str, list[int]] = {}
    for address in addresses:
        prefix, _, last = address.rpartition(".")
        blocks.setdefault(prefix, []).append(int(last))
    ranges = []
    for prefix, hosts in blocks.items():
        low, high = min(hosts), max(hosts)
        if sorted(hosts) != list(range(low, high + 1)):
            raise ValueError(f"addresses in {prefix}.0/24 are not contiguous")
        ranges.append(f"{prefix}.{low}" if low == high else f"{prefix}.{low}-{high}")
    return ranges


def write_recordings(specs: list[PrinterSpec], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in specs:
        path = directory / f"{spec.name}.snmprec"
        path.write_text(to_snmprec(spec), encoding="utf-8")
        paths.append(path)
    return paths


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of one process, in kB, from /proc/<pid>/status."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM", "Threads"):
            out[name] = int(value.split()[0])
    return out


@dataclass
class Responders:
    """Replay responder processes serving the fleet, all on ``port``."""

    processes: list[subprocess.Popen[str]]
    port: int
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def cpu_seconds(self) -> float:
        total = 0.0
        for process in self.processes:
            if process.poll() is None:
                total += proc_cpu_seconds(process.pid)
        return total

    def stop(self) -> dict[str, dict[str, int]]:
        """End every process (end of stdin) and merge their per-address request counts."""
        for process in self.processes:
            try:
                out, _ = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                continue
            lines = out.strip().splitlines()
            if lines:
                self.counts.update(json.loads(lines[-1]))
        return self.counts


def _start_one(
    mapping: list[tuple[str, Path]], port: int, community: str
) -> tuple[subprocess.Popen[str], int]:
    args = [sys.executable, "-m", "collectors.fake_agent", "--port", str(port)]
    args += ["--community", community, *(f"{address}={path}" for address, path in mapping)]
    process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("READY"):
        process.kill()
        process.wait()
        raise RuntimeError(f"replay responder did not start (first line {line!r})")
    return process, int(line.split()[1])


def start_responders(
    mapping: list[tuple[str, Path]], *, per_process: int = 2500, community: str = "public"
) -> Responders:
    """Serve ``(address, recording)`` pairs; the first process picks the port, the rest share it."""
    processes: list[subprocess.Popen[str]] = []
    port = 0
    try:
        for start in range(0, len(mapping), per_process):
            process, port = _start_one(mapping[start : start + per_process], port, community)
            processes.append(process)
    except BaseException:
        Responders(processes, port).stop()
        raise
    return Responders(processes, port)


def free_tcp_port(address: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@dataclass
class Broker:
    process: subprocess.Popen[bytes]
    port: int
    directory: Path
    host: str = "127.0.0.1"

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.process.pid) if self.process.poll() is None else 0.0

    def log(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_broker(ready_timeout: float = 10.0) -> Broker:
    """Mosquitto on a free 127.0.0.1 port: anonymous, no persistence, queues raised."""
    if not MOSQUITTO.exists():
        raise RuntimeError(f"{MOSQUITTO} is missing: apt-get install mosquitto")
    directory = Path(tempfile.mkdtemp(prefix="soak-mosquitto-"))
    directory.chmod(0o755)  # mosquitto drops root to its own user
    port = free_tcp_port()
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "max_queued_messages 1000000\n"
        "max_inflight_messages 100\n"
        "persistence false\n"
        "log_dest stdout\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
    )
    config.chmod(0o644)
    with (directory / "mosquitto.log").open("ab") as log:
        process = subprocess.Popen(
            [str(MOSQUITTO), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    broker = Broker(process, port, directory)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = broker.log()
            broker.stop()
            raise RuntimeError(f"mosquitto exited ({process.returncode}): {text}")
        try:
            with socket.create_connection((broker.host, port), timeout=0.2):
                return broker
        except OSError:
            time.sleep(0.05)
    broker.stop()
    raise RuntimeError(f"mosquitto on 127.0.0.1:{port} not ready within {ready_timeout}s")
