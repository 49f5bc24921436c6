"""CLI start-up time: ``fleet-agent --help``, run N times, median wall and CPU time.

The CLI imports a command module (and the heavy libraries it uses) only when
that command runs, so ``--help`` costs the interpreter start plus argparse.
Each run is a fresh process; CPU time (user + system, from ``wait4``) is the
steadier figure on a shared machine. The bare interpreter (``python -c pass``)
is timed too, so the floor is visible, and so is the eager parser that imports
every command module (what ``--help`` did before the lazy registry).
With ``--callgrind`` each command also runs once under ``valgrind
--tool=callgrind`` and its instruction count is reported: unlike wall and CPU
time, it does not depend on the machine's load.

    .venv/bin/python bench/cli_startup.py --runs 21 [--callgrind]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _time(command: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``command``."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def measure(command: list[str], runs: int) -> dict[str, float]:
    _time(command)  # warm the page cache and the bytecode cache
    walls, cpus = zip(*(_time(command) for _ in range(runs)), strict=True)
    return {
        "median_wall_s": round(statistics.median(walls), 4),
        "min_wall_s": round(min(walls), 4),
        "median_cpu_s": round(statistics.median(cpus), 4),
    }


def instructions(command: list[str]) -> int:
    """Instructions one run of ``command`` executes (callgrind's total)."""
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as directory:
        out = Path(directory) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=1800,
        )
        found = re.search(r"^(?:summary|totals):\s+(\d+)", out.read_text(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"{' '.join(command)}: no callgrind totals")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument(
        "--callgrind", action="store_true", help="also count instructions (needs valgrind)"
    )
    args = parser.parse_args()
    if args.callgrind and shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    venv_bin = Path(sys.executable).parent
    script = shutil.which("fleet-agent", path=str(venv_bin)) or shutil.which("fleet-agent")
    if script is None:
        raise SystemExit("fleet-agent is not installed in this environment")
    commands = {
        "fleet-agent --help": [script, "--help"],
        # What --help cost before the lazy registry: every command module imported.
        "eager parser (all command modules)": [
            sys.executable,
            "-c",
            "from agent.cli import build_parser; build_parser('*')",
        ],
        "python -c pass": [sys.executable, "-c", "pass"],
    }
    results = {name: measure(command, args.runs) for name, command in commands.items()}
    if args.callgrind:
        for name in ("fleet-agent --help", "python -c pass"):
            results[name]["instructions"] = instructions(commands[name])
    print(
        json.dumps(
            {
                "runs": args.runs,
                "python": platform.python_version(),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
