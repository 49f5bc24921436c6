"""The soak benchmark's pure parts: fleet layout, log/metrics parsing, counting and verdicts."""

from __future__ import annotations

import importlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from collectors.targets import parse_targets
from mibs.snmprec import parse_snmprec
from uploader.envelope import Signer
from uploader.keys import AgentKey

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


fleet = _bench("soak_fleet")
report = _bench("soak_report")

SERIAL_OID = (1, 3, 6, 1, 2, 1, 43, 5, 1, 1, 17)


def test_synthetic_fleet_is_varied_unique_and_deterministic() -> None:
    specs = fleet.synthetic_fleet(700)
    assert len({s.serial for s in specs}) == 700
    assert len({s.mac for s in specs}) == 700
    assert len({s.name for s in specs}) == 700
    assert {s.vendor for s in specs} == set(fleet.VENDORS)
    assert {s.color for s in specs} == {True, False}
    low = [s for s in specs if s.error_bits == b"\x20"]
    assert 0 < len(low) < 70  # a few need toner, most do not
    assert fleet.synthetic_fleet(3) == specs[:3]
    assert fleet.synthetic_fleet(3, seed=7) != specs[:3]


def test_recording_carries_the_printers_own_serial() -> None:
    spec = fleet.synthetic_printer(4321)
    records = parse_snmprec(fleet.to_snmprec(spec))
    serials = [r.value for r in records if r.oid[:11] == SERIAL_OID]
    assert serials == [spec.serial.encode()]


def test_addresses_fill_250_per_block_on_loopback_only() -> None:
    addresses = fleet.fleet_addresses(10_000)
    assert addresses[0] == "127.1.0.1"
    assert addresses[249] == "127.1.0.250"
    assert addresses[250] == "127.1.1.1"
    assert addresses[-1] == "127.1.39.250"
    assert len(set(addresses)) == 10_000
    with pytest.raises(ValueError, match="only loopback"):
        fleet.fleet_addresses(10, "10.1.0.0")
    with pytest.raises(ValueError, match=r"leave 127\.0\.0\.0/8"):
        fleet.fleet_addresses(1000, "127.255.254.0")


def test_target_ranges_cover_exactly_the_fleet() -> None:
    addresses = fleet.fleet_addresses(1_234, "127.9.0.0")
    ranges = fleet.target_ranges(addresses)
    assert len(ranges) == 5
    assert [str(a) for a in parse_targets(ranges)] == addresses
    with pytest.raises(ValueError, match="not contiguous"):
        fleet.target_ranges(["127.9.0.1", "127.9.0.3"])


def test_parse_metrics_reads_counters_by_kind_and_outcome() -> None:
    text = (
        "# HELP fleet_agent_reads_total Device reads by outcome.\n"
        'fleet_agent_reads_total{kind="meters",outcome="ok"} 9998.0\n'
        'fleet_agent_reads_total{kind="meters",outcome="silent"} 2.0\n'
        'fleet_agent_reads_created{kind="meters",outcome="ok"} 1.7e+09\n'
        'fleet_agent_reads_total{kind="supplies",outcome="partial"} 1.0\n'
    )
    assert report.parse_metrics(text) == {
        "meters": {"ok": 9998, "silent": 2},
        "supplies": {"partial": 1},
    }


def _line(event: str, level: str = "info", **fields: Any) -> str:
    return json.dumps(
        {"event": event, "level": level, "timestamp": "2026-11-22T11:00:00.500000Z", **fields}
    )


def test_parse_daemon_log_finds_cycles_discovery_failures(tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    lines = [
        "not json at all",
        _line("discovery.completed", addresses=10, printers=9, elapsed=1.5, job="discovery"),
        _line("reads.completed", purpose="meters", devices=9, ok=8, partial=1, silent=0,
              failed=0, elapsed=2.25),
        _line("read.silent", "warning", address="127.1.0.9"),
        _line("job.failed", "error", error="RuntimeError: boom"),
        _line("daemon.stopped", queue_depth=3, published=40),
    ]  # fmt: skip
    log.write_text("\n".join(lines) + "\n")
    parsed = report.parse_daemon_log(log)
    assert parsed["discovery"]["printers"] == 9
    [cycle] = parsed["cycles"]
    assert cycle["purpose"] == "meters"
    assert cycle["ok"] == 8
    assert cycle["ended_at"] == datetime(2026, 11, 22, 11, 0, 0, 500000, UTC).timestamp()
    assert parsed["warnings"] == {"read.silent": 1, "job.failed": 1}
    assert parsed["job_failures"] == ["RuntimeError: boom"]
    assert (parsed["published"], parsed["final_queue_depth"]) == (40, 3)


def test_broker_counter_decodes_counts_and_drops_redeliveries() -> None:
    signer = Signer(AgentKey.generate(), "soak-bench")
    read = signer.sign(
        kind="read", body={"device_id": "d1", "purpose": "meters"}, sequence=1, prev_hash=None
    )
    event = signer.sign(
        kind="event", body={"event": "device_found"}, sequence=2, prev_hash="x" * 43
    )
    counter = report.BrokerCounter("fleet/bench/soak-bench/#")
    counter.observe("fleet/bench/soak-bench/reads", read.token.encode())
    counter.observe("fleet/bench/soak-bench/reads", read.token.encode())
    counter.observe("fleet/bench/soak-bench/events", event.token.encode())
    counter.observe("fleet/bench/soak-bench/status", b"online")
    counter.observe("fleet/bench/soak-bench/reads", b"garbage")
    summary = counter.as_dict()
    assert (summary["reads"], summary["events"], summary["status"]) == (1, 1, 1)
    assert (summary["duplicates"], summary["undecodable"]) == (1, 1)
    assert summary["devices_read_by_purpose"] == {"meters": 1}
    assert summary["event_names"] == {"device_found": 1}


def test_slope_per_hour() -> None:
    assert report.slope_per_hour([(0.0, 100.0), (1800.0, 105.0), (3600.0, 110.0)]) == 10.0
    assert report.slope_per_hour([(0.0, 5.0), (10.0, 5.0), (20.0, 5.0)]) == 0.0
    assert report.slope_per_hour([(0.0, 1.0), (1.0, 2.0)]) is None


def _samples(
    rss_mb: list[float], start: float = 1000.0, step: float = 60.0
) -> list[dict[str, Any]]:
    return [
        {
            "t": i * step,
            "wall": start + i * step,
            "cpu_s": i * 10.0,
            "rss_kb": int(mb * 1024),
            "hwm_kb": int(max(rss_mb[: i + 1]) * 1024),
            "queue_depth": 5,
            "queue_oldest_s": 1.0,
        }
        for i, mb in enumerate(rss_mb)
    ]


def _cycle(ended_at: float, *, read: int = 100, elapsed: float = 100.0) -> dict[str, Any]:
    return {"purpose": "supplies", "devices": 100, "ok": read, "partial": 0, "silent": 100 - read,
            "failed": 0, "elapsed": elapsed, "ended_at": ended_at}  # fmt: skip


def _summary(
    cycles: list[dict[str, Any]],
    rss: list[float],
    *,
    signed: int = 310,
    reads: int = 300,
) -> dict[str, Any]:
    counter = report.BrokerCounter("t")
    counter.reads, counter.events = reads, 10
    log = {"cycles": cycles, "discovery": {"printers": 100}, "warnings": {}, "job_failures": []}
    result: dict[str, Any] = report.summarise(
        options={},
        samples=_samples(rss),
        log=log,
        counter=counter,
        outbox={"signed": signed, "queued": 0, "queued_reads": 0},
        devices=100,
        responder_counts={"127.1.0.1": {"get": 800, "getbulk": 400, "wrong_community": 3}},
    )
    return result


def test_summary_meets_targets_for_a_healthy_run() -> None:
    rss = [60, 80, 90, 92, 90, 91, 90, 93]  # one sample a minute from t=1000
    summary = _summary([_cycle(1130), _cycle(1250), _cycle(1370)], rss)
    assert summary["targets"] == {
        "every_device_read_each_cycle_within_15min": True,
        "peak_rss_under_256mb": True,
        "rss_flat": True,
        "every_read_arrived_at_broker": True,
        "all_met": True,
    }
    assert [c["rss_after_mb"] for c in summary["cycles"]] == [92.0, 91.0, 93.0]
    assert summary["cycles"][0]["daemon_cpu_s"] == 30.0  # samples at 1000 and 1180
    assert summary["requests_per_read"] == 3.0  # 1200 GET/GETBULK for 300 reads + 100 sightings
    assert "**no**" not in report.markdown(summary)


def test_summary_judges_flatness_without_the_cycle_cut_by_the_stop() -> None:
    rss = [60, 80, 90, 92, 90, 91, 90, 93]  # the last cycle ends after the last sample
    summary = _summary([_cycle(1130), _cycle(1250), _cycle(1370), _cycle(1500)], rss, reads=400)
    assert summary["cycles"][-1].get("rss_after_mb") is None
    assert summary["rss"]["after_last_cycle_mb"] == 93.0
    assert summary["targets"]["rss_flat"] is True


@pytest.mark.parametrize(
    ("cycles", "rss", "signed", "failed"),
    [
        ([_cycle(1130), _cycle(1250, read=99)], [60, 80, 90, 90, 90], 310, "every_device"),
        ([_cycle(1130, elapsed=901.0)], [60, 80, 90], 310, "every_device"),
        ([_cycle(1130), _cycle(1250)], [60, 300, 90, 90, 90], 310, "peak_rss"),
        ([_cycle(1130), _cycle(1250), _cycle(1370)], [60, 80, 90, 100, 110, 120, 130, 140], 310,
         "rss_flat"),
        ([_cycle(1130), _cycle(1250)], [60, 80, 90, 90, 90], 311, "every_read"),
    ],
)  # fmt: skip
def test_summary_names_each_missed_target(
    cycles: list[dict[str, Any]], rss: list[float], signed: int, failed: str
) -> None:
    summary = _summary(cycles, rss, signed=signed)
    missed = [name for name, met in summary["targets"].items() if met is False]
    assert missed == [next(n for n in summary["targets"] if n.startswith(failed)), "all_met"]
    assert "**no**" in report.markdown(summary)
