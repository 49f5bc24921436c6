"""The examples the documentation shows validate against the schemas it publishes.

A backend engineer copies these: the signed envelopes of docs/schema/envelope.md
(payload and body), the examples inside envelope.schema.json, and the read shown
in docs/schema/README.md. Each must pass the JSON Schema a consumer would check
it with, and parse as the agent's own model, so the documents cannot drift from
what is on the wire.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agent.commands.scan import read_saved
from agent.schema import read_schema
from mibs.messages import parse_body
from mibs.models import PrinterRead

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schema"
TOKEN = r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return loaded


BODY_SCHEMAS = {
    "read": _validator(read_schema()),
    "event": _validator(_schema("event.schema.json")),
}
ENVELOPE = _validator(_schema("envelope.schema.json"))


def _payload_of(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _documented_envelopes() -> list[tuple[str, dict[str, Any]]]:
    """(token, the payload JSON shown after it) for each example of envelope.md."""
    text = (SCHEMAS / "envelope.md").read_text(encoding="utf-8")
    found = re.findall(rf"^({TOKEN})$.*?^```json\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    return [(token, json.loads(shown)) for token, shown in found]


def _check_payload(payload: dict[str, Any]) -> None:
    ENVELOPE.validate(payload)
    kind = payload["kind"]
    BODY_SCHEMAS[kind].validate(payload["body"])
    assert parse_body(kind, payload["body"]) is not None


def test_envelope_md_shows_a_read_and_an_event() -> None:
    kinds = [shown["kind"] for _, shown in _documented_envelopes()]
    assert kinds == ["event", "read"]


@pytest.mark.parametrize("index", [0, 1], ids=["event", "read"])
def test_each_documented_envelope_is_what_its_token_carries_and_validates(index: int) -> None:
    token, shown = _documented_envelopes()[index]
    assert shown == _payload_of(token), "the payload shown is not the token's"
    _check_payload(shown)


def test_the_envelope_schema_examples_validate_bodies_included() -> None:
    examples = _schema("envelope.schema.json")["examples"]
    assert {example["kind"] for example in examples} == {"read", "event"}
    for example in examples:
        _check_payload(example)


def _readme_read() -> dict[str, Any]:
    text = (SCHEMAS / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Example\n") :]
    found = re.search(r"^```json\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert found is not None, "docs/schema/README.md: no JSON example under '## Example'"
    shown: dict[str, Any] = json.loads(found.group(1))
    return shown


def test_the_read_in_the_schema_readme_validates() -> None:
    shown = _readme_read()
    BODY_SCHEMAS["read"].validate(shown)
    assert PrinterRead.model_validate(shown).identity.serial == "VNCRC48198"


def test_the_read_in_the_schema_readme_is_what_the_agent_reads(shared_recordings: Path) -> None:
    """The recording it names, decoded by the agent now, gives the read shown (but the time)."""
    recording = shared_recordings / "librenms__jetdirect_m130nw.snmprec"
    read = asyncio.run(read_saved(recording, "192.0.2.7"))
    shown = _readme_read()
    live = read.model_dump(mode="json") | {"collected_at": shown["collected_at"]}
    assert live == shown


def test_a_body_that_breaks_its_schema_is_caught() -> None:
    """The check above can fail: the old example body (not a read) is refused."""
    _, shown = _documented_envelopes()[1]
    broken = dict(shown, body={"address": "192.0.2.15", "lifetime_page_count": 1})
    ENVELOPE.validate(broken)  # the envelope schema alone does not look inside the body
    with pytest.raises(jsonschema.ValidationError):
        _check_payload(broken)
