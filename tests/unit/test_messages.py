"""Typed messages to the uploader: the read message and the event union, on the wire and back."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest
from joserfc.jwk import OKPKey
from pydantic import ValidationError

from agent.schema import EVENTS_PATH, event_schema, main, render_events
from mibs.events import (
    DeliveryContact,
    DeviceBack,
    DeviceFound,
    DeviceMoved,
    DeviceSilent,
    DuplicateSerial,
    EligibilityChanged,
    Event,
    ImplausibleJump,
    MeterBackwards,
    SerialChanged,
    SupplyLow,
    SupplyOrderDue,
    SupplyReplaced,
    parse_event,
)
from mibs.messages import ReadMessage, parse_body
from mibs.models import Counters, Identity, PrinterRead
from mibs.verdict import Reason, Verdict
from uploader.envelope import Signer, Verifier
from uploader.keys import AgentKey
from uploader.outgoing import JsonMessage
from uploader.queue import Outbox

KEY = AgentKey.generate()

EVENTS: list[Any] = [
    DeviceFound(
        device_id="sn:hp:CNB1", address="192.0.2.15", serial="CNB1", vendor="HP", model=None
    ),
    DeviceMoved(
        device_id="sn:hp:CNB1",
        address="192.0.2.16",
        serial="CNB1",
        vendor="HP",
        model="M130nw",
        moved_from="192.0.2.15",
    ),
    DuplicateSerial(
        device_id="sn:hp:CNB1~aa", address="192.0.2.17", serial="CNB1", vendor=None, model=None
    ),
    EligibilityChanged(
        device_id="sn:hp:CNB1",
        address="192.0.2.15",
        eligible=False,
        was_eligible=True,
        reasons=("lifetime_count_over_max",),
        policy_version="2026.11",
    ),
    MeterBackwards(
        device_id="sn:hp:CNB1",
        address="192.0.2.15",
        serial="CNB1",
        meter="color",
        previous_at=datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
        at=datetime(2026, 11, 3, 8, 0, tzinfo=UTC),
        previous=2000,
        current=12,
        limit=None,
        detail="meter color went from 2000 back to 12",
    ),
    ImplausibleJump(
        device_id="sn:hp:CNB1",
        address="192.0.2.15",
        serial="CNB1",
        meter="total",
        previous_at=datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
        at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
        previous=1000,
        current=90000,
        limit=1800,
        detail="meter total grew from 1000 to 90000",
    ),
    SerialChanged(
        device_id="mac:00:11:22:33:44:55",
        address="192.0.2.15",
        serial="CNB2",
        meter=None,
        previous_at=datetime(2026, 11, 2, 8, 0, tzinfo=UTC),
        at=datetime(2026, 11, 3, 8, 0, tzinfo=UTC),
        previous="CNB1",
        current="CNB2",
        limit=None,
        detail="serial changed from CNB1 to CNB2",
    ),
    SupplyReplaced(
        device_id="sn:hp:CNB1",
        address="192.0.2.15",
        supply_index=1,
        description="Black Cartridge HP CF217A",
        type="toner",
        colorant="black",
        replaced_at=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
        reason="serial",
        old_level=2.0,
        new_level=100.0,
        old_part_number="CF217A",
        new_part_number="CF217A",
        old_serial="A1",
        new_serial="B2",
        days_in_service=41.0,
        pages_in_service=1530,
        whole_life_seen=True,
        rated_yield=1600,
        yield_ratio=0.956,
    ),
    SupplyOrderDue(
        device_id="sn:hp:CNB1",
        address="192.0.2.15",
        supply_index=1,
        description="Black Cartridge HP CF217A",
        type="toner",
        colorant="black",
        order_id="sn:hp:CNB1/1/2026-11-20",
        part_number="CF217A",
        level=14.5,
        predicted_empty=date(2026, 12, 4),
        empty_earliest=date(2026, 12, 2),
        emergency=False,
        lead_time_days=5.0,
        cartridge_since=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
        contact=DeliveryContact(
            name="Ana Ruiz",
            company="Acme",
            address="1 Main St",
            phone="+34 600 000 000",
            email="ana@example.com",
            country_code="ES",
        ),
    ),
    DeviceSilent(
        device_id="sn:hp:CNB1",
        address="192.0.2.15",
        since=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        missed_reads=3,
        last_answered_at=datetime(2026, 11, 22, 9, 45, tzinfo=UTC),
        reason="port_closed",
    ),
    DeviceBack(
        device_id="sn:hp:CNB1",
        address="192.0.2.15",
        since=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        missed_reads=5,
        last_answered_at=None,
        back_at=datetime(2026, 11, 22, 11, 15, tzinfo=UTC),
    ),
    SupplyLow(
        device_id="sn:hp:CNB1",
        address="192.0.2.15",
        supply_index=1,
        description="Black Toner",
        type="toner",
        colorant="black",
        state="low",
        percent=8.0,
    ),
]


def _read() -> PrinterRead:
    return PrinterRead(
        address="192.0.2.7",
        collected_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        identity=Identity(vendor="HP", serial="CNB1234567", is_printer=True),
        counters=Counters(total=1234, copies=56),
    )


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(event_schema())


def test_every_event_kind_is_in_the_union_and_in_this_test() -> None:
    (union, _discriminator) = get_args(Event)
    assert {model.__name__ for model in get_args(union)} == {type(e).__name__ for e in EVENTS}


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.event)
def test_an_event_body_follows_the_schema_and_parses_back(event: Any) -> None:
    body = event.to_body()
    assert event.kind == "event"
    assert body["event"] == event.event
    _validator().validate(body)
    assert parse_event(json.loads(json.dumps(body))) == event


def test_event_bodies_keep_the_wire_form_of_the_plain_dicts_they_replace() -> None:
    supply_low = EVENTS[-1].to_body()
    assert supply_low == {
        "event": "supply_low",
        "device_id": "sn:hp:CNB1",
        "address": "192.0.2.15",
        "supply_index": 1,
        "description": "Black Toner",
        "type": "toner",
        "colorant": "black",
        "state": "low",
        "percent": 8.0,
    }
    assert EVENTS[3].to_body()["reasons"] == ["lifetime_count_over_max"]
    assert EVENTS[0].to_body()["model"] is None  # unknown is null, never a missing key


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"event": "device_exploded"}, "unknown event kind"),
        ({"colour": "red"}, "extra field"),
        ({"serial": 12}, "wrong type"),
    ],
)
def test_a_bad_event_body_is_refused_by_the_model_and_the_schema(
    change: dict[str, Any], why: str
) -> None:
    body = EVENTS[0].to_body() | change
    with pytest.raises(ValidationError):
        parse_event(body)
    assert not _validator().is_valid(body), why


def test_a_missing_field_is_refused() -> None:
    body = EVENTS[0].to_body()
    del body["serial"]
    with pytest.raises(ValidationError):
        parse_event(body)
    assert not _validator().is_valid(body)


def test_events_are_frozen() -> None:
    with pytest.raises(ValidationError):
        EVENTS[0].address = "192.0.2.99"


def test_checked_in_event_schema_is_the_unions_schema(tmp_path: Path) -> None:
    on_disk = EVENTS_PATH.read_text(encoding="utf-8")
    assert on_disk == render_events(), (
        "docs/schema/event.schema.json is stale: python -m agent.schema"
    )
    read, events = tmp_path / "read.json", tmp_path / "event.json"
    events.write_text("{}\n")
    arguments = ["--output", str(read), "--events-output", str(events)]
    assert main([*arguments, "--check"]) == 1
    assert main(arguments) == 0
    assert main([*arguments, "--check"]) == 0


def test_read_message_body_is_the_read_plus_what_the_daemon_adds() -> None:
    read = _read()
    message = ReadMessage.of(read, device_id="sn:hp:CNB1234567", purpose="meters", verdict=None)
    body = message.to_body()
    assert message.kind == "read"
    assert body == read.model_dump(mode="json") | {
        "device_id": "sn:hp:CNB1234567",
        "purpose": "meters",
    }
    assert "eligibility" not in body  # no policy: no key, as before
    assert parse_body("read", body) == message


def test_read_message_with_a_verdict_carries_it() -> None:
    verdict = Verdict(
        eligible=False,
        reasons=(Reason(code="serial_missing", message="no serial"),),
        policy_version="1",
    )
    message = ReadMessage.of(_read(), device_id="d", purpose="supplies", verdict=verdict)
    body = message.to_body()
    assert body["eligibility"] == {
        "eligible": False,
        "reasons": [{"code": "serial_missing", "message": "no serial"}],
        "policy_version": "1",
    }
    assert parse_body("read", json.loads(json.dumps(body))) == message


def test_parse_body_refuses_a_read_body_with_an_unknown_key_and_ignores_status() -> None:
    body = ReadMessage.of(_read(), device_id="d", purpose="meters", verdict=None).to_body()
    with pytest.raises(ValidationError):
        parse_body("read", body | {"pages": 1})
    with pytest.raises(ValidationError):
        parse_body("read", {k: v for k, v in body.items() if k != "purpose"})
    assert parse_body("status", {"ok": True}) is None


def test_the_outbox_signs_typed_messages_without_looking_inside(tmp_path: Path) -> None:
    read = ReadMessage.of(_read(), device_id="d", purpose="meters", verdict=None)
    messages = [read, *EVENTS, JsonMessage("status", {"ok": True})]
    with Outbox(tmp_path / "outbox.db", Signer(KEY, "agent-m")) as outbox:
        signed = outbox.submit_many(messages)
    verifier = Verifier({KEY.key_id: OKPKey.import_key(KEY.public_jwk())})
    for message, sent in zip(messages, signed, strict=True):
        envelope = verifier.verify(sent.token)
        assert envelope.kind == message.kind
        assert envelope.body == message.to_body()
        assert parse_body(envelope.kind, envelope.body) == (
            None if isinstance(message, JsonMessage) else message
        )
