"""Agent and device liveness in a PostgreSQL store: the same report as from SQLite."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from backend.agents import fleet_liveness
from backend.ingest import Ingestor
from backend.store import open_store
from tests.unit.test_agents import PREFIX, Agent, Clock, _cli, back, heartbeat, silent
from uploader.keys import AgentKey, RegisteredKey

pytestmark = pytest.mark.integration


def test_heartbeats_and_outages_in_postgresql(
    postgres_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # One key per agent id: a key signs for the one agent it is bound to.
    key, clock = {"pg-a": AgentKey.generate(), "pg-b": AgentKey.generate()}, Clock()
    store = open_store(postgres_dsn)
    try:
        file_keys = [RegisteredKey.of(signing, agent_id) for agent_id, signing in key.items()]
        ingestor = Ingestor(store, topic_prefix=PREFIX, file_keys=file_keys, clock=clock)
        a, b = Agent(key, "pg-a"), Agent(key, "pg-b", site="site-b")
        now = datetime.now(UTC)
        clock.now = now - timedelta(hours=1)
        old = now - timedelta(hours=1)
        ingestor.handle_batch([b.message(heartbeat("0.5.0"), old)])
        clock.now = now
        since = now - timedelta(minutes=20)
        ingestor.handle_batch(
            [
                a.message(heartbeat("1.0.0"), now),
                a.message(silent("d1", since), now),
                a.message(silent("d1", since), now),  # sent again: stored once
                a.message(silent("d2", since), now),
                a.message(back("d2", since, now), now),
            ]
        )
        # an older heartbeat of a, drained late, changes nothing but "heard"
        ingestor.handle_batch([a.message(heartbeat("0.9.0"), now - timedelta(minutes=5))])
        report = fleet_liveness(store, now=now, silent_after=900, min_version="0.9")
        assert [
            (x.agent_id, x.agent_version, x.silent, x.below_min_version) for x in report.agents
        ] == [
            ("pg-a", "1.0.0", False, False),
            ("pg-b", "0.5.0", True, True),
        ]
        assert [(d.device_id, d.site, d.since) for d in report.silent_devices] == [
            ("d1", "site-a", since)
        ]
        assert store.execute("SELECT count(*) FROM device_outages").fetchone()[0] == 3
    finally:
        store.close()
    capsys.readouterr()  # the consumer core's own log lines (structlog's default: stdout)
    code, out, _ = _cli(["--store", postgres_dsn, "--format", "json", "--check"], capsys)
    assert code == 1
    document = json.loads(out)
    assert document["silent_devices_by_site"] == {"site-a": 1}
    assert [agent["silent"] for agent in document["agents"]] == [False, True]
