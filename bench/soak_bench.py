"""Soak and scale benchmark of the daemon (issue #6): ``fleet-agent run`` against 10,000 printers.

Builds a synthetic fleet (``bench/soak_fleet.py``: seven vendors, unique serials
and MACs, varied counters and supply levels), serves it on loopback addresses
from ``--base`` (127.1.0.0: .1-.250 of consecutive /24s) with fake agent
processes (``python -m collectors.fake_agent``), starts Mosquitto on a free 127.0.0.1
port and a counting subscriber (plain aiomqtt, QoS 1; it decodes each envelope's
body but does not verify signatures), writes a daemon config whose
``discovery.targets`` cover the fleet, then runs ``fleet-agent run`` as a
subprocess for ``--duration`` and samples every ``--sample-interval``:

* daemon CPU (``/proc/<pid>/stat``) and RSS (``/proc/<pid>/status`` VmRSS/VmHWM);
* ``/metrics`` (``fleet_agent_reads_total`` per kind) and ``/healthz`` (queue
  depth, oldest queued age, published, jobs) and how long ``/healthz`` took;
* messages counted at the broker.

Per-cycle results come from the daemon's own ``reads.completed`` log events.
Prints a JSON summary and a markdown table (``--json``/``--markdown`` write them).

    .venv/bin/python bench/soak_bench.py                      # 10,000 devices, 18 min
    .venv/bin/python bench/soak_bench.py --fast               # 1m supplies, 5 min
    .venv/bin/python bench/soak_bench.py --devices 200 --once # smoke: 1 discovery + 1 read

Only 127.0.0.0/8 is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml
from soak_fleet import (
    Broker,
    Responders,
    fleet_addresses,
    free_tcp_port,
    proc_cpu_seconds,
    proc_memory_kb,
    start_broker,
    start_responders,
    synthetic_fleet,
    target_ranges,
    write_recordings,
)
from soak_report import (
    BrokerCounter,
    markdown,
    outbox_state,
    parse_daemon_log,
    parse_metrics,
    profile_summary,
    summarise,
)

from agent.config import parse_duration

HERE = Path(__file__).resolve().parent
AGENT_ID = "soak-bench"
SITE = "bench"


@dataclass(frozen=True)
class Options:
    devices: int
    duration: float
    meters: float
    supplies: float
    jitter: float
    once: bool
    concurrency: int
    discovery_rate: float
    discovery_in_flight: int
    timeout: float
    retries: int
    sample_interval: float
    base: str
    per_responder: int
    workdir: Path | None
    log_level: str
    profile_at: float | None = None  # seconds after start: py-spy the daemon from then on
    profile_for: float = 90.0


def daemon_config(
    options: Options, *, targets: list[str], snmp_port: int, broker_port: int, http_port: int
) -> dict[str, Any]:
    return {
        "agent_id": AGENT_ID,
        "site": SITE,
        "state_dir": "state",
        "log_level": options.log_level,
        "shutdown_deadline": "20s",
        "snmp": {
            "port": snmp_port,
            "timeout": options.timeout,
            "retries": options.retries,
            "concurrency": options.concurrency,
            "credentials": [{"name": "public-v2c", "version": "v2c", "community": "public"}],
        },
        "discovery": {
            "targets": targets,
            "rate": options.discovery_rate,
            "max_in_flight": options.discovery_in_flight,
        },
        "schedule": {
            "discovery": "1d",
            "meters": options.meters,
            "supplies": options.supplies,
            "jitter": options.jitter,
            "discovery_at_start": True,
            "misfire_grace": "5m",
        },
        "upload": {
            "enabled": True,
            "mqtt": {"host": "127.0.0.1", "port": broker_port, "tls": False},
        },
        "http": {"enabled": True, "listen": "127.0.0.1", "port": http_port},
    }


def _get(url: str) -> tuple[bytes, float] | None:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:  # 503 (degraded) still carries the document
        body = exc.read()
    except (urllib.error.URLError, OSError):
        return None
    return body, time.perf_counter() - started


async def sample(pid: int, http_port: int, counter: BrokerCounter, t0: float) -> dict[str, Any]:
    """One sample of the daemon: CPU, memory, /healthz, /metrics, broker counts."""
    row: dict[str, Any] = {"t": round(time.monotonic() - t0, 2), "wall": time.time()}
    try:
        row["cpu_s"] = proc_cpu_seconds(pid)
        memory = proc_memory_kb(pid)
    except (FileNotFoundError, ProcessLookupError):
        return row
    row["rss_kb"], row["hwm_kb"] = memory.get("VmRSS"), memory.get("VmHWM")
    row["threads"] = memory.get("Threads")
    health = await asyncio.to_thread(_get, f"http://127.0.0.1:{http_port}/healthz")
    if health is not None:
        document = json.loads(health[0])
        row["healthz_s"] = round(health[1], 4)
        row["queue_depth"] = document["queue"]["depth"]
        row["queue_oldest_s"] = document["queue"]["oldest_age_s"]
        row["published"] = document["broker"]["published"]
        row["devices_known"] = document["devices_known"]
    metrics = await asyncio.to_thread(_get, f"http://127.0.0.1:{http_port}/metrics")
    if metrics is not None:
        row["reads"] = parse_metrics(metrics[0].decode())
    row["broker_reads"] = counter.reads
    row["broker_events"] = counter.events
    return row


def start_profiler(pid: int, seconds: float, workdir: Path) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of the daemon (collapsed stacks in profile.txt), if py-spy is there."""
    tool = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(tool).exists():
        print("soak_bench: py-spy not found; no profile (pip install py-spy)", file=sys.stderr)
        return None
    command = [tool, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50"]
    command += ["--nonblocking", "--format", "raw", "--output", str(workdir / "profile.txt")]
    with (workdir / "py-spy.log").open("wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


async def run_daemon(
    options: Options, workdir: Path, config: Path, http_port: int, counter: BrokerCounter
) -> tuple[list[dict[str, Any]], int, float]:
    """Run ``fleet-agent run`` until ``--duration`` (or its own exit with --once)."""
    command = [sys.executable, "-c", "import sys; from agent.cli import main; sys.exit(main())"]
    command += ["run", "--config", str(config)] + (["--once"] if options.once else [])
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    with (workdir / "daemon.log").open("wb") as out, (workdir / "daemon.err").open("wb") as err:
        # Popen only forks; the waiting is done by polling below, never blocking the loop
        process = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=err, env=env)  # noqa: ASYNC220
    t0 = time.monotonic()
    samples: list[dict[str, Any]] = []
    stopped_at: float | None = None
    profiler: subprocess.Popen[bytes] | None = None
    try:
        while process.poll() is None:
            elapsed = time.monotonic() - t0
            if (
                profiler is None
                and options.profile_at is not None
                and elapsed >= options.profile_at
            ):
                profiler = start_profiler(process.pid, options.profile_for, workdir)
            if stopped_at is None and elapsed >= options.duration:
                process.send_signal(signal.SIGTERM)
                stopped_at = elapsed
            if stopped_at is not None and elapsed > stopped_at + 90:
                process.kill()
                break
            samples.append(await sample(process.pid, http_port, counter, t0))
            await asyncio.sleep(options.sample_interval)
    finally:
        if process.poll() is None:
            process.kill()
        code = process.wait()
        if profiler is not None:
            profiler.wait(timeout=30)
    return samples, code, time.monotonic() - t0


async def run_bench(options: Options) -> dict[str, Any]:
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="soak-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(workdir / "state", ignore_errors=True)  # a fresh agent: discovery finds all
    load_before = os.getloadavg()
    setup = time.monotonic()
    specs = synthetic_fleet(options.devices)
    addresses = fleet_addresses(options.devices, options.base)
    paths = write_recordings(specs, workdir / "recordings")
    responders: Responders | None = None
    broker: Broker | None = None
    try:
        responders = start_responders(
            list(zip(addresses, paths, strict=True)), per_process=options.per_responder
        )
        broker = start_broker()
        http_port = free_tcp_port()
        config = workdir / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                daemon_config(
                    options,
                    targets=target_ranges(addresses),
                    snmp_port=responders.port,
                    broker_port=broker.port,
                    http_port=http_port,
                ),
                sort_keys=False,
            )
        )
        counter = BrokerCounter(f"fleet/{SITE}/{AGENT_ID}/#")
        consumer = asyncio.create_task(counter.run(broker.host, broker.port), name="counter")
        await asyncio.wait_for(counter.subscribed.wait(), timeout=15)
        setup_s = time.monotonic() - setup
        bench_cpu = time.process_time()
        responder_cpu = responders.cpu_seconds()
        broker_cpu = broker.cpu_seconds()
        samples, exit_code, wall = await run_daemon(options, workdir, config, http_port, counter)
        log = parse_daemon_log(workdir / "daemon.log")
        outbox = outbox_state(workdir / "state" / "outbox.db")
        await counter.settle(expected=outbox["signed"] - outbox["queued"], quiet=5.0, limit=60.0)
        responder_cpu = responders.cpu_seconds() - responder_cpu
        broker_cpu = broker.cpu_seconds() - broker_cpu
        bench_cpu = time.process_time() - bench_cpu
        consumer.cancel()
    finally:
        try:
            counts = responders.stop() if responders is not None else {}
        finally:
            if broker is not None:
                broker.stop()
    summary = summarise(
        options=vars(options) | {"workdir": str(workdir)},
        samples=samples,
        log=log,
        counter=counter,
        outbox=outbox,
        devices=options.devices,
        responder_counts=counts,
    )
    summary["run"] = {
        "exit_code": exit_code,
        "wall_s": round(wall, 1),
        "setup_s": round(setup_s, 1),
        "daemon_stderr": (workdir / "daemon.err").read_text(errors="replace")[-2000:],
    }
    profile = workdir / "profile.txt"
    if profile.exists():
        summary["profile"] = profile_summary(profile.read_text(errors="replace"))
        summary["profile"]["window_s"] = [options.profile_at, options.profile_for]
    summary["cpu_other_s"] = {
        "responders": round(responder_cpu, 1),
        "mosquitto": round(broker_cpu, 1),
        "bench_and_counter": round(bench_cpu, 1),
    }
    summary["machine"] = machine() | {"load_before": load_before, "load_after": os.getloadavg()}
    summary["command"] = " ".join([".venv/bin/python", *sys.argv])
    summary["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if options.workdir is None:  # a private temporary directory: nothing to keep
        shutil.rmtree(workdir, ignore_errors=True)
    return summary


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def parse_args(argv: list[str] | None = None) -> tuple[Options, Path | None, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--duration", default=None, help="run time (default 18m, --fast 5m)")
    parser.add_argument("--meters", default=None, help="meter interval (default 1h: one cycle)")
    parser.add_argument("--supplies", default=None, help="supply interval (default 5m)")
    parser.add_argument("--jitter", default="5s")
    parser.add_argument("--fast", action="store_true", help="supplies 1m, meters 2m, 5 minutes")
    parser.add_argument("--once", action="store_true", help="fleet-agent run --once")
    parser.add_argument("--concurrency", type=int, default=64, help="snmp.concurrency")
    parser.add_argument("--discovery-rate", type=float, default=2000.0)
    parser.add_argument("--discovery-in-flight", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--sample-interval", type=float, default=5.0)
    parser.add_argument("--base", default="127.1.0.0", help="first loopback /24 of the fleet")
    parser.add_argument("--per-responder", type=int, default=2500)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--profile-at", default=None, help="py-spy the daemon from this time")
    parser.add_argument("--profile-for", default="90s", help="for this long (default 90s)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    parser.add_argument("--json", type=Path, help="write the JSON summary here")
    parser.add_argument("--markdown", type=Path, help="write the markdown table here")
    args = parser.parse_args(argv)
    fast = {"duration": "5m", "meters": "2m", "supplies": "1m"}
    slow = {"duration": "18m", "meters": "1h", "supplies": "5m"}
    preset = fast if args.fast else slow
    try:
        durations = {
            name: parse_duration(getattr(args, name) or preset[name])
            for name in ("duration", "meters", "supplies", "jitter")
            if name != "jitter" or args.jitter
        }
    except ValueError as exc:
        parser.error(str(exc))
    if args.devices < 1:
        parser.error("--devices must be at least 1")
    options = Options(
        devices=args.devices,
        duration=durations["duration"] if not args.once else max(durations["duration"], 600.0),
        meters=durations["meters"],
        supplies=durations["supplies"],
        jitter=durations.get("jitter", 0.0),
        once=args.once,
        concurrency=args.concurrency,
        discovery_rate=args.discovery_rate,
        discovery_in_flight=args.discovery_in_flight,
        timeout=args.timeout,
        retries=args.retries,
        sample_interval=args.sample_interval,
        base=args.base,
        per_responder=args.per_responder,
        workdir=args.workdir,
        log_level=args.log_level,
        profile_at=parse_duration(args.profile_at) if args.profile_at else None,
        profile_for=parse_duration(args.profile_for),
    )
    return options, args.json, args.markdown


def main(argv: list[str] | None = None) -> int:
    options, json_path, markdown_path = parse_args(argv)
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        raise SystemExit("soak_bench: mosquitto is not installed (apt-get install mosquitto)")
    try:
        summary = asyncio.run(run_bench(options))
    except (RuntimeError, ValueError) as exc:
        raise SystemExit(f"soak_bench: {exc}") from exc
    text = json.dumps(summary, indent=2, default=str)
    table = markdown(summary)
    if json_path:
        json_path.write_text(text + "\n")
    if markdown_path:
        markdown_path.write_text(table)
    print(text)
    print(table)
    return 0 if summary["targets"]["all_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
