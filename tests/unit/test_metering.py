"""Contract meter types: expressions, the policy's billing block, billing_meter_missing."""

from __future__ import annotations

import pytest

from agent.eligibility.policy import parse_policy
from agent.eligibility.rules import evaluate_read
from agent.errors import ConfigError
from mibs.metering import DEFAULT_PAGES_PER_MINUTE, MeterExpression, device_meters, parse_terms
from mibs.models import Counters
from tests.unit.test_eligibility_rules import make_read

GOOD = """\
version: "7"
models:
  - vendor: HP
    names: [LaserJet M130nw]
billing:
  meter_types:
    mono: mono
    colour: color
    all_print: print_mono + print_color
  models:
    - vendor: HP
      patterns: ["LaserJet M1*"]
      pages_per_minute: 22
      meter_types:
        colour: total - mono
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_policy(text)
    return str(caught.value)


def test_expression_value_is_the_sum_of_its_terms() -> None:
    expression = MeterExpression.model_validate("color + 2 * copy_color - fax")
    assert expression.meters == ("color", "copy_color", "fax")
    assert expression.value({"color": 100, "copy_color": 10, "fax": 5}) == 115
    assert MeterExpression.model_validate("total*3").value({"total": 7}) == 21


def test_expression_with_a_missing_meter_has_no_value() -> None:
    expression = MeterExpression.model_validate("mono + color")
    assert expression.value({"mono": 5, "color": None}) is None
    assert expression.value({"mono": 5}) is None
    assert expression.missing({"mono": 5}) == ("color",)


def test_expression_serialises_as_its_text() -> None:
    policy = parse_policy(GOOD)
    assert policy.billing is not None
    dumped = policy.billing.model_dump(mode="json")
    assert dumped["meter_types"] == {
        "mono": "mono",
        "colour": "color",
        "all_print": "print_mono + print_color",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty meter expression"),
        ("mono +", "expected a meter name at 'the end'"),
        ("mono color", "expected + or - before 'color'"),
        ("colour", "unknown meter 'colour'"),
        ("0 * mono", "a factor of 0"),
        ("mono / 2", "unexpected '/ 2'"),
        ("2 * 3", "expected a meter name at '2'"),
    ],
)
def test_bad_expressions_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_terms(text)
    assert message in str(caught.value)


def test_device_meters_reads_the_counters_json() -> None:
    counters = Counters(total=10, copies=3, unit="impressions").model_dump(by_alias=True)
    meters = device_meters(counters)
    assert meters["copy"] == 3
    assert meters["total"] == 10
    assert "unit" not in meters


def test_billing_block_loads_with_model_overrides() -> None:
    policy = parse_policy(GOOD)
    billing = policy.billing
    assert billing is not None
    assert billing.pages_per_minute == DEFAULT_PAGES_PER_MINUTE
    assert billing.pages_per_minute_for("HP", "LaserJet M130nw") == 22
    assert billing.pages_per_minute_for("HP", "Color LaserJet M477") == DEFAULT_PAGES_PER_MINUTE
    types = billing.meter_types_for("HP", "HP LaserJet M130nw")
    assert types["colour"].text == "total - mono"
    assert types["mono"].text == "mono"
    assert billing.meter_types_for("Brother", "HL-5370")["colour"].text == "color"
    assert billing.meter_types_for(None, None)["colour"].text == "color"


def test_unknown_meter_names_file_line_and_field() -> None:
    text = GOOD.replace("colour: color\n", "colour: colour_total\n")
    assert error_of(text).startswith(
        "policy.yaml:8: billing.meter_types.colour: unknown meter 'colour_total'"
    )


def test_bad_expression_in_a_model_rule_names_its_line() -> None:
    text = GOOD.replace("total - mono", "total -")
    assert error_of(text) == (
        "policy.yaml:15: billing.models[0].meter_types.colour: "
        "expected a meter name at 'the end' in 'total -' (got 'total -')"
    )


def test_model_rule_may_not_add_meter_types() -> None:
    text = GOOD.replace("colour: total - mono", "color_a3: total")
    assert "models[0].meter_types: color_a3 is not a meter type of billing.meter_types" in (
        error_of(text)
    )


def test_billing_block_needs_meter_types() -> None:
    assert error_of(GOOD.partition("billing:")[0] + "billing:\n  meter_types: {}\n") == (
        "policy.yaml:6: billing.meter_types: map at least one contract meter type"
    )


def test_meter_type_names_are_checked() -> None:
    text = GOOD.replace("    mono: mono\n", '    "mono pages": mono\n')
    assert "meter type name 'mono pages'" in error_of(text)


def test_numeric_expression_is_refused() -> None:
    text = GOOD.replace("mono: mono", "mono: 5")
    assert "billing.meter_types.mono: " in error_of(text)


def test_device_without_a_mapped_meter_gets_billing_meter_missing() -> None:
    policy = parse_policy(GOOD)
    read = make_read(vendor="Brother", model="HL-5370", total=500)
    verdict = evaluate_read(read, policy)
    missing = [reason for reason in verdict.reasons if reason.code == "billing_meter_missing"]
    assert [reason.message for reason in missing] == [
        "The device does not report mono, which the contract meter type mono (mono) needs.",
        "The device does not report color, which the contract meter type colour (color) needs.",
        "The device does not report print_mono, print_color, which the contract meter type "
        "all_print (print_mono + print_color) needs.",
    ]


def test_device_with_every_mapped_meter_is_not_flagged() -> None:
    policy = parse_policy(GOOD)
    read = make_read(total=500).model_copy(
        update={"counters": Counters(total=500, mono=400, print_mono=300, print_color=50)}
    )
    # The HP override bills colour as total - mono: the device has both.
    assert "billing_meter_missing" not in evaluate_read(read, policy).codes


def test_policy_without_billing_never_gives_the_reason() -> None:
    policy = parse_policy(GOOD.partition("billing:")[0])
    read = make_read(total=None)
    assert "billing_meter_missing" not in evaluate_read(read, policy).codes
