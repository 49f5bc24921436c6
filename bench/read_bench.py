"""Full-read benchmark: reads/s, SNMP requests per read, agent CPU per read.

Starts the fake agent shipped with the collector (``python -m
collectors.fake_agent``, a separate process, so its CPU is not counted as
ours) serving recordings on many loopback addresses, then reads them all with
the agent's own code path (``SnmpTransport`` + ``read_device``, as
``fleet-agent scan`` does) and reports:

* reads/s over the fleet, with ``--concurrency`` devices in flight;
* SNMP requests per full read, counted on the responder's side, per recording;
* agent CPU ms per full read (``time.process_time`` of this process only),
  over the fleet and for one printer with 4 supplies read back to back;
* the same recordings read by FusionInventory's ``fusioninventory-netinventory``
  (one process per device, as it works), requests counted the same way.

    .venv/bin/python bench/read_bench.py --printers 200 --rounds 3

Only loopback addresses (127.0.3.x and up for us, 127.0.9.x for the peer).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import structlog
from pydantic import SecretStr

from collectors.credentials import Credential, SnmpSettings
from collectors.reader import read_device
from collectors.transport import SnmpTransport
from mibs.models import PrinterRead
from mibs.plan import full_read_plan

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared" / "recordings"
OWN = REPO / "tests" / "data" / "recordings"
FOUR_SUPPLIES = "librenms__dell-laser_s5830dn.snmprec"


def fleet_addresses(count: int, first_octet: int = 3) -> list[str]:
    addresses = []
    for n in range(count):
        third, fourth = divmod(n, 250)
        addresses.append(f"127.0.{first_octet + third}.{fourth + 1}")
    return addresses


@dataclass
class Responder:
    process: subprocess.Popen[str]
    port: int

    def cpu_seconds(self) -> float:
        """The responder's own CPU time so far (user + system), from /proc."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> dict[str, dict[str, int]]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()
        out = self.process.stdout.read()
        self.process.wait(timeout=10)
        return json.loads(out.strip().splitlines()[-1])


def start_responder(mapping: dict[str, Path]) -> Responder:
    args = [sys.executable, "-m", "collectors.fake_agent"]
    args += [f"{address}={path}" for address, path in mapping.items()]
    process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("READY"):
        process.kill()
        raise SystemExit(f"responder did not start: {line!r}")
    return Responder(process, int(line.split()[1]))


@dataclass
class Round:
    reads: int
    wall: float
    cpu: float
    requests_sent: int
    problems: int


async def read_round(
    transport: SnmpTransport,
    addresses: list[str],
    credential: Credential,
    settings: SnmpSettings,
    concurrency: int,
) -> tuple[Round, list[PrinterRead]]:
    semaphore = asyncio.Semaphore(concurrency)
    reads: list[PrinterRead] = []

    async def one(address: str) -> None:
        async with semaphore:
            outcome = await read_device(
                address,
                [credential],
                full_read_plan(),
                settings.read_deadline,
                sessions=transport,
                settings=settings,
            )
            if outcome.read is not None:
                reads.append(outcome.read)

    sent = transport.requests_sent
    wall, cpu = time.perf_counter(), time.process_time()
    async with asyncio.TaskGroup() as group:
        for address in addresses:
            group.create_task(one(address))
    result = Round(
        reads=len(reads),
        wall=time.perf_counter() - wall,
        cpu=time.process_time() - cpu,
        requests_sent=transport.requests_sent - sent,
        problems=sum(len(r.problems) for r in reads),
    )
    return result, reads


async def agent_bench(
    addresses: list[str],
    single: str,
    port: int,
    rounds: int,
    concurrency: int,
    single_reads: int,
) -> dict[str, object]:
    settings = SnmpSettings(port=port, timeout=2.0, retries=1)
    credential = Credential(name="bench", version="v2c", community=SecretStr("public"))
    fleet_rounds: list[Round] = []
    async with SnmpTransport(settings) as transport:
        cold, _ = await read_round(transport, addresses, credential, settings, concurrency)
        for _ in range(rounds):
            warm, _ = await read_round(transport, addresses, credential, settings, concurrency)
            fleet_rounds.append(warm)
        singles: list[Round] = []
        for _ in range(single_reads):
            one, _ = await read_round(transport, [single], credential, settings, 1)
            singles.append(one)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(single_reads):
            await read_round(transport, [single], credential, settings, 1)
        profiler.disable()
        timeouts = transport.timeouts
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("tottime").print_stats(14)
    print(buffer.getvalue(), file=sys.stderr)
    best = min(fleet_rounds, key=lambda r: r.wall)
    single_cpu = sorted(r.cpu * 1000 for r in singles)
    single_requests = [r.requests_sent for r in singles]
    return {
        "cold_round": cold,
        "rounds": fleet_rounds,
        "reads_per_s_best": best.reads / best.wall,
        "reads_per_s_median": statistics.median(r.reads / r.wall for r in fleet_rounds),
        "cpu_ms_per_read_fleet": statistics.median(r.cpu * 1000 / r.reads for r in fleet_rounds),
        "cpu_ms_per_read_cold": cold.cpu * 1000 / cold.reads,
        "single_cpu_ms_median": statistics.median(single_cpu),
        "single_cpu_ms_p90": single_cpu[int(len(single_cpu) * 0.9) - 1],
        "single_requests_sent": statistics.median(single_requests),
        "timeouts": timeouts,
        "requests_sent_total": cold.requests_sent + sum(r.requests_sent for r in fleet_rounds),
        "requests_sent_per_read": statistics.median(
            r.requests_sent / r.reads for r in fleet_rounds
        ),
    }


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fusion_bench(mapping: dict[str, Path], port: int, repeats: int) -> dict[str, object] | None:
    tool = shutil.which("fusioninventory-netinventory")
    if tool is None or repeats < 1:
        return None
    startup = []
    for _ in range(3):
        before = children_cpu()
        subprocess.run([tool, "--version"], capture_output=True, check=False)
        startup.append(children_cpu() - before)
    per_read_wall, per_read_cpu, failures = [], [], 0
    for _ in range(repeats):
        for address in mapping:
            before_cpu, before = children_cpu(), time.perf_counter()
            done = subprocess.run(
                [
                    tool,
                    "--host",
                    address,
                    "--port",
                    str(port),
                    "--community",
                    "public",
                    "--timeout",
                    "2",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            per_read_wall.append(time.perf_counter() - before)
            per_read_cpu.append(children_cpu() - before_cpu)
            if done.returncode != 0 or "<DEVICE>" not in done.stdout:
                failures += 1
    return {
        "tool": tool,
        "reads": len(per_read_wall),
        "failures": failures,
        "startup_cpu_ms": statistics.median(startup) * 1000,
        "cpu_ms_per_read": statistics.median(per_read_cpu) * 1000,
        "wall_ms_per_read": statistics.median(per_read_wall) * 1000,
    }


def requests_per_read(
    counts: dict[str, dict[str, int]], mapping: dict[str, Path], reads_per_address: int
) -> dict[str, float]:
    """Median over the addresses serving each recording of requests/read (responder side)."""
    per_recording: dict[str, list[float]] = {}
    for address, path in mapping.items():
        got = counts.get(address, {})
        total = sum(v for k, v in got.items() if k in ("get", "getnext", "getbulk"))
        per_recording.setdefault(path.name, []).append(total / reads_per_address)
    return {name: statistics.median(values) for name, values in sorted(per_recording.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--printers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--single-reads", type=int, default=50)
    parser.add_argument("--fusion-repeats", type=int, default=2)
    parser.add_argument("--recordings", type=Path, default=SHARED if SHARED.is_dir() else OWN)
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    recordings = sorted(args.recordings.glob("*.snmprec"))
    if not recordings:
        raise SystemExit(f"no recordings in {args.recordings}")
    addresses = fleet_addresses(args.printers)
    mapping = {a: recordings[n % len(recordings)] for n, a in enumerate(addresses)}
    single_path = next((p for p in recordings if p.name == FOUR_SUPPLIES), recordings[0])
    single = fleet_addresses(1, first_octet=8)[0]
    fusion_map = dict(zip(fleet_addresses(len(recordings), 9), recordings, strict=True))
    load_before = os.getloadavg()[0]
    responder = start_responder({**mapping, single: single_path, **fusion_map})
    try:
        agent = asyncio.run(
            agent_bench(
                addresses,
                single,
                responder.port,
                args.rounds,
                args.concurrency,
                args.single_reads,
            )
        )
        fusion = fusion_bench(fusion_map, responder.port, args.fusion_repeats)
    finally:
        responder_cpu = responder.cpu_seconds()
        counts = responder.stop()
    ours = requests_per_read(counts, mapping, args.rounds + 1)
    theirs = requests_per_read(counts, fusion_map, args.fusion_repeats) if fusion else {}
    single_counts = counts.get(single, {})
    fleet_received = sum(sum(counts.get(a, {}).values()) for a in mapping)
    report = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} vCPU, "
        f"Python {platform.python_version()}, {platform.platform()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "printers": args.printers,
        "concurrency": args.concurrency,
        "agent": {k: v for k, v in agent.items() if k not in ("rounds", "cold_round")},
        "agent_rounds": [vars(r) for r in agent["rounds"]],  # type: ignore[attr-defined]
        "requests_per_read_ours": ours,
        "requests_per_read_ours_median": statistics.median(ours.values()),
        "responder_received_fleet_total": fleet_received,
        # read back to back twice: timed, then under the profiler
        "requests_single_4_supplies": sum(single_counts.values()) / (2 * args.single_reads),
        "responder_cpu_ms_per_request": responder_cpu
        * 1000
        / max(1, sum(sum(c.values()) for c in counts.values())),
        "fusioninventory": fusion,
        "requests_per_read_fusion": theirs,
        "requests_per_read_fusion_median": statistics.median(theirs.values()) if theirs else None,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
