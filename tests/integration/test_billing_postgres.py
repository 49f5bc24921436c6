"""The billing export from a PostgreSQL store: same reads, same export as from SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.store import StoredMessage, open_store
from tests.unit.test_billing import FLEET, expected_usage, run_cli, usage_of, write_policy

pytestmark = pytest.mark.integration


def test_billing_reads_stream_from_postgresql(
    postgres_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(postgres_dsn)
    store.execute("DELETE FROM meter_reads")
    with store.batch(["agent-pg"]) as batch:
        for number, item in enumerate(FLEET, start=1):
            body = {**item.model_dump(mode="json"), "device_id": f"sn:hp:{item.identity.serial}"}
            batch.insert_message(
                StoredMessage(
                    message_id=f"billing-pg-{number}",
                    agent_id="agent-pg",
                    sequence=number,
                    kind="read",
                    created_at=item.collected_at,
                    received_at=item.collected_at,
                    body=json.dumps(body),
                    token="t",
                    hash=f"h{number}",
                    prev_hash=None,
                )
            )
    store.close()
    policy = str(write_policy(tmp_path))
    code, out, err = run_cli(["--policy", policy, "--store", postgres_dsn], capsys)
    assert (code, err) == (0, "")
    assert usage_of(out) == expected_usage()
