"""Billing export benchmark: ``fleet-agent billing`` over a month of a big fleet's reads.

Fills the reference backend's store with ``--devices`` printers read ``--reads``
times each around one month (default 10,000 x 30 = 300,000 reads), in SQLite and
in PostgreSQL, then times the real command as a separate process:

    fleet-agent billing --period 2026-11 --policy POLICY --store DSN --output OUT.csv

With ``--stores ...,reads`` the same reads also go to a file of JSON lines, oldest
first with the devices interleaved (as a provider exports uploaded reads), billed
with ``--reads FILE`` instead of ``--store DSN``: the command streams the file.

and reports its wall time, CPU time (user + system) and peak RSS, all from
``wait4`` of that process (so nothing of this script is counted).

**The data.** Every device (serial ``BB<number>``, one of a few vendors and
models, a location) is read every 31/(reads-1) days from 31 October 12:00 to
1 December 12:00 UTC (30 reads: about daily), so both period boundaries are
interpolated. Each read carries ``total``, ``mono``, ``color`` and ``large``
meters that grow by a random day's printing. The policy bills three meter types
(``mono``, ``colour``, ``large_pages: 2 * large``) for the devices in its
``managed`` list, which names every serial (a 10,000-entry contract), so the
export is complete and exits 0 with ``devices x 3`` lines.

**How the rows are written.** Through the consumer's own write path for a read:
:meth:`backend.store.StoreBatch.insert_meter_reads` (what the consumer's
``insert_meter_read`` calls for each read) with the read's body (the body an
agent uploads: a :class:`mibs.models.PrinterRead` as JSON plus ``device_id``),
which validates it once (:func:`backend.billing.meter_row`; the consumer validates
it once too, as a ``ReadMessage``, and indexes that) and inserts its ``meter_reads``
rows, 5,000 reads per transaction and statement.
The ``messages`` row (signed token, chain bookkeeping) is left out: billing
never reads it, and signing 300,000 envelopes would only slow the set-up.

    .venv/bin/python -m bench.billing_bench                      # both stores, 10,000 x 30
    .venv/bin/python -m bench.billing_bench --devices 50 --reads 5 --runs 1   # a smoke run
    .venv/bin/python -m bench.billing_bench --stores sqlite --postgres DSN
    .venv/bin/python -m bench.billing_bench --stores sqlite,postgresql,reads

Only 127.0.0.1 is used (PostgreSQL started here as ``tests/support/postgres.py``
does, unless ``--postgres`` names a running server: a fresh database is
created in it).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.store import SqlStore, open_store

PERIOD = "2026-11"
FIRST = datetime(2026, 10, 31, 12, tzinfo=UTC)
LAST = datetime(2026, 12, 1, 12, tzinfo=UTC)
MODELS = (
    ("HP", "Color LaserJet Flow MFP M880"),
    ("Xerox", "AltaLink C8045"),
    ("Canon", "imageRUNNER ADVANCE C5535i"),
    ("Ricoh", "MP C3002"),
    ("Konica Minolta", "bizhub C250i"),
)
METER_TYPES = {"mono": "mono", "colour": "color", "large_pages": "2 * large"}
BATCH = 5000


def policy_text(serials: list[str]) -> str:
    """The contract: every serial managed, three meter types billed."""
    lines = [
        'version: "2026.11"',
        "models: [{vendor: '*', patterns: ['*']}]",
        "managed:",
        *(f"  - {serial}" for serial in serials),
        "billing:",
        "  under_contract: managed",
        "  pages_per_minute: 120",
        "  meter_types:",
        *(f"    {name}: {expression}" for name, expression in METER_TYPES.items()),
    ]
    return "\n".join(lines) + "\n"


def read_times(reads: int) -> list[datetime]:
    if reads == 1:
        return [FIRST + (LAST - FIRST) / 2]
    step = (LAST - FIRST) / (reads - 1)
    return [FIRST + step * n for n in range(reads)]


def serial_of(number: int) -> str:
    return f"BB{number:08d}"


def read_bodies(devices: int, reads: int, seed: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(message id, uploaded read body) of every read, device by device, oldest first."""
    rng = random.Random(seed)
    times = read_times(reads)
    for number in range(devices):
        vendor, model = MODELS[number % len(MODELS)]
        serial = serial_of(number)
        mono, color, large = rng.randint(0, 500_000), rng.randint(0, 200_000), 0
        daily = rng.lognormvariate(4.5, 0.8)  # about 90 pages a day, a long tail
        for sequence, at in enumerate(times):
            if sequence:
                pages = int(daily * rng.uniform(0.0, 2.0))
                share = rng.uniform(0.1, 0.5)
                mono += pages - int(pages * share)
                color += int(pages * share)
                large += int(pages * rng.uniform(0.0, 0.1))
            body = {
                "schema_version": "1.0",
                "address": f"10.{number // 62500}.{number // 250 % 250}.{number % 250 + 1}",
                "collected_at": at.isoformat(),
                "identity": {
                    "vendor": vendor,
                    "model": model,
                    "serial": serial,
                    "location": f"Site {number % 97}/Floor {number % 7}",
                    "is_printer": True,
                },
                "counters": {
                    "total": mono + color,
                    "mono": mono,
                    "color": color,
                    "large": large,
                },
                "device_id": f"sn:{vendor.split()[0].lower()}:{serial}",
                "purpose": "meters",
            }
            yield f"bench-{number:08d}-{sequence:03d}", body


def fill(store: SqlStore, devices: int, reads: int, seed: int) -> float:
    """Write every read through the consumer's path; returns the seconds it took."""
    started = time.perf_counter()
    bodies = read_bodies(devices, reads, seed)
    while True:
        chunk = [item for _, item in zip(range(BATCH), bodies, strict=False)]
        if not chunk:
            break
        with store.batch() as batch:
            batch.insert_meter_reads(chunk)
    stored = int(store.execute("SELECT count(*) FROM meter_reads").fetchone()[0])
    if stored != devices * reads:
        raise SystemExit(f"{store.url}: {stored} meter rows stored, {devices * reads} expected")
    return time.perf_counter() - started


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    user_s: float
    system_s: float
    peak_rss_mb: float


def fleet_agent() -> list[str]:
    script = shutil.which("fleet-agent", path=str(Path(sys.executable).parent))
    if script is not None:
        return [script]
    return [sys.executable, "-c", "import sys; from agent.cli import main; sys.exit(main())"]


def write_reads(path: Path, devices: int, reads: int, seed: int) -> float:
    """The same reads as JSON lines, oldest first, devices interleaved; returns the seconds."""
    started = time.perf_counter()
    by_time: list[list[str]] = [[] for _ in range(reads)]
    for message_id, body in read_bodies(devices, reads, seed):
        sequence = int(message_id.rsplit("-", 1)[1])
        by_time[sequence].append(json.dumps(body, separators=(",", ":")))
    with path.open("w", encoding="utf-8") as stream:
        for lines in by_time:
            stream.write("\n".join(lines) + "\n")
    return time.perf_counter() - started


def run_billing(source: list[str], policy: Path, output: Path) -> Run:
    """One ``fleet-agent billing`` process (``source``: ``--store DSN`` or ``--reads FILE``)."""
    command = [*fleet_agent(), "billing", "--period", PERIOD, "--policy", str(policy)]
    command += [*source, "--output", str(output)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    assert process.stderr is not None
    errors = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    process.returncode = code
    if code != 0:
        raise SystemExit(f"fleet-agent billing exited {code}: {errors[:2000]}")
    return Run(
        wall_s=round(wall, 3),
        cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
        user_s=round(usage.ru_utime, 3),
        system_s=round(usage.ru_stime, 3),
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),  # kilobytes on Linux
    )


def check_export(output: Path, devices: int) -> int:
    """The export has one line per device and meter type, each with a positive usage."""
    with output.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    if len(rows) != devices * len(METER_TYPES):
        raise SystemExit(f"{output}: {len(rows)} lines, {devices * len(METER_TYPES)} expected")
    if {row["serial"] for row in rows} != {serial_of(n) for n in range(devices)}:
        raise SystemExit(f"{output}: not every device is billed")
    if any(int(row["usage"]) < 0 for row in rows):
        raise SystemExit(f"{output}: a negative usage")
    return len(rows)


@contextlib.contextmanager
def postgres_database(server: str | None) -> Iterator[str]:
    """A fresh database in ``server`` (a DSN), or in a throw-away local server."""
    import psycopg

    with contextlib.ExitStack() as stack:
        if server is None:
            from tests.support.postgres import local_postgres

            server = stack.enter_context(local_postgres())
        name = f"billing_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server, autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}")
        try:
            yield server.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with psycopg.connect(server, autocommit=True) as db:
                db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def store_dsn(kind: str, work: Path, postgres: str | None) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{work / 'billing-bench.db'}"
    else:
        with postgres_database(postgres) as dsn:
            yield dsn


def bench_store(kind: str, work: Path, args: argparse.Namespace, policy: Path) -> dict[str, object]:
    output = work / f"export-{kind}.csv"
    if kind == "reads":
        path = work / "reads.jsonl"
        fill_s = write_reads(path, args.devices, args.reads, args.seed)
        runs = [run_billing(["--reads", str(path)], policy, output) for _ in range(args.runs)]
        lines = check_export(output, args.devices)
        file_mb = path.stat().st_size / 1e6
        path.unlink()
    else:
        with store_dsn(kind, work, args.postgres) as dsn:
            store = open_store(dsn)
            try:
                fill_s = fill(store, args.devices, args.reads, args.seed)
                if kind == "postgresql":
                    store.execute("ANALYZE meter_reads")
            finally:
                store.close()
            runs = [run_billing(["--store", dsn], policy, output) for _ in range(args.runs)]
            lines = check_export(output, args.devices)
            file_mb = None
    return {
        "store": kind,
        "fill_s": round(fill_s, 1),
        "export_lines": lines,
        **({} if file_mb is None else {"reads_file_mb": round(file_mb, 1)}),
        "export_bytes": output.stat().st_size,
        "runs": [vars(run) for run in runs],
        "median_wall_s": statistics.median(run.wall_s for run in runs),
        "median_cpu_s": statistics.median(run.cpu_s for run in runs),
        "max_peak_rss_mb": max(run.peak_rss_mb for run in runs),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=30, help="reads per device (default 30)")
    parser.add_argument("--runs", type=int, default=3, help="billing runs per store")
    parser.add_argument(
        "--stores",
        default="sqlite,postgresql",
        help="sqlite, postgresql, reads (a file of reads), comma-separated",
    )
    parser.add_argument("--postgres", metavar="DSN", help="a running server to use")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    kinds = [kind.strip() for kind in args.stores.split(",") if kind.strip()]
    if not kinds or set(kinds) - {"sqlite", "postgresql", "reads"}:
        parser.error("--stores: sqlite, postgresql, reads, or several comma-separated")
    if args.devices < 1 or args.reads < 2 or args.runs < 1:
        parser.error("--devices >= 1, --reads >= 2 and --runs >= 1")
    report: dict[str, object] = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} vCPU, "
        f"Python {platform.python_version()}, {platform.platform()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(
            [Path(sys.executable).name, "-m", "bench.billing_bench", *sys.argv[1:]]
        ),
        "devices": args.devices,
        "reads": args.devices * args.reads,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="billing-bench-") as directory:
        work = Path(directory)
        policy = work / "policy.yaml"
        policy.write_text(policy_text([serial_of(n) for n in range(args.devices)]))
        results = []
        for kind in kinds:
            results.append(bench_store(kind, work, args, policy))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)  # each store as it ends
        if len(results) > 1:
            exports = {kind: (work / f"export-{kind}.csv").read_bytes() for kind in kinds}
            same = len(set(exports.values())) == 1
            report["exports_identical"] = same
            if not same:
                raise SystemExit(f"the exports of {', '.join(kinds)} differ")
    report["results"] = results
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
