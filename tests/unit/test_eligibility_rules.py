"""Per-device eligibility rules: every reason code, missing data, boundaries, model patterns."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from agent.eligibility.contacts import Contact
from agent.eligibility.models import REASON_CODES, Verdict, verdict_json_schema
from agent.eligibility.policy import Policy
from agent.eligibility.rules import RULES, evaluate_read
from mibs.models import Alert, Counters, Identity, PrinterRead, Problem, Status, Supply

WHEN = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CONTACT = {
    "name": "Anna Berg",
    "company": "Berg AB",
    "address": "Storgatan 1",
    "phone": "+46 8 123 456",
    "email": "anna@example.se",
    "country_code": "SE",
}


def toner(percent: float | None, *, state: str = "ok", index: int = 1, **extra: Any) -> Supply:
    return Supply(
        index=index,
        description=extra.pop("description", "Black Toner"),
        type=extra.pop("type", "toner"),
        supply_class=extra.pop("supply_class", "consumed"),
        colorant="black",
        unit="percent",
        max_capacity=100,
        level=None if percent is None else int(percent),
        percent=percent,
        state=state,  # type: ignore[arg-type]
    )


def make_read(
    *,
    address: str = "192.0.2.10",
    vendor: str | None = "HP",
    model: str | None = "LaserJet M130nw",
    serial: str | None = "CNB1234567",
    location: str | None = "Berlin/Floor 2",
    total: int | None = 12_000,
    is_printer: bool = True,
    mac: str | None = None,
    supplies: list[Supply] | None = None,
    errors: list[str] | None = None,
    alerts: list[Alert] | None = None,
    problems: list[Problem] | None = None,
    collected_at: datetime = WHEN,
) -> PrinterRead:
    return PrinterRead(
        address=address,
        collected_at=collected_at,
        identity=Identity(
            vendor=vendor,
            model=model,
            serial=serial,
            location=location,
            is_printer=is_printer,
            mac=mac,
        ),
        counters=Counters(total=total),
        supplies=[toner(80.0)] if supplies is None else supplies,
        status=Status(errors=errors or [], alerts=alerts or []),
        problems=problems or [],
    )


def make_policy(**overrides: Any) -> Policy:
    base: dict[str, Any] = {
        "version": "2026.11-1",
        "models": [
            {"vendor": "HP", "names": ["LaserJet M130nw"], "patterns": ["LaserJet Pro M4*"]},
            {"vendor": "Brother", "patterns": ["HL-5*"], "max_lifetime_pages": 50_000},
        ],
        "max_lifetime_pages": 100_000,
        "minimum_agent_version": "0.1.0",
        "require_serial": True,
        "health": {
            "disqualifying_errors": ["no_toner", "jammed", "service_requested"],
            "disqualifying_alert_severities": ["critical"],
            "min_supply_percent": 10,
        },
        "contacts": [CONTACT],
    }
    base.update(overrides)
    return Policy.model_validate(base)


def verdict(read: PrinterRead | None = None, **policy: Any) -> Verdict:
    agent_version = policy.pop("agent_version", "0.1.0")
    device_id = policy.pop("device_id", "sn:hp:CNB1234567")
    return evaluate_read(
        read or make_read(), make_policy(**policy), device_id=device_id, agent_version=agent_version
    )


def codes(result: Verdict) -> list[str]:
    return [reason.code for reason in result.reasons]


def test_a_healthy_supported_device_is_eligible_and_records_the_policy_version() -> None:
    result = verdict()
    assert result.eligible
    assert result.reasons == ()
    assert result.policy_version == "2026.11-1"


def test_verdict_json_has_exactly_the_documented_shape() -> None:
    result = verdict(make_read(model="LaserJet 1020", errors=["jammed"]))
    assert result.model_dump(mode="json") == {
        "eligible": False,
        "reasons": [
            {
                "code": "model_not_supported",
                "message": "HP LaserJet 1020 is not a supported model under this contract.",
            },
            {
                "code": "failed_health_check",
                "message": "The printer reports 'jammed'.",
                "check": "error_state.jammed",
            },
        ],
        "policy_version": "2026.11-1",
    }


def test_verdict_json_schema_accepts_verdicts_and_nothing_else() -> None:
    schema = verdict_json_schema()
    verdict_json = verdict(make_read(errors=["jammed"])).model_dump(mode="json")
    jsonschema.validate(verdict_json, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(verdict_json | {"extra": 1}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"eligible": True, "policy_version": "1"}, schema)
    bad_code = {
        "eligible": False,
        "reasons": [{"code": "x", "message": "m"}],
        "policy_version": "1",
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad_code, schema)


def test_rules_table_covers_every_reason_code_in_order() -> None:
    assert tuple(code for code, _ in RULES) == REASON_CODES


def test_not_a_printer() -> None:
    result = verdict(make_read(is_printer=False))
    assert "not_a_printer" in codes(result)
    assert not result.eligible


@pytest.mark.parametrize(
    ("vendor", "model"),
    [
        ("HP", "LaserJet M130nw"),
        ("hp", "laserjet   m130NW"),  # case and whitespace do not matter
        ("HP", "HP LaserJet M130nw"),  # a vendor prefix on the model is tolerated
        ("HP", "LaserJet Pro M404dn"),  # pattern LaserJet Pro M4*
        ("Brother", "HL-5370DW series"),  # pattern HL-5*
    ],
)
def test_supported_models_match_by_exact_name_or_pattern(vendor: str, model: str) -> None:
    assert "model_not_supported" not in codes(verdict(make_read(vendor=vendor, model=model)))


@pytest.mark.parametrize(
    ("vendor", "model"),
    [
        ("HP", "LaserJet M130"),  # exact name: a prefix is not enough
        ("HP", "LaserJet Pro M501"),  # does not match LaserJet Pro M4*
        ("Brother", "LaserJet M130nw"),  # right model name, wrong vendor
        ("Brother", "MFC-5370"),
    ],
)
def test_other_models_are_not_supported(vendor: str, model: str) -> None:
    result = verdict(make_read(vendor=vendor, model=model))
    assert codes(result)[0] == "model_not_supported"
    assert result.reasons[0].message == (
        f"{vendor} {model} is not a supported model under this contract."
    )


def test_vendor_may_be_a_pattern() -> None:
    policy = {"models": [{"vendor": "Konica*", "patterns": ["bizhub C*"]}]}
    read = make_read(vendor="Konica Minolta", model="bizhub C250i")
    assert "model_not_supported" not in codes(verdict(read, **policy))


@pytest.mark.parametrize(
    ("vendor", "model", "missing"),
    [(None, "LaserJet M130nw", "vendor"), ("HP", None, "model"), (None, "  ", "vendor and model")],
)
def test_unknown_model_is_never_silently_eligible(
    vendor: str | None, model: str | None, missing: str
) -> None:
    result = verdict(make_read(vendor=vendor, model=model))
    assert codes(result) == ["model_not_supported"]
    assert result.reasons[0].message == (
        f"The device did not report its {missing}, so its model cannot be checked against "
        "the supported list."
    )


def test_lifetime_count_missing_names_the_decoder_problem() -> None:
    problem = Problem(
        field="counters.total", oid="1.3.6.1.2.1.43.10.2.1.4.1.1", reason="wrong_type"
    )
    result = verdict(make_read(total=None, problems=[problem]))
    assert codes(result) == ["lifetime_count_missing"]
    assert result.reasons[0].message == (
        "The device did not report its lifetime page count (wrong_type)."
    )


def test_lifetime_count_missing_even_without_a_maximum() -> None:
    assert codes(verdict(make_read(total=None), max_lifetime_pages=None)) == [
        "lifetime_count_missing"
    ]


@pytest.mark.parametrize(
    ("total", "over"), [(99_999, False), (100_000, False), (100_001, True), (0, False)]
)
def test_global_maximum_boundary(total: int, over: bool) -> None:
    result = verdict(make_read(total=total))
    assert ("lifetime_count_over_max" in codes(result)) is over
    if over:
        assert result.reasons[0].message == (
            "Lifetime page count 100,001 is over the contract's maximum of 100,000."
        )


@pytest.mark.parametrize(("total", "over"), [(50_000, False), (50_001, True)])
def test_per_model_maximum_overrides_the_global_one(total: int, over: bool) -> None:
    read = make_read(vendor="Brother", model="HL-5370DW", total=total)
    result = verdict(read)
    assert ("lifetime_count_over_max" in codes(result)) is over
    if over:
        assert result.reasons[0].message == (
            "Lifetime page count 50,001 is over the maximum of 50,000 for this model."
        )


def test_per_model_maximum_may_be_higher_than_the_global_one() -> None:
    models = [{"vendor": "HP", "names": ["LaserJet M130nw"], "max_lifetime_pages": 500_000}]
    assert verdict(make_read(total=400_000), models=models).eligible


def test_no_maximum_configured_means_no_page_limit() -> None:
    assert verdict(make_read(total=10**9), max_lifetime_pages=None).eligible


@pytest.mark.parametrize("serial", [None, "", "   "])
def test_serial_missing(serial: str | None) -> None:
    result = verdict(make_read(serial=serial))
    assert codes(result) == ["serial_missing"]
    assert result.reasons[0].message == "The device did not report a serial number."


def test_serial_not_required() -> None:
    assert verdict(make_read(serial=None), require_serial=False).eligible


def test_no_contacts_at_all() -> None:
    result = verdict(contacts=[])
    assert codes(result) == ["no_supplies_contact"]
    assert result.reasons[0].message == (
        "No supplies delivery contact covers location 'Berlin/Floor 2'."
    )


def test_contact_covering_other_locations_only() -> None:
    contact = CONTACT | {"locations": ["Paris/*"]}
    assert codes(verdict(contacts=[contact])) == ["no_supplies_contact"]


def test_contact_covering_the_location_by_pattern() -> None:
    contact = CONTACT | {"locations": ["berlin/*"]}
    assert verdict(contacts=[contact]).eligible


def test_device_without_location_needs_a_contact_naming_it() -> None:
    contact = CONTACT | {"locations": ["*"]}
    result = verdict(make_read(location=None), contacts=[contact])
    assert codes(result) == ["no_supplies_contact"]
    assert result.reasons[0].message == (
        "No supplies delivery contact covers this device (it reports no location)."
    )
    named = CONTACT | {"devices": ["cnb1234567"]}  # serial, case-insensitive
    assert verdict(make_read(location=None), contacts=[named]).eligible
    by_address = CONTACT | {"devices": ["192.0.2.10"]}
    assert verdict(make_read(location=None), contacts=[by_address]).eligible


def test_contacts_passed_in_replace_the_policy_contacts() -> None:
    other = Contact.model_validate(CONTACT | {"locations": ["Paris/*"]})
    result = evaluate_read(
        make_read(), make_policy(), device_id=None, contacts=(other,), agent_version="0.1.0"
    )
    assert codes(result) == ["no_supplies_contact"]


@pytest.mark.parametrize(
    ("agent", "below"),
    [("0.0.9", True), ("0.1.0rc1", True), ("0.1.0", False), ("0.1.1", False), ("junk", True)],
)
def test_agent_version_against_the_minimum(agent: str, below: bool) -> None:
    result = verdict(agent_version=agent)
    assert ("agent_below_minimum" in codes(result)) is below
    if below:
        assert result.reasons[0].message == (
            f"Agent version {agent} is below the contract's minimum 0.1.0."
        )


def test_disqualifying_error_bits_each_give_a_check() -> None:
    result = verdict(make_read(errors=["low_paper", "no_toner", "service_requested"]))
    assert [(r.code, r.check) for r in result.reasons] == [
        ("failed_health_check", "error_state.no_toner"),
        ("failed_health_check", "error_state.service_requested"),
    ]
    assert result.reasons[0].message == "The printer reports 'no toner'."


def test_non_disqualifying_error_bits_pass() -> None:
    assert verdict(make_read(errors=["low_paper", "low_toner"])).eligible


def test_critical_alerts_disqualify_warnings_do_not() -> None:
    alerts = [
        Alert(index=1, severity="critical", description="Fuser failure 50.1"),
        Alert(index=2, severity="warning", description="Tray 2 empty"),
    ]
    result = verdict(make_read(alerts=alerts))
    assert [(r.check, r.message) for r in result.reasons] == [
        ("alert.critical", "The printer has 1 critical alert active: Fuser failure 50.1.")
    ]


def test_alert_severity_names_from_the_decoder_are_matched() -> None:
    alerts = [Alert(index=3, severity="warningBinaryChangeEvent", code="coverOpen")]
    health = {"disqualifying_alert_severities": ["warning_binary_change_event"]}
    result = verdict(make_read(alerts=alerts), health=health)
    assert [r.check for r in result.reasons] == ["alert.warning_binary_change_event"]


def test_unreadable_status_fails_the_health_check() -> None:
    problem = Problem(field="status.errors", oid="1.3.6.1.2.1.25.3.5.1.2.1", reason="wrong_type")
    result = verdict(make_read(problems=[problem]))
    assert [(r.check, r.message) for r in result.reasons] == [
        ("status_unreadable", "Printer status could not be read (status.errors).")
    ]


@pytest.mark.parametrize(
    ("percent", "state", "check"),
    [
        (9.5, "low", "supply_level"),
        (10.0, "ok", None),  # exactly at the minimum passes
        (None, "empty", "supply_level"),
        (None, "low", "supply_level"),
        (None, "unknown", "supply_level_unknown"),
        (None, "some_remaining", None),
    ],
)
def test_minimum_supply_percent(percent: float | None, state: str, check: str | None) -> None:
    result = verdict(make_read(supplies=[toner(percent, state=state)]))
    assert [r.check for r in result.reasons] == ([check] if check else [])


def test_supply_message_names_the_supply() -> None:
    result = verdict(make_read(supplies=[toner(3.0, state="low")]))
    assert result.reasons[0].message == "Black Toner is at 3%, below the minimum of 10%."


def test_receptacles_and_unlisted_supply_types_are_not_checked() -> None:
    supplies = [
        toner(90.0),
        toner(
            0.0, index=2, description="Waste toner", type="waste_toner", supply_class="receptacle"
        ),
        toner(2.0, index=3, description="Drum", type="opc"),
    ]
    assert codes(verdict(make_read(supplies=supplies))) == ["failed_health_check"]
    health = {"min_supply_percent": 10, "supply_types": ["toner"]}
    assert verdict(make_read(supplies=supplies), health=health).eligible


def test_no_supplies_reported_fails_when_a_minimum_is_set() -> None:
    result = verdict(make_read(supplies=[]))
    assert [(r.check, r.message) for r in result.reasons] == [
        (
            "supplies_missing",
            "Supply levels were not reported, so the minimum of 10% cannot be checked.",
        )
    ]
    assert verdict(make_read(supplies=[]), health={}).eligible


def test_already_managed_and_pending_by_serial_or_device_id() -> None:
    assert codes(verdict(managed=["cnb1234567"])) == ["already_managed"]
    assert codes(verdict(pending=["sn:hp:CNB1234567"])) == ["management_pending"]
    assert verdict(managed=["OTHER"]).eligible


def test_every_applicable_reason_is_listed_in_code_order() -> None:
    read = make_read(
        model="LaserJet 1020",
        serial=None,
        total=None,
        location=None,
        errors=["jammed"],
        supplies=[toner(1.0, state="low")],
    )
    result = verdict(read, contacts=[], agent_version="0.0.1", pending=["192.0.2.10"])
    assert codes(result) == [
        "model_not_supported",
        "lifetime_count_missing",
        "serial_missing",
        "no_supplies_contact",
        "agent_below_minimum",
        "failed_health_check",
        "failed_health_check",
        "management_pending",
    ]
    assert all(reason.message.endswith(".") for reason in result.reasons)
