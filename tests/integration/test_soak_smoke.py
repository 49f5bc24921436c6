"""Smoke run of ``bench/soak_bench.py``: 200 printers, ``fleet-agent run --once``, real peers.

The benchmark's own machinery (replay responders on loopback, Debian Mosquitto,
the counting subscriber, the daemon as a subprocess, /proc sampling, the
summary) runs end to end, and every printer must be discovered, read and
delivered to the broker.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOAK = REPO / "bench" / "soak_bench.py"
DEVICES = 200


@pytest.mark.skipif(not Path("/usr/sbin/mosquitto").exists(), reason="needs Debian mosquitto")
def test_soak_smoke_reads_every_device_and_delivers_every_read(tmp_path: Path) -> None:
    base = (
        f"127.{random.randint(64, 250)}.{random.randrange(0, 250, 2)}.0"  # apart from parallel runs
    )
    out = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, str(SOAK), "--devices", str(DEVICES), "--once", "--base", base,
         "--sample-interval", "0.5", "--workdir", str(tmp_path / "work"), "--json", str(out),
         "--per-responder", "120"],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(out.read_text())

    assert summary["discovered"] == DEVICES
    [cycle] = summary["cycles"]
    assert (cycle["purpose"], cycle["devices"], cycle["read"]) == ("meters", DEVICES, DEVICES)
    assert cycle["silent"] == cycle["failed"] == 0

    broker = summary["broker"]
    assert broker["reads_by_purpose"] == {"meters": DEVICES}
    assert broker["devices_read_by_purpose"] == {"meters": DEVICES}
    assert broker["event_names"]["device_found"] == DEVICES
    assert broker["lost"] == 0
    assert broker["undecodable"] == 0
    # device_found + supply_low events and one read per printer were signed, none left behind
    assert summary["outbox"]["signed"] == broker["reads"] + broker["events"]
    assert summary["outbox"]["queued"] == 0

    # two responder processes served the fleet; each printer answered a full read
    assert summary["snmp_requests_served"] >= 2 * DEVICES
    assert summary["rss"]["peak_mb"] > 10
    assert summary["targets"]["all_met"] is True
    assert "| Devices discovered | 200 of 200 | all | yes |" in done.stdout
