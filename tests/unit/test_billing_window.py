"""What `billing --reads` keeps of a stream of reads: the same export, a bounded memory."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.billing import BillingRead, bill, parse_period
from backend.billing_window import PeriodReads
from mibs.metering import BillingPolicy
from tests.unit.test_billing import billing_policy, printer_read, run_cli, usage_of, write_policy

NOV = parse_period("2026-11")
LOOKAROUND = timedelta(days=45)
SINCE, UNTIL = NOV.window(LOOKAROUND)
POLICY = billing_policy()
SERIALS = ("CNB0000001", "CNB0000002", "CNB0000009", None)
DEVICES = ("sn:hp:CNB0000001", "sn:hp:CNB0000002", "mac:00:11:22:33:44:55")
MODELS = ("Color LaserJet M477fdw", "LaserJet M607")

# Times in hours from 60 days before November to 60 days after it: reads outside
# the window, in the lookaround, inside, and exactly on both boundaries (ties too).
HOURS = st.one_of(
    st.integers(min_value=-60 * 24, max_value=(30 + 60) * 24),
    st.sampled_from([0, 30 * 24, -1, 30 * 24 - 1, -45 * 24, 75 * 24]),
)
METER = st.one_of(st.none(), st.integers(min_value=0, max_value=10_000))


@st.composite
def a_read(draw: st.DrawFn) -> BillingRead:
    meters = {"mono": draw(METER), "color": draw(METER), "total": draw(METER)}
    return BillingRead(
        device_id=draw(st.sampled_from(DEVICES)),
        collected_at=NOV.start + timedelta(hours=draw(HOURS)),
        serial=draw(st.sampled_from(SERIALS)),
        vendor="HP",
        model=draw(st.sampled_from(MODELS)),
        location=draw(st.sampled_from(("Berlin/2", "Paris/1"))),
        source=draw(st.sampled_from(("device", "manual"))),
        meters={name: value for name, value in meters.items() if value is not None},
    )


def every_read(reads: list[BillingRead]) -> list[BillingRead]:
    """What `billing --reads` did before streaming: the window's reads, sorted (stable)."""
    kept = [read for read in reads if SINCE <= read.collected_at < UNTIL]
    return sorted(kept, key=lambda read: (read.device_id, read.collected_at))


def streamed(reads: list[BillingRead]) -> PeriodReads:
    window = PeriodReads(NOV, SINCE, UNTIL)
    for read in reads:
        window.add(read)
    return window


CONTRACTS = st.one_of(
    st.none(),
    st.lists(st.sampled_from([*DEVICES, "CNB0000001", "CNB0000009", "CNB0000004"]), min_size=1),
)


@given(reads=st.lists(a_read(), max_size=40), contract=CONTRACTS)
def test_the_kept_reads_bill_exactly_like_every_read(
    reads: list[BillingRead], contract: list[str] | None
) -> None:
    policy: BillingPolicy = POLICY
    expected = bill(every_read(reads), period=NOV, billing=policy, contract=contract)
    got = bill(streamed(reads).reads(), period=NOV, billing=policy, contract=contract)
    assert got == expected


def test_a_year_of_hourly_reads_keeps_the_month_and_a_few_more() -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    reads = []
    for hour in range(365 * 24):
        for device in range(3):
            reads.append(
                BillingRead(
                    device_id=f"sn:hp:CNB000000{device}",
                    collected_at=start + timedelta(hours=hour),
                    serial=f"CNB000000{device}",
                    vendor="HP",
                    model="LaserJet M607",
                    location=None,
                    source="device",
                    meters={"mono": hour * 3, "color": hour},
                )
            )
    random.Random(7).shuffle(reads)  # any order: a file that concatenates several exports
    kept = list(streamed(reads).reads())
    # November's 720 hours, the read before and the one at its end, the window's last.
    assert len(kept) == 3 * (720 + 3)
    export = bill(kept, period=NOV, billing=POLICY, contract=None)
    assert {(line.serial, line.meter_type): line.usage for line in export.lines} == {
        (f"CNB000000{device}", meter_type): usage
        for device in range(3)
        for meter_type, usage in (("mono", 720 * 3), ("colour", 720))
    }


def test_command_streams_a_file_oldest_first_with_reads_far_outside_the_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reads, rejects = tmp_path / "reads.jsonl", tmp_path / "rejects.csv"
    lines = []
    for day in range(-200, 120, 5):  # September to March, two devices interleaved
        when = NOV.start + timedelta(days=day, hours=12)
        for serial in ("CNB0000001", "CNB0000002"):
            lines.append(printer_read(when, serial, 1000 + 10 * day, 100 + day).model_dump_json())
    reads.write_text("\n".join(lines) + "\n")
    code, out, err = run_cli(
        ["--policy", str(write_policy(tmp_path)), "--reads", str(reads), "--rejects", str(rejects)],
        capsys,
    )
    assert code == 0
    assert "CNB0000003" in err  # under contract, no read: written apart
    assert "CNB0000003" in rejects.read_text()
    # 10 pages a day and one colour page a day, boundaries interpolated at midnight.
    assert usage_of(out) == {
        ("CNB0000001", "mono"): 300,
        ("CNB0000001", "colour"): 30,
        ("CNB0000002", "mono"): 300,
        ("CNB0000002", "colour"): 30,
    }


def test_command_names_the_bad_line_of_a_streamed_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reads = tmp_path / "reads.jsonl"
    good = printer_read(NOV.start, "CNB0000001", 10, 1).model_dump_json()
    body = json.loads(good)
    body["counters"]["mono"] = "many"
    reads.write_text("\n".join([good, good, json.dumps(body), "{", good]) + "\n")
    code, out, err = run_cli(
        ["--policy", str(write_policy(tmp_path)), "--reads", str(reads)], capsys
    )
    assert (code, out) == (2, "")
    assert f"{reads}:3: counters.mono" in err
    assert f"{reads}:4: not JSON" in err
