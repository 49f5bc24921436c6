"""Agent and device liveness on the backend: stored by the ingestor, reported by
``fleet-agent agents`` and the consumer's metrics (SQLite, no broker)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.cli import main
from agent.commands.ingest import ConsumerMetrics
from agent.schema import STATUS_PATH, render_status, status_schema
from backend.agent_metrics import LivenessMetrics
from backend.agents import fleet_liveness
from backend.consume import ConsumerHealth
from backend.ingest import Ingestor
from backend.store import SqlStore, open_store
from mibs.events import DeviceBack, DeviceSilent
from mibs.heartbeat import Heartbeat, parse_status
from mibs.messages import parse_body
from uploader.envelope import Signer, envelope_hash
from uploader.keys import AgentKey, RegisteredKey

PREFIX = "unit/fleet"
T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def heartbeat(version: str = "0.9.0", **changes: Any) -> Heartbeat:
    fields: dict[str, Any] = {
        "agent_version": version,
        "site": "site-a",
        "started_at": T0,
        "uptime_s": 60.0,
        "interval_s": 300.0,
        "queue_depth": 3,
        "queue_oldest_age_s": 1.5,
        "last_good_read_at": T0,
        "config_version": None,
        "devices_known": 12,
        "devices_silent": 0,
    }
    return Heartbeat(**(fields | changes))


class Agent:
    """Signs a chain for one agent, like its outbox, at chosen times."""

    def __init__(self, keys: dict[str, AgentKey], agent_id: str, site: str = "site-a") -> None:
        self.signer = Signer(keys[agent_id], agent_id)
        self.topic = f"{PREFIX}/{site}/{agent_id}"
        self.sequence = 0
        self.last_hash: str | None = None

    def message(self, item: Any, at: datetime) -> tuple[str, bytes]:
        self.sequence += 1
        level = {"status": "status", "event": "events", "read": "reads"}[item.kind]
        signed = self.signer.sign(
            kind=item.kind,
            body=item.to_body(),
            sequence=self.sequence,
            prev_hash=self.last_hash,
            now=at,
        )
        self.last_hash = envelope_hash(signed.token)
        return f"{self.topic}/{level}", signed.token.encode()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    store = open_store(f"sqlite:///{tmp_path}/backend.db")
    yield store
    store.close()


AGENT_IDS = ("agent-a", "agent-b", "old-agent")


@pytest.fixture
def key() -> dict[str, AgentKey]:
    """One signing key per agent id: a key signs for the one agent it is bound to."""
    return {agent_id: AgentKey.generate() for agent_id in AGENT_IDS}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ingestor(key: dict[str, AgentKey], store: SqlStore, clock: Clock) -> Ingestor:
    file_keys = [RegisteredKey.of(signing, agent_id) for agent_id, signing in key.items()]
    return Ingestor(store, topic_prefix=PREFIX, file_keys=file_keys, clock=clock)


def silent(device: str, since: datetime, address: str = "192.0.2.7") -> DeviceSilent:
    return DeviceSilent(
        device_id=device,
        address=address,
        since=since,
        missed_reads=3,
        last_answered_at=since - MINUTE,
        reason="timeout",
    )


def back(device: str, since: datetime, at: datetime) -> DeviceBack:
    return DeviceBack(
        device_id=device,
        address="192.0.2.7",
        since=since,
        missed_reads=4,
        last_answered_at=since - MINUTE,
        back_at=at,
    )


# -- the ingestor keeps them ------------------------------------------------------------


def test_newest_heartbeat_per_agent_and_silence_by_the_backends_clock(
    key: dict[str, AgentKey], store: SqlStore, ingestor: Ingestor, clock: Clock
) -> None:
    a, b = Agent(key, "agent-a"), Agent(key, "agent-b", site="site-b")
    clock.now = T0 + MINUTE
    ingestor.handle_batch(
        [a.message(heartbeat(uptime_s=10), T0), b.message(heartbeat("0.8.1", site="x"), T0)]
    )
    clock.now = T0 + 10 * MINUTE
    ingestor.handle_batch([a.message(heartbeat(uptime_s=600), T0 + 10 * MINUTE)])
    report = fleet_liveness(store, now=T0 + 12 * MINUTE, silent_after=300, min_version="0.9.0")
    by_id = {agent.agent_id: agent for agent in report.agents}
    assert by_id["agent-a"].uptime_s == 600
    assert by_id["agent-a"].age_s == 120
    assert not by_id["agent-a"].silent
    assert not by_id["agent-a"].below_min_version
    # b: heard at T0 + 1 min, 11 minutes ago; its version is below the minimum
    assert by_id["agent-b"].silent
    assert by_id["agent-b"].below_min_version
    assert by_id["agent-b"].site == "site-b"  # the topic's site, not what the body claims
    assert (by_id["agent-a"].queue_depth, by_id["agent-a"].devices_known) == (3, 12)
    assert report.needs_attention


def test_a_backlog_drained_late_does_not_replace_the_newest_heartbeat(
    key: dict[str, AgentKey], store: SqlStore, ingestor: Ingestor, clock: Clock
) -> None:
    agent = Agent(key, "agent-a")
    old = agent.message(heartbeat(uptime_s=1), T0)
    new = agent.message(heartbeat(uptime_s=2), T0 + MINUTE)
    clock.now = T0 + 30 * MINUTE
    ingestor.handle_batch([new])
    clock.now = T0 + 31 * MINUTE
    ingestor.handle_batch([old])  # an older one, arriving after the newer one
    (report,) = fleet_liveness(store, now=T0 + 31 * MINUTE, silent_after=60).agents
    assert report.uptime_s == 2
    assert report.last_heartbeat_at == T0 + MINUTE
    assert report.last_heard_at == T0 + 31 * MINUTE
    assert not report.silent


def test_an_agent_without_heartbeats_is_listed_as_silent(
    key: dict[str, AgentKey], store: SqlStore, ingestor: Ingestor
) -> None:
    agent = Agent(key, "old-agent")
    ingestor.handle_batch([agent.message(silent("d1", T0), T0)])
    (report,) = fleet_liveness(store, now=T0, silent_after=60, min_version="0.1").agents
    assert (report.agent_id, report.agent_version, report.age_s) == ("old-agent", None, None)
    assert report.silent
    assert report.below_min_version


def test_one_outage_is_stored_once_even_when_the_agent_sends_it_again(
    key: dict[str, AgentKey], store: SqlStore, ingestor: Ingestor
) -> None:
    a = Agent(key, "agent-a")
    ingestor.handle_batch([a.message(silent("d1", T0), T0), a.message(silent("d2", T0), T0)])
    ingestor.handle_batch([a.message(silent("d1", T0), T0 + MINUTE)])  # after an agent crash
    assert store.message_count() == 3
    report = fleet_liveness(store, now=T0, silent_after=60)
    assert [(d.device_id, d.site, d.agent_id) for d in report.silent_devices] == [
        ("d1", "site-a", "agent-a"),
        ("d2", "site-a", "agent-a"),
    ]
    assert report.silent_devices_by_site() == {"site-a": 2}
    ingestor.handle_batch([a.message(back("d1", T0, T0 + 5 * MINUTE), T0 + 5 * MINUTE)])
    report = fleet_liveness(store, now=T0, silent_after=60)
    assert [d.device_id for d in report.silent_devices] == ["d2"]
    # a second outage of d1 is a new one
    ingestor.handle_batch([a.message(silent("d1", T0 + 9 * MINUTE), T0 + 9 * MINUTE)])
    report = fleet_liveness(store, now=T0, silent_after=60)
    assert [(d.device_id, d.since) for d in report.silent_devices] == [
        ("d1", T0 + 9 * MINUTE),
        ("d2", T0),
    ]
    rows = store.execute("SELECT count(*) FROM device_outages").fetchone()[0]
    assert rows == 4  # d1 silent, d2 silent, d1 back, d1 silent again


def test_heartbeat_body_follows_its_schema_and_other_status_reports_pass() -> None:
    body = heartbeat().to_body()
    jsonschema.Draft202012Validator(status_schema()).validate(body)
    assert parse_body("status", json.loads(json.dumps(body))) == heartbeat()
    assert parse_status({"report": "config_applied", "version": "7"}) is None
    assert not jsonschema.Draft202012Validator(status_schema()).is_valid(body | {"extra": 1})
    assert STATUS_PATH.read_text(encoding="utf-8") == render_status(), (
        "docs/schema/status.schema.json is stale: python -m agent.schema"
    )


# -- fleet-agent agents -------------------------------------------------------------------


def _fleet(key: dict[str, AgentKey], ingestor: Ingestor, clock: Clock) -> None:
    a, b = Agent(key, "agent-a"), Agent(key, "agent-b", site="site-b")
    now = datetime.now(UTC)
    clock.now = now
    ingestor.handle_batch(
        [
            a.message(heartbeat("1.2.0"), now),
            b.message(heartbeat("1.0.0"), now),
            b.message(silent("d9", now, address="=cmd|'/c calc'!A1"), now),
        ]
    )


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(["agents", *args])
    except SystemExit as exc:  # argparse refuses a bad argument
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_agents_command_formats_and_check(
    key: dict[str, AgentKey],
    store: SqlStore,
    ingestor: Ingestor,
    clock: Clock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _fleet(key, ingestor, clock)
    db = ["--db", f"sqlite:///{tmp_path}/backend.db"]
    code, out, _ = _cli([*db, "--format", "json", "--min-version", "1.1"], capsys)
    assert code == 0  # without --check, attention is reported, not signalled
    document = json.loads(out)
    assert [(a["agent_id"], a["below_min_version"]) for a in document["agents"]] == [
        ("agent-a", False),
        ("agent-b", True),
    ]
    assert document["silent_devices_by_site"] == {"site-b": 1}
    assert document["needs_attention"] is True

    code, out, _ = _cli([*db, "--format", "csv"], capsys)
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][0] == "record"
    assert [row[0] for row in rows[1:]] == ["agent", "agent", "device"]
    assert {len(row) for row in rows} == {len(rows[0])}  # rectangular, one header
    device = dict(zip(rows[0], rows[3], strict=True))
    assert device["address"] == "'=cmd|'/c calc'!A1"  # no formula for the spreadsheet
    assert device["silent"] == "yes"

    code, out, _ = _cli([*db, "--format", "table", "--check"], capsys)
    assert code == 1  # a silent device
    assert "silent devices by site: site-b 1" in out
    assert "agent-b" in out

    code, _, err = _cli([*db, "--silent-after", "soon"], capsys)
    assert code == 2
    assert "--silent-after" in err
    code, _, err = _cli([*db, "--min-version", "one"], capsys)
    assert code == 2
    assert "--min-version" in err


def test_agents_check_passes_when_all_is_well(
    key: dict[str, AgentKey],
    ingestor: Ingestor,
    clock: Clock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(UTC)
    clock.now = now
    ingestor.handle_batch([Agent(key, "agent-a").message(heartbeat("2.0"), now)])
    db = f"sqlite:///{tmp_path}/backend.db"
    assert (
        _cli(["--store", db, "--check", "--min-version", "1.0", "--format", "json"], capsys)[0] == 0
    )
    assert _cli(["--store", db, "--check", "--silent-after", "0.001s"], capsys)[0] == 1


def test_agents_without_a_store_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(["--store", f"sqlite:///{tmp_path}/none.db"], capsys)
    assert code == 2
    assert "no such file" in err
    assert not (tmp_path / "none.db").exists()
    code, _, err = _cli(["--store", "mysql://x"], capsys)
    assert code == 2


# -- the consumer's metrics -----------------------------------------------------------------


def _samples(metrics: ConsumerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }


def test_consumer_metrics_export_the_same_with_bounded_labels(
    key: dict[str, AgentKey], store: SqlStore, ingestor: Ingestor, clock: Clock
) -> None:
    _fleet(key, ingestor, clock)
    liveness = LivenessMetrics(
        store,
        silent_after=60,
        min_version="1.1.0",
        max_agent_series=1,
        clock=lambda: clock.now + timedelta(seconds=90),
    )
    samples = _samples(ConsumerMetrics(ingestor, ConsumerHealth(), liveness=liveness))
    assert samples[("fleet_agents", ())] == 2
    assert samples[("fleet_agents_silent", ())] == 2  # 90 s unheard, 60 s allowed
    assert samples[("fleet_agents_below_min_version", ())] == 1
    assert samples[("fleet_devices_silent", (("site", "site-b"),))] == 1
    ages = {k: v for k, v in samples.items() if k[0] == "fleet_agent_last_heartbeat_age_seconds"}
    assert list(ages.values()) == [90]  # one series at most here
    assert samples[("fleet_agent_series_dropped", ())] == 1
    assert samples[("fleet_ingest_messages_stored", ())] == 3
