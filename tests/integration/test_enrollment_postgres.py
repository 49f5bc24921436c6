"""The key binding tables on PostgreSQL: enrollment, refusals, rotation, revocation.

The consumer core (:class:`backend.ingest.Ingestor`) and the backend's commands
against a real PostgreSQL (initdb/pg_ctl, a fresh database per test).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import structlog

from agent.cli import main
from backend.ingest import Ingestor
from backend.keyring import KeyRing
from backend.store import PostgresStore, open_store
from uploader.enrollment import (
    EnrollmentToken,
    KeyRotationRequest,
    PublicJwk,
    key_proof,
    open_reply,
)
from uploader.envelope import Signer
from uploader.keys import AgentKey

pytestmark = pytest.mark.integration

PREFIX = "pg"


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """CLI runs point structlog at the streams of the moment, which close after the test."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def _enroll(key: AgentKey, agent: str, token: EnrollmentToken) -> tuple[str, bytes]:
    body = {"token": token.secret, "public_jwk": key.public_jwk(), "agent_version": "1",
            "site": "s1"}  # fmt: skip
    signed = Signer(key, agent).sign(kind="enroll", body=body, sequence=1, prev_hash=None)
    return f"{PREFIX}/s1/{agent}/enroll", signed.token.encode()


def _read(key: AgentKey, agent: str, **sign: object) -> tuple[str, bytes]:
    signed = Signer(key, agent).sign(
        kind="read",
        body={"pages": 1},
        sequence=1,
        prev_hash=None,
        **sign,  # type: ignore[arg-type]
    )
    return f"{PREFIX}/s1/{agent}/reads", signed.token.encode()


def test_binding_tables_on_postgresql(
    postgres_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = AgentKey.generate()
    store = open_store(postgres_dsn)
    assert isinstance(store, PostgresStore)
    ingestor = Ingestor(store, topic_prefix=PREFIX, backend_key=backend)
    ring = KeyRing(store)
    now = datetime.now(UTC)

    def token(site: str = "s1", expires: timedelta = timedelta(hours=1)) -> EnrollmentToken:
        made = EnrollmentToken.new(backend.key_id)
        ring.add_token(token_hash=made.hash, site=site, expires_at=now + expires,
                       backend_key_id=backend.key_id, now=now)  # fmt: skip
        return made

    def outcome(topic: str, payload: bytes) -> str:
        result = ingestor.handle(topic, payload)
        assert result.reply is not None, result
        return open_reply(result.reply[1], backend_key_id=backend.key_id, pinned=None).outcome

    a, b, a2 = AgentKey.generate(), AgentKey.generate(), AgentKey.generate()
    used = token()
    assert outcome(*_enroll(a, "agent-a", used)) == "accepted"
    assert outcome(*_enroll(b, "agent-b", used)) == "token_reused"
    assert outcome(*_enroll(b, "agent-b", token(expires=timedelta(seconds=-1)))) == "token_expired"
    assert outcome(*_enroll(b, "agent-b", token())) == "accepted"
    assert ingestor.handle(*_read(a, "agent-a")).kind == "stored"
    assert ingestor.handle(*_read(a, "agent-b")).reason == "key_not_enrolled_for_agent"

    body = KeyRotationRequest(
        new_jwk=PublicJwk.model_validate(a2.public_jwk()),
        new_key_proof=key_proof(a2, agent_id="agent-a", old_key_id=a.key_id),
        agent_version="1",
    ).model_dump(mode="json")
    rotation = Signer(a, "agent-a").sign(kind="key_rotation", body=body, sequence=1, prev_hash=None)
    assert outcome(f"{PREFIX}/s1/agent-a/keys", rotation.token.encode()) == "accepted"
    late = _read(a, "agent-a", now=datetime.now(UTC) + timedelta(hours=1))
    assert ingestor.handle(*late).reason == "key_retired"
    assert ingestor.handle(*_read(a2, "agent-a")).kind == "stored"

    assert main(["keys", "revoke", "--agent", "agent-b", "--store", postgres_dsn]) == 0
    assert ingestor.handle(*_read(b, "agent-b")).reason == "key_revoked"
    capsys.readouterr()  # the consumer core's log lines
    assert main(["keys", "list", "--store", postgres_dsn, "--format", "json"]) == 0
    listed = {row["key_id"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {k: listed[k]["status"] for k in (a.key_id, a2.key_id, b.key_id)} == {
        a.key_id: "retired",
        a2.key_id: "active",
        b.key_id: "revoked",
    }
    assert main(["enroll-token", "create", "--site", "s2", "--store", postgres_dsn]) == 0
    capsys.readouterr()
    assert main(["enroll-token", "list", "--store", postgres_dsn, "--format", "json"]) == 0
    states = sorted(json.loads(line)["state"] for line in capsys.readouterr().out.splitlines())
    assert states == ["expired", "unused", "used", "used"]  # s2's token is the unused one
    assert store.rejections() == {
        "key_not_enrolled_for_agent": 1,
        "key_retired": 1,
        "key_revoked": 1,
        "token_expired": 1,
        "token_reused": 1,
    }
    store.close()
