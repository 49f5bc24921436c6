"""Policy files: what loads, and the exact error for each kind of mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.eligibility.policy import ERROR_STATE_NAMES, load_policy, parse_policy
from agent.errors import ConfigError
from mibs.status import ALERT_SEVERITY, ERROR_BITS

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "policy.yaml"

GOOD = """\
version: "7"
models:
  - vendor: HP
    names: [LaserJet M130nw]
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_policy(text)
    return str(caught.value)


def test_the_documented_example_loads() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.version == "2026.11-1"
    assert policy.model_rule_for("Brother", "HL-5370DW series") is not None
    assert policy.model_rule_for("HP", "LaserJet 1020") is None
    assert policy.model_rule_for("HP", "HP LaserJet MFP M130nw") is not None
    assert policy.health.min_supply_percent == 5
    assert [c.country_code for c in policy.contacts] == ["DE", "DE"]


def test_minimal_policy_defaults() -> None:
    policy = parse_policy(GOOD)
    assert policy.require_serial is True
    assert policy.max_lifetime_pages is None
    assert policy.technician_visit_threshold == 10
    assert policy.contacts == ()


def test_known_error_names_follow_the_status_decoder() -> None:
    assert set(ERROR_STATE_NAMES) == set(ERROR_BITS.values())


def test_known_alert_severities_follow_the_status_decoder() -> None:
    policy = parse_policy(
        GOOD + "health:\n  disqualifying_alert_severities: "
        "[other, critical, warning, warning_binary_change_event]\n"
    )
    decoder = {"other", "critical", "warning", "warning_binary_change_event"}
    assert set(policy.health.disqualifying_alert_severities) == decoder
    assert len(ALERT_SEVERITY) == len(decoder)


def test_negative_maximum_names_line_and_field() -> None:
    text = GOOD + "site: Berlin\nmax_lifetime_pages: -5\n"
    assert (
        error_of(text) == "policy.yaml:6: max_lifetime_pages: must be a positive integer (got -5)"
    )


def test_missing_version() -> None:
    text = "models:\n  - vendor: HP\n    names: [X]\n"
    assert error_of(text) == "policy.yaml:1: version: is required"


def test_unquoted_decimal_version_is_refused() -> None:
    assert error_of(GOOD.replace('"7"', "2026.10")) == (
        "policy.yaml:1: version: write the version in quotes (YAML reads 2026.1 as a number) "
        "(got 2026.1)"
    )


def test_integer_version_is_accepted_as_text() -> None:
    assert parse_policy(GOOD.replace('"7"', "7")).version == "7"


def test_typo_in_a_field_name() -> None:
    text = GOOD + "max_lifetime_page: 5000\n"
    assert error_of(text) == "policy.yaml:5: max_lifetime_page: is not a known field"


def test_model_rule_without_models_names_its_item_line() -> None:
    text = GOOD + "  - vendor: Brother\n    max_lifetime_pages: 5\n"
    assert error_of(text) == (
        "policy.yaml:5: models[1]: give at least one model in names or patterns"
    )


def test_empty_model_list() -> None:
    assert error_of('version: "1"\nmodels: []\n') == (
        "policy.yaml:2: models: list at least one supported model (got [])"
    )


def test_unknown_error_state_name() -> None:
    text = GOOD + "health:\n  disqualifying_errors: [jammed, no_tonr]\n"
    message = error_of(text)
    assert message.startswith("policy.yaml:6: health.disqualifying_errors[1]: must be one of ")
    assert message.endswith("(got 'no_tonr')")


def test_supply_percent_over_100() -> None:
    text = GOOD + "health:\n  min_supply_percent: 150\n"
    assert error_of(text) == (
        "policy.yaml:6: health.min_supply_percent: must be at most 100 (got 150)"
    )


def test_blank_model_name_is_refused() -> None:
    text = GOOD.replace("[LaserJet M130nw]", "[LaserJet M130nw, '  ']")
    assert error_of(text) == "policy.yaml:4: models[0].names[1]: must not be empty (got '  ')"


def test_unknown_supply_type() -> None:
    text = GOOD + "health:\n  supply_types: [toner, tonner]\n"
    assert error_of(text) == (
        "policy.yaml:6: health.supply_types: unknown supply type tonner (RFC 3805 names in "
        "snake_case, e.g. toner, toner_cartridge, ink, ink_cartridge, opc) "
        "(got ['toner', 'tonner'])"
    )


def test_wrong_type_for_require_serial() -> None:
    text = GOOD + "require_serial: maybe\n"
    assert error_of(text) == "policy.yaml:5: require_serial: must be true or false (got 'maybe')"


def test_bad_agent_version() -> None:
    text = GOOD + 'minimum_agent_version: "one point two"\n'
    assert error_of(text) == (
        "policy.yaml:5: minimum_agent_version: not a version number like '0.4.1' "
        "(got 'one point two')"
    )


def test_bad_contact_in_the_policy_names_the_nested_field() -> None:
    text = GOOD + (
        "contacts:\n"
        "  - name: Anna\n"
        "    company: Acme\n"
        "    address: Street 1\n"
        "    phone: '+49 30 1234567'\n"
        "    email: anna-at-acme\n"
        "    country_code: DE\n"
    )
    assert error_of(text) == (
        "policy.yaml:10: contacts[0].email: not an email address (got 'anna-at-acme')"
    )


def test_missing_field_in_a_nested_item_points_at_the_item() -> None:
    text = GOOD + "contacts:\n  - name: Anna\n    company: Acme\n"
    lines = error_of(text).splitlines()
    assert lines[0] == "policy.yaml:6: contacts[0].address: is required"
    assert len(lines) == 4  # address, phone, email, country_code


def test_every_error_is_reported_at_once() -> None:
    text = GOOD + "max_lifetime_pages: 0\ntechnician_visit_threshold: ten\n"
    assert error_of(text).splitlines() == [
        "policy.yaml:5: max_lifetime_pages: must be a positive integer (got 0)",
        "policy.yaml:6: technician_visit_threshold: must be an integer (got 'ten')",
    ]


def test_managed_and_pending_must_not_overlap() -> None:
    text = GOOD + "managed: [ABC123]\npending: [abc123]\n"
    assert error_of(text) == ("policy.yaml:1: listed both as managed and as pending: abc123")


def test_duplicate_key_is_refused() -> None:
    text = GOOD + "max_lifetime_pages: 10\nmax_lifetime_pages: 20\n"
    assert error_of(text) == (
        "policy.yaml:6: max_lifetime_pages: appears twice in one mapping "
        "(the second would silently win)"
    )


def test_yaml_syntax_error_names_the_line() -> None:
    text = GOOD + "health: [unclosed\n"
    assert error_of(text).startswith("policy.yaml:6: not valid YAML: ")


def test_empty_file_and_non_mapping() -> None:
    assert error_of("") == "policy.yaml:1: the policy file is empty"
    assert error_of("- a\n- b\n") == (
        "policy.yaml:1: the policy file must be a mapping of fields (got list)"
    )


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(GOOD.encode() + b"site: M\xfcnchen\n")
    with pytest.raises(ConfigError, match=r"p\.yaml:5: the policy file is not UTF-8"):
        load_policy(path)
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read policy"):
        load_policy(tmp_path / "missing.yaml")
    path.write_text(GOOD + "max_lifetime_pages: -1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert str(caught.value) == f"{path}:5: max_lifetime_pages: must be a positive integer (got -1)"
    assert caught.value.path == str(path)


_KEYS = st.sampled_from(
    [
        "version",
        "site",
        "models",
        "vendor",
        "names",
        "patterns",
        "max_lifetime_pages",
        "minimum_agent_version",
        "require_serial",
        "health",
        "min_supply_percent",
        "disqualifying_errors",
        "contacts",
        "email",
        "managed",
        "pending",
        "bogus",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=5)),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=8))
def test_any_yaml_mapping_loads_or_fails_with_file_line_and_field(
    document: dict[str, object],
) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    try:
        policy = parse_policy(text)
    except ConfigError as exc:
        lines = str(exc).splitlines()
        assert lines
        for line in lines:
            assert re.match(r"^policy\.yaml:\d+: \S", line), line
    else:
        assert policy.version
        assert policy.models


def test_error_state_names_are_the_decoders_names() -> None:
    from typing import get_args

    from agent.eligibility.policy import ERROR_STATE_NAMES, ErrorStateName
    from mibs.status import ERROR_BITS

    assert get_args(ErrorStateName) == ERROR_STATE_NAMES
    assert tuple(ERROR_BITS[bit] for bit in range(15)) == ERROR_STATE_NAMES
