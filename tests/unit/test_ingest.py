"""The consumer core: verify, reject by reason, dedupe, gaps, chain breaks (SQLite, no broker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs

from agent.cli import main
from backend.ingest import Ingestor
from backend.store import SqlStore, StoreError, open_store
from mibs.events import DeviceFound
from mibs.messages import ReadMessage, parse_body
from mibs.models import Counters, Identity, PrinterRead
from uploader.envelope import Signer, envelope_hash
from uploader.keys import AgentKey, RegisteredKey

PREFIX = "unit/fleet"
AGENT = "agent-1"
READS = f"{PREFIX}/site-a/{AGENT}/reads"
EVENTS = f"{PREFIX}/site-a/{AGENT}/events"


class Chain:
    """Signs a valid chain for one agent, like the outbox does."""

    def __init__(self, key: AgentKey, agent_id: str = AGENT) -> None:
        self.signer = Signer(key, agent_id)
        self.sequence = 0
        self.last_hash: str | None = None

    def next(self, body: dict[str, Any] | None = None, kind: str = "read") -> bytes:
        self.sequence += 1
        message = self.signer.sign(
            kind=kind,  # type: ignore[arg-type]
            body=body or {"n": self.sequence},
            sequence=self.sequence,
            prev_hash=self.last_hash,
        )
        self.last_hash = envelope_hash(message.token)
        return message.token.encode()


@pytest.fixture
def key() -> AgentKey:
    return AgentKey.generate()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    store = open_store(f"sqlite:///{tmp_path}/ingest.db")
    yield store
    store.close()


@pytest.fixture
def ingestor(key: AgentKey, store: SqlStore) -> Ingestor:
    return Ingestor(store, topic_prefix=PREFIX, file_keys=[RegisteredKey.of(key)])


def test_valid_reads_are_stored_with_body_and_state(
    key: AgentKey, ingestor: Ingestor, store: SqlStore
) -> None:
    chain = Chain(key)
    outcomes = ingestor.handle_batch([(READS, chain.next({"pages": 10})), (READS, chain.next())])
    assert [o.kind for o in outcomes] == ["stored", "stored"]
    assert store.sequences(AGENT) == [1, 2]
    row = store.execute("SELECT body, kind FROM messages WHERE sequence = 1").fetchone()
    assert json.loads(row[0]) == {"pages": 10}
    assert row[1] == "read"
    (state,) = store.agent_states()
    assert (state.last_sequence, state.last_hash, state.gaps) == (2, chain.last_hash, 0)


def test_exact_redelivery_is_a_duplicate_and_stored_once(
    key: AgentKey, ingestor: Ingestor, store: SqlStore
) -> None:
    token = Chain(key).next()
    assert ingestor.handle(READS, token).kind == "stored"
    again = ingestor.handle(READS, token)
    assert (again.kind, again.reason) == ("duplicate", "duplicate")
    assert store.message_count() == 1
    assert ingestor.summary().duplicates == 1
    assert store.rejections() == {"duplicate": 1}


def test_one_changed_byte_is_a_bad_signature(
    key: AgentKey, ingestor: Ingestor, store: SqlStore
) -> None:
    token = bytearray(Chain(key).next())
    header, payload, _signature = bytes(token).split(b".")
    index = len(header) + 1 + len(payload) // 2
    token[index] = ord("A") if token[index] != ord("A") else ord("B")
    outcome = ingestor.handle(READS, bytes(token))
    assert (outcome.kind, outcome.reason) == ("rejected", "bad_signature")
    assert store.message_count() == 0
    assert store.rejections() == {"bad_signature": 1}


def test_unregistered_key_and_garbage_are_rejected(ingestor: Ingestor, store: SqlStore) -> None:
    stranger = Chain(AgentKey.generate()).next()
    assert ingestor.handle(READS, stranger).reason == "unknown_key"
    assert ingestor.handle(READS, b"\xff\x00 not a token").reason == "malformed"
    assert ingestor.handle(READS, b"a.b").reason == "malformed"
    assert store.message_count() == 0
    assert ingestor.summary().rejected == {"malformed": 2, "unknown_key": 1}


def test_envelope_on_another_agents_topic_is_rejected(key: AgentKey, ingestor: Ingestor) -> None:
    token = Chain(key, agent_id="agent-2").next()
    assert ingestor.handle(READS, token).reason == "topic_mismatch"
    event = Chain(key).next(kind="event")
    assert ingestor.handle(READS, event).reason == "topic_mismatch"
    assert ingestor.handle("other/x/y/reads", token).reason == "topic_mismatch"


def test_reused_sequence_with_other_content_is_a_replay(
    key: AgentKey, ingestor: Ingestor, store: SqlStore
) -> None:
    chain = Chain(key)
    tokens = [chain.next() for _ in range(3)]
    for token in tokens:
        assert ingestor.handle(READS, token).kind == "stored"
    forged = chain.signer.sign(
        kind="read", body={"n": 99}, sequence=2, prev_hash=envelope_hash(tokens[0].decode())
    )
    outcome = ingestor.handle(READS, forged.token.encode())
    assert (outcome.kind, outcome.reason) == ("rejected", "replay")
    same_id = chain.signer.sign(
        kind="read",
        body={"n": 100},
        sequence=4,
        prev_hash=envelope_hash(tokens[2].decode()),
        message_id=json.loads(_payload(tokens[0]))["message_id"],
    )
    assert ingestor.handle(READS, same_id.token.encode()).reason == "replay"
    assert store.message_count() == 3
    assert store.rejections() == {"replay": 2}


def _payload(token: bytes) -> bytes:
    import base64

    segment = token.split(b".")[1]
    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))


def test_gaps_are_detected_and_closed_by_late_messages(
    key: AgentKey, ingestor: Ingestor, store: SqlStore
) -> None:
    chain = Chain(key)
    tokens = [chain.next() for _ in range(5)]
    for index in (0, 1, 4):
        ingestor.handle(READS, tokens[index])
    assert store.missing(AGENT) == [3, 4]
    assert store.agent_states()[0].gaps == 2
    assert ingestor.summary().gaps_open == 2
    ingestor.handle(READS, tokens[3])
    ingestor.handle(READS, tokens[2])
    summary = ingestor.summary()
    assert (summary.gaps_detected, summary.gaps_open, summary.stored) == (2, 0, 5)
    assert summary.chain_breaks == 0
    assert sorted(store.sequences(AGENT)) == [1, 2, 3, 4, 5]


def test_first_contact_above_one_waits_for_the_earlier_ones(
    key: AgentKey, ingestor: Ingestor, store: SqlStore
) -> None:
    chain = Chain(key)
    first, second, third = chain.next(), chain.next(), chain.next()
    ingestor.handle_batch([(READS, second), (READS, third)])
    assert store.missing(AGENT) == [1]
    assert ingestor.handle(READS, first).kind == "stored"
    summary = ingestor.summary()
    assert (summary.restarts, summary.gaps_open, summary.stored) == (0, 0, 3)


def test_a_late_message_must_fit_the_one_after_it(
    key: AgentKey, ingestor: Ingestor, store: SqlStore
) -> None:
    chain = Chain(key)
    first, _second, third = chain.next(), chain.next(), chain.next()
    ingestor.handle_batch([(READS, first), (READS, third)])
    impostor = chain.signer.sign(
        kind="read", body={"n": 666}, sequence=2, prev_hash=envelope_hash(first.decode())
    )
    assert ingestor.handle(READS, impostor.token.encode()).kind == "stored"
    assert ingestor.summary().chain_breaks == 1
    assert store.agent_states()[0].chain_breaks == 1


def test_a_broken_hash_chain_is_counted_but_stored(
    key: AgentKey, ingestor: Ingestor, store: SqlStore
) -> None:
    chain = Chain(key)
    ingestor.handle(READS, chain.next())
    forked = chain.signer.sign(kind="read", body={"n": 2}, sequence=2, prev_hash="A" * 43)
    assert ingestor.handle(READS, forked.token.encode()).kind == "stored"
    summary = ingestor.summary()
    assert summary.chain_breaks == 1
    assert store.agent_states()[0].chain_breaks == 1


def test_sequence_one_again_is_an_agent_restart(
    key: AgentKey, ingestor: Ingestor, store: SqlStore
) -> None:
    chain = Chain(key)
    for _ in range(3):
        ingestor.handle(READS, chain.next())
    fresh = Chain(key)
    assert ingestor.handle(READS, fresh.next()).kind == "stored"
    assert ingestor.handle(READS, fresh.next()).kind == "stored"
    state = store.agent_states()[0]
    assert (state.restarts, state.last_sequence) == (1, 2)


def test_presence_payloads_on_their_own_topic(ingestor: Ingestor, store: SqlStore) -> None:
    presence = f"{PREFIX}/site-a/{AGENT}/presence"
    assert ingestor.handle(presence, b"online").kind == "presence"
    assert ingestor.handle(presence, b"offline").kind == "presence"
    assert ingestor.handle(presence, b"dunno").reason == "malformed"
    # The status topic carries signed envelopes only: a bare "online" there is refused.
    status = f"{PREFIX}/site-a/{AGENT}/status"
    assert ingestor.handle(status, b"online").reason == "malformed"
    assert store.message_count() == 0


def test_state_survives_reopening_the_store(key: AgentKey, tmp_path: Path) -> None:
    file_keys = [RegisteredKey.of(key)]
    chain = Chain(key)
    url = f"sqlite:///{tmp_path}/s.db"
    first = open_store(url)
    Ingestor(first, topic_prefix=PREFIX, file_keys=file_keys).handle(READS, chain.next())
    first.close()
    second = open_store(url)
    ingestor = Ingestor(second, topic_prefix=PREFIX, file_keys=file_keys)
    chain.next()  # sequence 2 lost on the way
    assert ingestor.handle(READS, chain.next()).kind == "stored"
    assert second.missing(AGENT) == [2]
    second.close()


@pytest.mark.parametrize("url", ["mysql://x", "sqlite:/x.db", "sqlite://", "/tmp/x.db"])
def test_bad_store_urls_are_named(url: str) -> None:
    with pytest.raises(StoreError, match="--store"):
        open_store(url)


def test_ingest_cli_usage_errors_name_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    base = ["ingest", "--broker", "127.0.0.1", "--no-tls", "--keys-dir", str(keys)]
    assert main([*base, "--count", "0"]) == 2
    assert "--count: must be at least 1" in capsys.readouterr().err
    assert main([*base, "--topic-prefix", "a/#"]) == 2
    assert "--topic-prefix" in capsys.readouterr().err
    assert main([*base, "--store", "mysql://db"]) == 1
    assert "--store 'mysql://db'" in capsys.readouterr().err
    assert main([*base[:-1], str(tmp_path / "absent")]) == 1
    assert "public key directory does not exist" in capsys.readouterr().err


def test_bodies_are_parsed_with_the_agents_models_and_off_schema_ones_kept(
    key: AgentKey, ingestor: Ingestor, store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    read = ReadMessage.of(
        PrinterRead(
            address="192.0.2.7",
            collected_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
            identity=Identity(serial="CNB1"),
            counters=Counters(total=1234),
        ),
        device_id="sn:hp:CNB1",
        purpose="meters",
        verdict=None,
    )
    event = DeviceFound(
        device_id="sn:hp:CNB1", address="192.0.2.7", serial="CNB1", vendor="HP", model=None
    )
    chain = Chain(key)
    with capture_logs() as logs:
        outcomes = ingestor.handle_batch(
            [
                (READS, chain.next(read.to_body())),
                (EVENTS, chain.next(event.to_body(), kind="event")),
                (READS, chain.next({"pages": 10})),
            ]
        )
    assert [o.kind for o in outcomes] == ["stored"] * 3  # signed data is never dropped
    assert ingestor.summary().off_schema == 1
    [warning] = [e for e in logs if e["event"] == "ingest.body_off_schema"]
    assert (warning["sequence"], warning["kind"]) == (3, "read")
    assert warning["detail"].startswith("read body: ")
    row = store.execute("SELECT body FROM messages WHERE sequence = 1").fetchone()
    assert parse_body("read", json.loads(row[0])) == read


def test_a_redelivery_is_info_an_altered_copy_a_warning(key: AgentKey, ingestor: Ingestor) -> None:
    """The same message id again: verbatim is a normal redelivery, altered is an attack."""
    chain = Chain(key)
    token = chain.next()
    assert ingestor.handle(READS, token).kind == "stored"
    message_id = json.loads(_payload(token))["message_id"]
    altered = chain.signer.sign(
        kind="read", body={"n": 666}, sequence=1, prev_hash=None, message_id=message_id
    )
    with capture_logs() as logs:
        assert ingestor.handle(READS, token).kind == "duplicate"
        assert ingestor.handle(READS, altered.token.encode()).reason == "replay"
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("ingest.duplicate", "info"),
        ("ingest.rejected", "warning"),
    ]
    assert "re-used with different content" in logs[1]["detail"]


def test_a_read_body_is_validated_once_and_indexed_for_billing(
    key: AgentKey, ingestor: Ingestor, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    validate = BaseModel.model_validate.__func__  # type: ignore[attr-defined]
    validated: list[str] = []

    def counting(cls: type[BaseModel], obj: object, **kwargs: Any) -> BaseModel:
        validated.append(cls.__name__)
        return validate(cls, obj, **kwargs)  # type: ignore[no-any-return]

    monkeypatch.setattr(PrinterRead, "model_validate", classmethod(counting))
    read = PrinterRead(
        address="192.0.2.7",
        collected_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        identity=Identity(serial="CNB1"),
        counters=Counters(total=1234, mono=1000),
    )
    body = ReadMessage.of(read, device_id="sn:hp:CNB1", purpose="meters", verdict=None).to_body()
    # Off the read schema (a purpose the agent never sends) but a read billing can use:
    # stored, counted off_schema, and still indexed as before (parsed again, leniently).
    odd = {**body, "purpose": "audit", "collected_at": "2026-11-23T10:00:00+00:00"}
    chain = Chain(key)
    outcomes = ingestor.handle_batch([(READS, chain.next(body)), (READS, chain.next(odd))])
    assert [o.kind for o in outcomes] == ["stored", "stored"]
    assert validated == ["ReadMessage", "ReadMessage", "PrinterRead"]
    assert ingestor.summary().off_schema == 1
    rows = store.execute(
        "SELECT device_id, serial, meters FROM meter_reads ORDER BY collected_at"
    ).fetchall()
    assert [(r[0], r[1], json.loads(r[2])) for r in rows] == [
        ("sn:hp:CNB1", "CNB1", {"total": 1234, "mono": 1000})
    ] * 2
