"""The versioned JSON Schema of a printer read, generated from :class:`mibs.models.PrinterRead`.

The checked-in copy lives in ``docs/schema/read.schema.json``; a unit test fails
when it drifts from the model. Regenerate it after changing the model::

    .venv/bin/python -m agent.schema            # rewrite docs/schema/read.schema.json
    .venv/bin/python -m agent.schema --check    # exit 1 when the file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.eligibility.models import verdict_json_schema
from mibs.models import READ_SCHEMA_VERSION, PrinterRead

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = f"urn:fleet-agent:schema:read:{READ_SCHEMA_VERSION}"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "docs" / "schema" / "read.schema.json"


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


def render() -> str:
    return json.dumps(read_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.schema", description=__doc__)
    parser.add_argument("--output", type=Path, default=DEFAULT_PATH, help="schema file to write")
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 when the file differs"
    )
    args = parser.parse_args(argv)
    text = render()
    path: Path = args.output
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is stale: run python -m agent.schema", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
