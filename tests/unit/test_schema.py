"""The checked-in read schema matches the model, and it accepts/refuses what it should."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest

from agent.schema import DEFAULT_PATH, main, read_schema, render
from mibs.models import READ_SCHEMA_VERSION, Counters, Identity, PrinterRead, Problem, Supply


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        read_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _sample() -> dict[str, Any]:
    read = PrinterRead(
        address="192.0.2.7",
        collected_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        identity=Identity(vendor="HP", serial="CNB1234567", is_printer=True),
        counters=Counters(total=1234, copies=56),
        counter_sources={"total": "1.3.6.1.2.1.43.10.2.1.4.1.1"},
        supplies=[
            Supply(
                index=1,
                description="Black Toner",
                type="toner",
                supply_class="consumed",
                colorant="black",
                unit="percent",
                max_capacity=100,
                level=40,
                percent=40.0,
                state="ok",
            )
        ],
        problems=[
            Problem(field="counters.color", oid="1.3.6.1.2.1.43.10.2.1.4.1.2", reason="missing")
        ],
    )
    return read.model_dump(mode="json")


def test_checked_in_schema_is_the_models_schema() -> None:
    on_disk = DEFAULT_PATH.read_text(encoding="utf-8")
    assert on_disk == render(), "docs/schema/read.schema.json is stale: python -m agent.schema"


def test_check_mode_reports_a_stale_file(tmp_path: Any) -> None:
    stale = tmp_path / "read.schema.json"
    stale.write_text("{}\n")
    assert main(["--output", str(stale), "--check"]) == 1
    assert main(["--output", str(stale)]) == 0
    assert main(["--output", str(stale), "--check"]) == 0
    assert json.loads(stale.read_text())["$id"].endswith(READ_SCHEMA_VERSION)


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(read_schema())


def test_a_model_dump_validates() -> None:
    _validator().validate(_sample())


def test_issue_field_names_are_required() -> None:
    schema = read_schema()
    assert {"address", "collected_at", "identity", "counters", "counter_sources"} <= set(
        schema["required"]
    )
    identity = schema["$defs"]["Identity"]["properties"]
    for name in ("vendor", "model", "serial", "firmware", "sys_object_id", "sys_descr", "mac"):
        assert name in identity
    supply = schema["$defs"]["Supply"]["properties"]
    for name in ("index", "description", "type", "supply_class", "colorant", "unit"):
        assert name in supply
    assert set(supply["state"]["enum"]) == {
        "ok",
        "low",
        "empty",
        "full",
        "some_remaining",
        "unknown",
        "unrestricted",
    }
    assert "copy" in schema["$defs"]["Counters"]["properties"]  # the alias, not "copies"


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: d.pop("address"), "address is required"),
        (lambda d: d.update(extra=1), "unknown top-level field"),
        (lambda d: d["counters"].update(copies=1), "attribute name instead of the JSON alias"),
        (lambda d: d["counters"].update(total="1234"), "counter as a string"),
        (lambda d: d["supplies"][0].update(state="half"), "state outside the enum"),
        (lambda d: d["supplies"][0].pop("percent"), "percent always present (null when unknown)"),
        (lambda d: d.update(collected_at="2026-11-22T10:00:00+01:00"), "not UTC"),
        (lambda d: d.update(collected_at="yesterday"), "not RFC 3339"),
        (lambda d: d.update(schema_version="0.9"), "another schema version"),
    ],
)
def test_schema_refuses(mutate: Any, why: str) -> None:
    document = copy.deepcopy(_sample())
    mutate(document)
    assert not _validator().is_valid(document), why


def test_uploaded_read_with_verdict_device_id_and_purpose_validates() -> None:
    from agent.eligibility.models import Reason, Verdict
    from mibs.messages import ReadMessage

    read = PrinterRead.model_validate(_sample())
    verdict = Verdict(
        eligible=False,
        reasons=(Reason(code="lifetime_count_over_max", message="over the maximum"),),
        policy_version="2026.11",
    )
    body = ReadMessage.of(
        read, device_id="sn:hp:CNB1234567", purpose="meters", verdict=verdict
    ).to_body()
    _validator().validate(body)
    broken = copy.deepcopy(body)
    broken["eligibility"]["reasons"][0]["code"] = "not_a_reason"
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(broken)
    broken = copy.deepcopy(body)
    broken["purpose"] = "billing"
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(broken)
