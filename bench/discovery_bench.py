"""Discovery sweep benchmark: a /24 and a /16 where a few hundred addresses answer, the rest drop.

Needs root (it builds two network namespaces and tears them down again):

    sudo .venv/bin/python bench/discovery_bench.py [--printers 300] [--scenarios fast16,fast24,...]

Layout: namespace A runs the sweep; a veth pair links it to namespace B, which
owns the printers' addresses (10.99.x.y/32 on its loopback) and a blackhole
route for the rest of 10.99.0.0/16, so an address without a printer drops the
packet silently, like a real empty address, instead of answering ICMP
port-unreachable as loopback would. Each printer is a replaying SNMP responder
(``tests/support/hostile.py``) with its own serial and MAC, all in one
process in B. No packet leaves the two namespaces.

Per scenario the sweep runs in its own process in A and reports wall time,
CPU time (user + system) per address, peak RSS, and how many printers it found
and identified (distinct device ids).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PREFIX = "10.99"
PORT = 161
SCENARIOS: dict[str, dict[str, object]] = {
    # name: target, rate (0 = no limit), max in flight, timeout, retries
    "default24": {
        "target": f"{PREFIX}.0.0/24",
        "rate": 200,
        "in_flight": 128,
        "timeout": 2.0,
        "retries": 1,
    },
    "fast24": {
        "target": f"{PREFIX}.0.0/24",
        "rate": 0,
        "in_flight": 512,
        "timeout": 0.5,
        "retries": 1,
    },
    "fast16": {
        "target": f"{PREFIX}.0.0/16",
        "rate": 0,
        "in_flight": 4096,
        "timeout": 1.0,
        "retries": 0,
    },
    "fast16_2048": {
        "target": f"{PREFIX}.0.0/16",
        "rate": 0,
        "in_flight": 2048,
        "timeout": 1.0,
        "retries": 0,
    },
    "fast20": {
        "target": f"{PREFIX}.0.0/20",
        "rate": 0,
        "in_flight": 4096,
        "timeout": 1.0,
        "retries": 0,
    },
    "default16": {
        "target": f"{PREFIX}.0.0/16",
        "rate": 200,
        "in_flight": 128,
        "timeout": 2.0,
        "retries": 1,
    },
}


def printer_addresses(count: int) -> list[str]:
    """Two dozen in the first /24, the rest spread evenly over the /16."""
    first = [f"{PREFIX}.0.{10 * k + 3}" for k in range(24)]
    rest = max(0, count - len(first))
    step = max(1, (254 * 256) // max(rest, 1))
    spread = []
    for n in range(rest):
        index = 256 + n * step
        third, fourth = divmod(index, 256)
        spread.append(f"{PREFIX}.{third}.{max(1, min(fourth, 254))}")
    return first + spread


def printer_varbinds(number: int) -> dict[tuple[int, ...], object]:
    from mibs.values import parse_oid

    mac = bytes([0x00, 0x1B, 0xA9, (number >> 16) & 0xFF, (number >> 8) & 0xFF, number & 0xFF])
    rows: dict[str, object] = {
        "1.3.6.1.2.1.1.1.0": b"Brother NC-6800h, Firmware Ver.1.01",
        "1.3.6.1.2.1.1.2.0": parse_oid("1.3.6.1.4.1.2435.2.3.9.1"),
        "1.3.6.1.2.1.1.3.0": 123456,
        "1.3.6.1.2.1.1.5.0": f"bench-{number}".encode(),
        "1.3.6.1.2.1.2.2.1.3.1": 6,
        "1.3.6.1.2.1.2.2.1.6.1": mac,
        "1.3.6.1.2.1.25.3.2.1.2.1": parse_oid("1.3.6.1.2.1.25.3.1.5"),
        "1.3.6.1.2.1.25.3.2.1.3.1": b"Brother HL-5370DW series",
        "1.3.6.1.2.1.43.5.1.1.17.1": f"BENCH{number:06d}".encode(),
        "1.3.6.1.2.1.43.10.2.1.4.1.1": 1000 + number,
    }
    return {parse_oid(oid): value for oid, value in rows.items()}


# --- roles run inside the namespaces ----------------------------------------------------


async def _serve(addresses: list[str], port: int) -> None:
    from tests.support.hostile import HostileResponder

    loop = asyncio.get_running_loop()
    for number, address in enumerate(addresses):
        responder = HostileResponder(printer_varbinds(number), address=address, port=port)  # type: ignore[arg-type]
        await loop.create_datagram_endpoint(lambda r=responder: r, local_addr=(address, port))
    print("ready", flush=True)
    await asyncio.Event().wait()


def _sweep(spec: dict[str, object]) -> dict[str, object]:
    from pydantic import SecretStr

    from collectors.credentials import Credential, SnmpSettings
    from collectors.discovery import AddressResult, DiscoveryOptions, Sweep
    from collectors.targets import parse_targets

    targets = parse_targets([str(spec["target"])])
    rate = float(spec["rate"])  # type: ignore[arg-type]
    sweep = Sweep(
        targets,
        [Credential(name="public", community=SecretStr("public"))],
        SnmpSettings(port=PORT, timeout=float(spec["timeout"]), retries=int(spec["retries"])),  # type: ignore[arg-type]
        options=DiscoveryOptions(rate=rate or None, max_in_flight=int(spec["in_flight"])),  # type: ignore[arg-type]
    )
    ids: set[str] = set()

    def collect(result: AddressResult) -> None:
        if result.device_id:
            ids.add(result.device_id)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        with cProfile.Profile() as profile:
            stats = asyncio.run(sweep.run(collect))
        pstats.Stats(profile, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    elif os.environ.get("BENCH_TRACE"):

        async def traced() -> object:
            async def tick() -> None:
                while True:
                    await asyncio.sleep(0.5)
                    print(
                        f"t={time.perf_counter() - started:.1f} done={sweep.stats.done}",
                        file=sys.stderr,
                    )

            ticker = asyncio.create_task(tick())
            try:
                return await sweep.run(collect)
            finally:
                ticker.cancel()

        stats = asyncio.run(traced())  # type: ignore[assignment]
    else:
        stats = asyncio.run(sweep.run(collect))
    elapsed = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    return {
        "addresses": stats.done,
        "printers": stats.printers,
        "identified": len(ids),
        "silent": stats.silent,
        "elapsed_s": round(elapsed, 2),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_address": round(cpu / max(stats.done, 1) * 1000, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "rss_before_sweep_mb": round(rss_before / 1024, 1),
    }


# --- the orchestrator -------------------------------------------------------------------


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


class Namespaces:
    def __init__(self) -> None:
        tag = os.getpid() % 100_000
        self.a, self.b = f"fa-bench-a-{tag}", f"fa-bench-b-{tag}"
        self.veth_a, self.veth_b = f"fab{tag}a", f"fab{tag}b"

    def up(self, printers: list[str]) -> None:
        _ip("netns", "add", self.a)
        _ip("netns", "add", self.b)
        _ip(
            "link",
            "add",
            self.veth_a,
            "netns",
            self.a,
            "type",
            "veth",
            "peer",
            "name",
            self.veth_b,
            "netns",
            self.b,
        )
        for ns, veth, mine in (
            (self.a, self.veth_a, "10.98.0.1/30"),
            (self.b, self.veth_b, "10.98.0.2/30"),
        ):
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", mine, "dev", veth)
            _ip("-n", ns, "link", "set", veth, "up")
        _ip("-n", self.a, "route", "add", f"{PREFIX}.0.0/16", "via", "10.98.0.2")
        _ip("-n", self.b, "route", "add", "blackhole", f"{PREFIX}.0.0/16")
        batch = "".join(f"addr add {address}/32 dev lo\n" for address in printers)
        subprocess.run(["ip", "-n", self.b, "-batch", "-"], input=batch, text=True, check=True)

    def down(self) -> None:
        for ns in (self.a, self.b):
            subprocess.run(["ip", "netns", "del", ns], check=False)


def _machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} vCPU {cpu}, Linux {os.uname().release}, Python {sys.version.split()[0]}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--printers", type=int, default=300)
    parser.add_argument("--scenarios", default="fast24,default24,fast16")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sweep", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve.read_text().split(), PORT))
        return 0
    if args.sweep:
        print(json.dumps(_sweep(json.loads(args.sweep))))
        return 0
    if os.geteuid() != 0:
        print("discovery_bench: needs root to build network namespaces", file=sys.stderr)
        return 2
    printers = printer_addresses(args.printers)
    spaces = Namespaces()
    listing = Path(f"/tmp/fa-bench-printers-{os.getpid()}.txt")
    listing.write_text("\n".join(printers))
    responder = None
    report = {"machine": _machine(), "printers": len(printers), "results": {}}
    try:
        spaces.up(printers)
        responder = subprocess.Popen(
            ["ip", "netns", "exec", spaces.b, sys.executable, __file__, "--serve", str(listing)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert responder.stdout is not None
        if responder.stdout.readline().strip() != "ready":
            raise RuntimeError("responder did not start")
        for name in args.scenarios.split(","):
            spec = SCENARIOS[name]
            out = subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    spaces.a,
                    sys.executable,
                    __file__,
                    "--sweep",
                    json.dumps(spec),
                ],
                stdout=subprocess.PIPE,
                text=True,
                check=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            report["results"][name] = {**spec, **result}  # type: ignore[index]
            print(name, json.dumps(report["results"][name]), flush=True)  # type: ignore[index]
    finally:
        if responder is not None:
            responder.terminate()
            responder.wait(timeout=10)
        spaces.down()
        listing.unlink(missing_ok=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
