"""Smoke run of ``bench/billing_bench.py`` at a tiny size, so the benchmark cannot rot.

Fills SQLite and PostgreSQL through the consumer's write path and writes the same
reads to a file of JSON lines, runs the real ``fleet-agent billing`` process
against each (``--store`` twice, ``--reads`` once), checks the export (a line per
device and meter type) and that all three give the same bytes. No timing is
asserted: that is the benchmark's job, recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.billing_bench import METER_TYPES, main

pytestmark = pytest.mark.integration
DEVICES, READS = 12, 4


def test_billing_bench_runs_on_both_stores_and_a_file(postgres_server: str, tmp_path: Path) -> None:
    out = tmp_path / "billing.json"
    code = main(
        ["--devices", str(DEVICES), "--reads", str(READS), "--runs", "1"]
        + ["--stores", "sqlite,postgresql,reads"]
        + ["--postgres", postgres_server, "--json", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["reads"] == DEVICES * READS
    assert report["exports_identical"] is True
    stores = {result["store"]: result for result in report["results"]}
    assert set(stores) == {"sqlite", "postgresql", "reads"}
    for result in stores.values():
        assert result["export_lines"] == DEVICES * len(METER_TYPES)
        [run] = result["runs"]
        assert run["peak_rss_mb"] > 0
        assert run["cpu_s"] > 0
