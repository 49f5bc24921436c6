"""The versioned JSON Schemas of what the agent uploads, generated from the models.

* ``docs/schema/read.schema.json``: a printer read (:class:`mibs.models.PrinterRead`,
  plus what :class:`mibs.messages.ReadMessage` adds to an uploaded one);
* ``docs/schema/event.schema.json``: an event body (the :data:`mibs.events.Event` union);
* ``docs/schema/status.schema.json``: a status body (the heartbeat, :mod:`mibs.heartbeat`);
* ``docs/schema/config-document.schema.json``: the payload of a configuration document
  from the backend (:class:`uploader.remote_config.ConfigDocument`);
* ``docs/schema/config-status.schema.json``: the body of the ``status`` envelope an agent
  sends about one (:class:`uploader.remote_config.ConfigStatus`);
* ``docs/schema/enrollment.schema.json``: the bodies of the ``enroll`` and
  ``key_rotation`` envelopes and the payload of the backend's signed reply
  (:mod:`uploader.enrollment`, ``docs/enrollment.md``).

Unit tests fail when a checked-in copy drifts from its model. Regenerate them
after changing a model (or adding an event kind)::

    .venv/bin/python -m agent.schema            # rewrite the files
    .venv/bin/python -m agent.schema --check    # exit 1 when a file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.eligibility.policy import Policy
from mibs.events import EVENT_ADAPTER, EVENT_SCHEMA_VERSION
from mibs.heartbeat import STATUS_SCHEMA_VERSION, Heartbeat
from mibs.models import READ_SCHEMA_VERSION, PrinterRead
from mibs.verdict import verdict_json_schema
from uploader.enrollment import ControlReply, EnrollRequest, KeyRotationRequest
from uploader.remote_config import CONFIG_SCHEMA_VERSION, ConfigDocument, ConfigStatus

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = f"urn:fleet-agent:schema:read:{READ_SCHEMA_VERSION}"
EVENT_SCHEMA_ID = f"urn:fleet-agent:schema:event:{EVENT_SCHEMA_VERSION}"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "docs" / "schema" / "read.schema.json"
EVENTS_PATH = DEFAULT_PATH.with_name("event.schema.json")
STATUS_SCHEMA_ID = f"urn:fleet-agent:schema:status:{STATUS_SCHEMA_VERSION}"
STATUS_PATH = DEFAULT_PATH.with_name("status.schema.json")
CONFIG_DOCUMENT_PATH = DEFAULT_PATH.with_name("config-document.schema.json")
CONFIG_STATUS_PATH = DEFAULT_PATH.with_name("config-status.schema.json")
ENROLLMENT_PATH = DEFAULT_PATH.with_name("enrollment.schema.json")


def _require_every_property(node: dict[str, Any]) -> None:
    """``model_dump`` always writes every field (``null`` when unknown): say so in the schema."""
    if isinstance(node.get("properties"), dict):
        node["required"] = sorted(node["properties"])


def read_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``PrinterRead.model_dump(mode="json")``."""
    body = PrinterRead.model_json_schema(mode="serialization")
    body["properties"]["schema_version"]["const"] = READ_SCHEMA_VERSION
    # RFC 3339 in UTC: the agent stamps reads with an aware UTC clock.
    body["properties"]["collected_at"]["pattern"] = "(Z|[+]00:00)$"
    _require_every_property(body)
    for definition in body.get("$defs", {}).values():
        _require_every_property(definition)
    # Optional members (not in ``required``): the verdict that `scan --policy` and uploads
    # carry, and what the daemon adds to an uploaded read (see docs/schema/envelope.md).
    verdict = verdict_json_schema()
    for name, definition in verdict.pop("$defs", {}).items():
        body.setdefault("$defs", {})[name] = definition
    body["properties"]["eligibility"] = verdict
    body["properties"]["device_id"] = {
        "type": "string",
        "description": "Stable device id (serial, else MAC, else sysObjectID + IEEE 1284 id).",
    }
    body["properties"]["purpose"] = {
        "enum": ["meters", "supplies"],
        "description": "Which scheduled job made an uploaded read.",
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": "fleet-agent printer read",
        "description": (
            f"One read of one printer, schema version {READ_SCHEMA_VERSION}. "
            "Generated from mibs.models.PrinterRead by `python -m agent.schema`; "
            "do not edit by hand."
        ),
        **{key: value for key, value in body.items() if key not in ("title", "description")},
    }


def event_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an event body (``Event.to_body()``)."""
    body = EVENT_ADAPTER.json_schema(mode="serialization")
    for definition in body.get("$defs", {}).values():
        _require_every_property(definition)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": EVENT_SCHEMA_ID,
        "title": "fleet-agent event",
        "description": (
            "The body of an envelope of kind 'event', one object per event; 'event' names "
            "its kind. Generated from the mibs.events.Event union by `python -m agent.schema`; "
            "do not edit by hand."
        ),
        **body,
    }


def status_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a heartbeat ``status`` body."""
    body = Heartbeat.model_json_schema(mode="serialization")
    _require_every_property(body)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": STATUS_SCHEMA_ID,
        "title": "fleet-agent heartbeat",
        "description": (
            "The body of an envelope of kind 'status' whose 'report' is 'heartbeat' (other "
            "reports may share the kind). Generated from mibs.heartbeat.Heartbeat by "
            "`python -m agent.schema`; do not edit by hand."
        ),
        **{key: value for key, value in body.items() if key not in ("title", "description")},
    }


def config_document_schema() -> dict[str, Any]:
    """The JSON Schema of a configuration document's signed payload."""
    body = ConfigDocument.model_json_schema(mode="serialization")
    body["properties"]["issued_at"]["pattern"] = "Z$"
    # settings.policy: the contract policy inline, in the shape of a policy file.
    policy = Policy.model_json_schema(mode="validation", ref_template="#/$defs/{model}")
    body["$defs"].update(policy.pop("$defs", {}))
    body["$defs"]["Policy"] = policy
    body["properties"]["settings"]["properties"] = {
        "policy": {
            "$ref": "#/$defs/Policy",
            "description": "The contract policy (docs/eligibility.md), used unless the "
            "agent's local file names one (eligibility.policy).",
        }
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"urn:fleet-agent:schema:config-document:{CONFIG_SCHEMA_VERSION}",
        "title": "fleet-agent configuration document",
        "description": (
            "The payload of a compact JWS (typ fleet-agent-config+jws) signed by the backend; "
            "'settings' is limited to what docs/remote-config.md lists (discovery, schedule, "
            "snmp, and the contract policy inline under 'policy'; the agent's validation "
            "is authoritative). Generated from uploader.remote_config.ConfigDocument and "
            "agent.eligibility.policy.Policy by `python -m agent.schema`; do not edit."
        ),
        **{key: value for key, value in body.items() if key not in ("title", "description")},
    }


def config_status_schema() -> dict[str, Any]:
    """The JSON Schema of a ``config_status`` body (envelope kind ``status``)."""
    body = ConfigStatus.model_json_schema(mode="serialization")
    _require_every_property(body)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"urn:fleet-agent:schema:config-status:{CONFIG_SCHEMA_VERSION}",
        "title": "fleet-agent config_status",
        "description": (
            "The body of an envelope of kind 'status' whose 'report' is 'config_status': what "
            "the agent did with a configuration document. Generated from "
            "uploader.remote_config.ConfigStatus by `python -m agent.schema`; do not edit."
        ),
        **{key: value for key, value in body.items() if key not in ("title", "description")},
    }


def enrollment_schema() -> dict[str, Any]:
    """The bodies of the control requests and the backend's reply, one ``$defs`` entry each."""
    defs: dict[str, Any] = {}
    for name, model in (
        ("enroll", EnrollRequest),
        ("key_rotation", KeyRotationRequest),
        ("reply", ControlReply),
    ):
        body = model.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
        defs.update(body.pop("$defs", {}))
        defs[name] = body
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": "urn:fleet-agent:schema:enrollment:1.0",
        "title": "fleet-agent enrollment and key rotation",
        "description": (
            "$defs.enroll: the body of an envelope of kind 'enroll'; $defs.key_rotation: the "
            "body of an envelope of kind 'key_rotation'; $defs.reply: the payload of the "
            "backend's answer (a compact JWS, typ fleet-agent-reply+jws) on the agent's "
            "'replies' topic. See docs/enrollment.md. Generated from uploader.enrollment by "
            "`python -m agent.schema`; do not edit."
        ),
        "$defs": dict(sorted(defs.items())),
    }


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render() -> str:
    return _text(read_schema())


def render_events() -> str:
    return _text(event_schema())


def render_status() -> str:
    return _text(status_schema())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.schema", description=__doc__)
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_PATH, help="read schema file to write"
    )
    parser.add_argument(
        "--events-output", type=Path, default=EVENTS_PATH, help="event schema file to write"
    )
    parser.add_argument(
        "--status-output", type=Path, default=STATUS_PATH, help="status schema file to write"
    )
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 when a file differs"
    )
    args = parser.parse_args(argv)
    stale = 0
    files = (
        (args.output, render()),
        (args.events_output, render_events()),
        (args.status_output, render_status()),
        (CONFIG_DOCUMENT_PATH, _text(config_document_schema())),
        (CONFIG_STATUS_PATH, _text(config_status_schema())),
        (ENROLLMENT_PATH, _text(enrollment_schema())),
    )
    for path, text in files:
        if args.check:
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if current != text:
                print(f"{path} is stale: run python -m agent.schema", file=sys.stderr)
                stale = 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)
    return stale


if __name__ == "__main__":
    sys.exit(main())
