"""Before/after the read-core redesign: SNMP requests and CPU per full read, two source trees.

Reads the same recordings, served by the same responder, with the code of two
checkouts: this tree (``read_device`` + ``SnmpTransport``, as scan and the daemon
read) and an older one (``--old``, e.g. a ``git worktree`` of ``1941f8a~1``,
whose path was ``collectors.poller.read_printer`` on ``collectors.snmp.SnmpTransport``).
The responder is this tree's ``python -m collectors.fake_agent``, one separate
process for everything, serving the nine shared recordings on loopback (a
distinct set of addresses per tree and per measure, so its request counts are
per tree). Three measures per tree:

* **requests per full read**: the responder's count of request PDUs per
  recording, ``--rounds`` reads of each, median over the recordings;
* **CPU per read** (``time.process_time`` of the reading process, which holds
  only the agent): the Dell S5830dn (4 supplies) read ``--reads`` times back to
  back after one warm-up read, median and p90 of the per-read figure;
* **instructions per read** under ``valgrind --tool=callgrind`` (load-independent):
  the same driver with 1 warm-up + ``--callgrind-reads`` reads, minus the same
  driver with 1 warm-up + 0 reads, divided by ``--callgrind-reads``.

    .venv/bin/python -m bench.read_compare --old /work/wt/bench-old --json /tmp/compare.json

The driver (``drive`` sub-command) runs with the tree under test first on
``PYTHONPATH`` and imports whichever reader that tree has. Only 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared" / "recordings"
FOUR_SUPPLIES = "librenms__dell-laser_s5830dn.snmprec"


# -- the driver: runs inside the tree under test --------------------------------------


def _reader(port: int) -> tuple[Any, Any]:
    """(transport, async read(address) -> read) of the tree on sys.path."""
    import structlog
    from pydantic import SecretStr

    from collectors.credentials import Credential, SnmpSettings

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    settings = SnmpSettings(port=port, timeout=10.0, retries=1, read_deadline=300.0)
    credential = Credential(name="bench", version="v2c", community=SecretStr("public"))
    try:
        from collectors.reader import read_device
        from collectors.transport import SnmpTransport
        from mibs.plan import full_read_plan
    except ImportError:  # before the redesign: collectors.poller.read_printer
        read_printer = importlib.import_module("collectors.poller").read_printer
        old_transport = importlib.import_module("collectors.snmp").SnmpTransport(settings)

        async def read_old(address: str) -> Any:
            session = old_transport.session(address, credential, settings=settings)
            return await read_printer(session, deadline=settings.read_deadline)

        return old_transport, read_old

    transport = SnmpTransport(settings)

    async def read_new(address: str) -> Any:
        outcome = await read_device(
            address,
            [credential],
            full_read_plan(),
            settings.read_deadline,
            sessions=transport,
            settings=settings,
        )
        if outcome.read is None:
            raise SystemExit(f"{address}: {outcome.kind} ({outcome.reason})")
        return outcome.read

    return transport, read_new


async def _drive(port: int, addresses: list[str], rounds: int, warmup: int) -> dict[str, Any]:
    transport, read = _reader(port)
    async with transport:
        for _ in range(warmup):
            for address in addresses:
                await read(address)
        cpu: list[float] = []
        problems = 0
        for _ in range(rounds):
            for address in addresses:
                started = time.process_time()
                result = await read(address)
                cpu.append(time.process_time() - started)
                problems += len(result.problems)
        return {"reads": len(cpu), "cpu_s": cpu, "problems": problems}


def drive(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="read_compare drive")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("addresses", nargs="+")
    args = parser.parse_args(argv)
    result = asyncio.run(_drive(args.port, args.addresses, args.rounds, args.warmup))
    import collectors

    result["tree"] = str(Path(collectors.__file__).resolve().parent.parent)
    print(json.dumps(result))
    return 0


# -- the comparison: runs in this tree ---------------------------------------------


def _addresses(block: int, count: int) -> list[str]:
    return [f"127.0.{block}.{n + 1}" for n in range(count)]


def _run_driver(
    tree: Path, port: int, args: list[str], prefix: Sequence[str] = ()
) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [*prefix, sys.executable, str(Path(__file__).resolve()), "drive", "--port", str(port)]
    done = subprocess.run(
        [*command, *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"driver in {tree} failed: {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(result["tree"]) != tree.resolve():
        raise SystemExit(f"driver imported {result['tree']}, not {tree}")
    return result


def _instructions(out_file: Path) -> int:
    """Total instructions (Ir) of a callgrind run."""
    text = out_file.read_text(errors="replace")
    match = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"{out_file}: no callgrind totals")
    return int(match.group(1))


def _callgrind(tree: Path, port: int, address: str, reads: int, work: Path) -> dict[str, Any]:
    """Instructions per read: (1 warm-up + ``reads``) minus (1 warm-up + 0 reads)."""
    totals = {}
    for count in (0, reads):
        out = work / f"callgrind.{tree.name}.{count}.out"
        prefix = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        _run_driver(tree, port, ["--warmup", "1", "--rounds", str(count), address], prefix)
        totals[count] = _instructions(out)
    return {
        "baseline_instructions": totals[0],
        "with_reads_instructions": totals[reads],
        "reads": reads,
        "instructions_per_read": (totals[reads] - totals[0]) // reads,
    }


def _start_responder(mapping: dict[str, Path]) -> tuple[subprocess.Popen[str], int]:
    command = [sys.executable, "-m", "collectors.fake_agent"]
    command += [f"{address}={path}" for address, path in mapping.items()]
    process = subprocess.Popen(
        command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("READY"):
        process.kill()
        raise SystemExit(f"responder did not start: {line!r}")
    return process, int(line.split()[1])


def _stop_responder(process: subprocess.Popen[str]) -> dict[str, dict[str, int]]:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.close()
    out = process.stdout.read()
    process.wait(timeout=30)
    counts: dict[str, dict[str, int]] = json.loads(out.strip().splitlines()[-1])
    return counts


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.9) - 1)]


def compare(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="checkout of the old tree")
    parser.add_argument("--new", type=Path, default=REPO, help="checkout of the new tree")
    parser.add_argument("--recordings", type=Path, default=SHARED)
    parser.add_argument("--rounds", type=int, default=5, help="reads of each recording")
    parser.add_argument("--reads", type=int, default=200, help="timed reads of the Dell")
    parser.add_argument("--callgrind-reads", type=int, default=20, help="0: no callgrind")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    recordings = sorted(args.recordings.glob("*.snmprec"))
    dell = next(p for p in recordings if p.name == FOUR_SUPPLIES)
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    if args.callgrind_reads and shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    # Per tree: block 20/21 the recordings, 22/23 the timed Dell, 24/25 callgrind.
    mapping: dict[str, Path] = {}
    plan: dict[str, dict[str, Any]] = {}
    for offset, name in enumerate(trees):
        fleet = dict(zip(_addresses(20 + offset, len(recordings)), recordings, strict=True))
        timed, traced = _addresses(22 + offset, 1)[0], _addresses(24 + offset, 1)[0]
        mapping |= {**fleet, timed: dell, traced: dell}
        plan[name] = {"fleet": fleet, "timed": timed, "traced": traced}
    report: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} vCPU, "
        f"Python {platform.python_version()}, {platform.platform()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(["python", "-m", "bench.read_compare", *argv]),
        "trees": {name: str(path) for name, path in trees.items()},
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    process, port = _start_responder(mapping)
    results: dict[str, dict[str, Any]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="read-compare-") as directory:
            for name, tree in trees.items():
                served = list(plan[name]["fleet"])
                fleet_run = _run_driver(tree, port, ["--rounds", str(args.rounds), *served])
                dell_run = _run_driver(
                    tree, port, ["--warmup", "1", "--rounds", str(args.reads), plan[name]["timed"]]
                )
                ms: list[float] = [seconds * 1000 for seconds in dell_run["cpu_s"]]
                results[name] = {
                    "fleet_reads": fleet_run["reads"],
                    "fleet_problems": fleet_run["problems"],
                    "dell_reads": dell_run["reads"],
                    "dell_cpu_ms_median": round(statistics.median(ms), 3),
                    "dell_cpu_ms_p90": round(_p90(ms), 3),
                    "dell_cpu_ms_min": round(min(ms), 3),
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                }
                if args.callgrind_reads:
                    results[name]["callgrind"] = _callgrind(
                        tree, port, plan[name]["traced"], args.callgrind_reads, Path(directory)
                    )
    finally:
        counts = _stop_responder(process)
    for name in trees:
        per_recording = {}
        for address, path in plan[name]["fleet"].items():
            got = counts.get(address, {})
            total = sum(v for k, v in got.items() if k in ("get", "getnext", "getbulk"))
            per_recording[path.name] = total / args.rounds
        timed_counts = counts.get(plan[name]["timed"], {})
        results[name]["requests_per_read"] = per_recording
        results[name]["requests_per_read_median"] = statistics.median(per_recording.values())
        results[name]["dell_requests_per_read"] = sum(timed_counts.values()) / (args.reads + 1)
    report["results"] = results
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "drive":
        return drive(sys.argv[2:])
    return compare(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
