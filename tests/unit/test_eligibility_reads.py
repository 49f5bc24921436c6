"""Reads files for ``fleet-agent eligibility``, and rule invariants over generated reads."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.eligibility.models import REASON_CODES
from agent.eligibility.reads import parse_reads
from agent.errors import ConfigError
from tests.unit.test_eligibility_rules import make_read, toner, verdict


def test_reads_round_trip_and_old_verdicts_are_dropped() -> None:
    read = make_read()
    record = json.loads(read.model_dump_json()) | {"eligibility": {"eligible": True}}
    assert parse_reads(["", json.dumps(record), "  "], source="r") == [read]


def test_many_bad_lines_are_reported_up_to_twenty() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_reads(["[1]"] + ["nope"] * 25, source="r.jsonl")
    lines = str(caught.value).splitlines()
    assert lines[0] == "not a file of reads:"
    assert lines[1] == "  r.jsonl:1: expected a JSON object per line"
    assert lines[2] == "  r.jsonl:2: not JSON: Expecting value (column 1)"
    assert lines[-1] == "  ... and 6 more"
    assert len(lines) == 22


_TOTALS = st.one_of(st.none(), st.integers(min_value=0, max_value=200_000))
_ERRORS = st.lists(st.sampled_from(["jammed", "no_toner", "low_paper", "offline"]), unique=True)


@settings(max_examples=200, deadline=None)
@given(
    total=_TOTALS,
    serial=st.one_of(st.none(), st.just(""), st.just("SN1")),
    model=st.sampled_from(["LaserJet M130nw", "LaserJet Pro M404dn", "LaserJet 1020", None]),
    errors=_ERRORS,
    percent=st.one_of(st.none(), st.floats(min_value=0, max_value=100)),
    state=st.sampled_from(["ok", "low", "empty", "unknown", "some_remaining"]),
    is_printer=st.booleans(),
    location=st.one_of(st.none(), st.just("Berlin/Floor 2")),
)
def test_rule_invariants(
    total: int | None,
    serial: str | None,
    model: str | None,
    errors: list[str],
    percent: float | None,
    state: str,
    is_printer: bool,
    location: str | None,
) -> None:
    read = make_read(
        total=total,
        serial=serial,
        model=model,
        errors=errors,
        supplies=[toner(percent, state=state)],
        is_printer=is_printer,
        location=location,
    )
    result = verdict(read)
    codes = [reason.code for reason in result.reasons]
    # Eligible exactly when there is no reason; reasons come in the documented order.
    assert result.eligible is (not codes)
    order = [REASON_CODES.index(code) for code in codes]
    assert order == sorted(order)
    # Missing data is never silently eligible.
    if total is None:
        assert "lifetime_count_missing" in codes
        assert "lifetime_count_over_max" not in codes
    if not serial:
        assert "serial_missing" in codes
    if model is None:
        assert "model_not_supported" in codes
    if not is_printer:
        assert "not_a_printer" in codes
    if total is not None:
        assert ("lifetime_count_over_max" in codes) is (total > 100_000)
    checks = {reason.check for reason in result.reasons if reason.check}
    assert ("error_state.jammed" in checks) is ("jammed" in errors)
    assert ("error_state.low_paper" in checks) is False
    if percent is not None:
        assert ("supply_level" in checks) is (percent < 10)
