"""Billing meter types filled from a real device's read (the LibreNMS Konica Minolta C250i).

The recording is read the way a provider reads a customer's walk (``fleet-agent scan
--file``), then the month is simulated: the same read three times, its meters grown
by known amounts. The contract bills duplex and colour by function (the C250i reports
print and copy per colour, and a duplex count, but no mono or colour total): each meter
type must give exactly the pages added, from a file of reads and from the store, and a
meter type over a meter the device does not report is refused by name, not billed as 0.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from backend.store import open_store

POLICY = """\
version: "2026.11"
models: [{vendor: "*", patterns: ["*"]}]
managed: [AA2M021115700]
billing:
  meter_types:
    duplex: duplex
    colour: print_color + copy_color
    mono: print_mono + copy_mono
    pages: total
"""
TIMES = ("2026-10-31T12:00:00+00:00", "2026-11-15T00:00:00+00:00", "2026-12-01T00:00:00+00:00")
GROWTH = {  # meter -> added before each read
    "duplex": (0, 100, 150),
    "print_color": (0, 40, 60),
    "copy_color": (0, 10, 20),
    "print_mono": (0, 300, 500),
    "copy_mono": (0, 20, 30),
}


def konica_read(shared: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    walk = shared / "librenms__konica_c250i.snmprec"
    assert main(["scan", "--file", str(walk), "--format", "json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    read: dict[str, Any] = json.loads(line)
    return read


def month_of_reads(read: dict[str, Any]) -> list[dict[str, Any]]:
    reads = []
    added = dict.fromkeys(GROWTH, 0)
    for number, at in enumerate(TIMES):
        item = copy.deepcopy(read)
        item["collected_at"] = at
        for meter, steps in GROWTH.items():
            added[meter] += steps[number]
            item["counters"][meter] += added[meter]
        item["counters"]["total"] += sum(added[m] for m in ("print_color", "copy_color"))
        item["counters"]["total"] += sum(added[m] for m in ("print_mono", "copy_mono"))
        reads.append(item)
    return reads


def lines(text: str) -> dict[str, dict[str, str]]:
    return {row["meter_type"]: row for row in csv.DictReader(io.StringIO(text))}


def test_duplex_and_colour_by_function_are_billed_from_the_real_read(
    shared_recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    read = konica_read(shared_recordings, capsys)
    counters = {k: v for k, v in read["counters"].items() if v is not None}
    assert counters["duplex"] == 7357  # kmSysPrintCounter …5.7.2.1.3.0
    assert (counters["print_color"], counters["copy_color"]) == (6711, 544)
    assert "mono" not in counters  # no total of either
    assert "color" not in counters
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    reads = tmp_path / "reads.jsonl"
    reads.write_text("".join(json.dumps(item) + "\n" for item in month_of_reads(read)))
    args = ["billing", "--period", "2026-11", "--policy", str(policy)]
    assert main([*args, "--reads", str(reads)]) == 0
    from_file = capsys.readouterr().out
    billed = lines(from_file)
    # 1 Nov is interpolated between 31 Oct 12:00 and 15 Nov; 1 Dec is a read.
    assert {name: int(row["usage"]) for name, row in billed.items()} == {
        "duplex": 250 - 3,  # 7357 + 250 at the end; 7357 + 100 * 12/348 -> 7360 at the start
        "colour": 130 - 2,  # 7255 + 130; 7255 + 50 * 12/348 = 7256.7 -> 7257
        "mono": 850 - 11,  # 26548 + 850; 26548 + 320 * 12/348 = 26559.0
        "pages": 980 - 13,  # 33810 + 980; 33810 + 370 * 12/348 = 33822.8 -> 33823
    }
    assert billed["duplex"]["end_value"] == str(7357 + 250)
    assert billed["colour"]["expression"] == "print_color + copy_color"

    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.batch() as batch:
        batch.insert_meter_reads(
            (f"m{number}", {**item, "device_id": "sn:konica-minolta:AA2M021115700"})
            for number, item in enumerate(month_of_reads(read))
        )
    store.close()
    assert main([*args, "--store", f"sqlite:///{tmp_path / 'store.db'}"]) == 0
    assert capsys.readouterr().out == from_file


def test_a_total_the_device_does_not_report_is_refused_by_name(
    shared_recordings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    read = konica_read(shared_recordings, capsys)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace("    pages: total\n", "    colour_total: color\n"))
    reads = tmp_path / "reads.jsonl"
    reads.write_text("".join(json.dumps(item) + "\n" for item in month_of_reads(read)))
    code = main(["billing", "--period", "2026-11", "--policy", str(policy), "--reads", str(reads)])
    assert code == 1
    err = capsys.readouterr().err
    assert "meter type colour_total: billing_meter_missing: the device does not report color" in err
