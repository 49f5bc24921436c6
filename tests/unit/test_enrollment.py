"""Enrollment, key binding, rotation and revocation in the consumer core (SQLite, no broker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from backend.ingest import Ingestor, Outcome
from backend.keyring import RETIRED_GRACE, KeyBinding, KeyRing, KeyringError, key_refusal
from backend.store import SqlStore, open_store
from uploader.enrollment import (
    ControlReply,
    EnrollmentToken,
    KeyRotationRequest,
    PublicJwk,
    key_proof,
    open_reply,
    verify_key_proof,
)
from uploader.envelope import Signer, Verifier, envelope_hash
from uploader.errors import EnvelopeRejected, KeyFileError
from uploader.keys import AgentKey, RegisteredKey, load_registered_keys

PREFIX = "unit/fleet"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """CLI runs point structlog at the streams of the moment, which close after the test."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    store = open_store(f"sqlite:///{tmp_path}/ingest.db")
    yield store
    store.close()


@pytest.fixture
def backend_key() -> AgentKey:
    return AgentKey.generate()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ingestor(store: SqlStore, backend_key: AgentKey, clock: Clock) -> Ingestor:
    return Ingestor(store, topic_prefix=PREFIX, backend_key=backend_key, clock=clock)


def new_token(store: SqlStore, site: str = "site-a", *, expires: timedelta = timedelta(hours=1),
              backend: AgentKey | None = None) -> EnrollmentToken:  # fmt: skip
    token = EnrollmentToken.new(backend.key_id if backend else None)
    KeyRing(store).add_token(
        token_hash=token.hash,
        site=site,
        expires_at=NOW + expires,
        backend_key_id=token.backend_key_id,
        now=NOW,
    )
    return token


def enroll_request(key: AgentKey, agent: str, token: EnrollmentToken, site: str = "site-a"):  # type: ignore[no-untyped-def]
    body = {
        "token": token.secret,
        "public_jwk": key.public_jwk(),
        "agent_version": "1.2.3",
        "site": site,
    }
    signed = Signer(key, agent).sign(kind="enroll", body=body, sequence=1, prev_hash=None)
    return f"{PREFIX}/{site}/{agent}/enroll", signed.token.encode(), signed.message_id


def reply_of(outcome: Outcome, backend: AgentKey) -> ControlReply:
    assert outcome.reply is not None, outcome
    topic, payload = outcome.reply
    reply = open_reply(payload, backend_key_id=backend.key_id, pinned=None)
    assert topic.endswith(f"/{reply.agent_id}/replies")
    return reply


def reads(key: AgentKey, agent: str, site: str = "site-a", **sign: Any) -> tuple[str, bytes]:
    signed = Signer(key, agent).sign(
        kind="read", body={"pages": 1}, sequence=1, prev_hash=None, **sign
    )
    return f"{PREFIX}/{site}/{agent}/reads", signed.token.encode()


# -- pure parts -----------------------------------------------------------------------


def test_a_token_never_reads_as_a_command_line_option() -> None:
    # base64url starts with '-' once in 64: `fleet-agent enroll --token -Xy...` would fail
    # in argparse ("expected one argument"); 2,000 tokens all pass by chance once in 10^13.
    assert not any(str(EnrollmentToken.new(None)).startswith("-") for _ in range(2000))


def test_token_text_round_trips_and_bad_tokens_are_refused() -> None:
    backend = AgentKey.generate()
    token = EnrollmentToken.new(backend.key_id)
    assert EnrollmentToken.parse(f"  {token}\n") == token
    assert str(token).endswith("." + backend.key_id)
    bare = EnrollmentToken.new(None)
    assert EnrollmentToken.parse(str(bare)).backend_key_id is None
    assert token.hash != bare.hash
    assert len(token.hash) == 64
    for bad in ("", "short", "a" * 31, "a" * 40 + ".tooshort", "a" * 40 + " b", "ä" * 40):
        with pytest.raises(ValueError, match="not an enrollment token"):
            EnrollmentToken.parse(bad)


def test_key_proof_binds_agent_old_and_new_key() -> None:
    old, new, other = AgentKey.generate(), AgentKey.generate(), AgentKey.generate()
    request = KeyRotationRequest(
        new_jwk=PublicJwk.model_validate(new.public_jwk()),
        new_key_proof=key_proof(new, agent_id="a", old_key_id=old.key_id),
        agent_version="1",
    )
    assert verify_key_proof(request, agent_id="a", old_key_id=old.key_id)
    assert not verify_key_proof(request, agent_id="b", old_key_id=old.key_id)
    assert not verify_key_proof(request, agent_id="a", old_key_id=other.key_id)
    forged = request.model_copy(
        update={"new_key_proof": key_proof(other, agent_id="a", old_key_id=old.key_id)}
    )
    assert not verify_key_proof(forged, agent_id="a", old_key_id=old.key_id)


def test_replies_verify_against_the_token_or_the_pinned_key(
    ingestor: Ingestor, store: SqlStore, backend_key: AgentKey
) -> None:
    token = new_token(store, backend=backend_key)
    topic, payload, _ = enroll_request(AgentKey.generate(), "agent-1", token)
    outcome = ingestor.handle(topic, payload)
    assert outcome.reply is not None
    signed = outcome.reply[1]
    assert open_reply(signed, backend_key_id=backend_key.key_id, pinned=None).accepted
    assert open_reply(signed, backend_key_id=None, pinned=backend_key.jose_key).accepted
    impostor = AgentKey.generate()
    with pytest.raises(EnvelopeRejected, match="another backend key"):
        open_reply(signed, backend_key_id=impostor.key_id, pinned=None)
    with pytest.raises(EnvelopeRejected) as caught:
        open_reply(signed, backend_key_id=None, pinned=impostor.jose_key)
    assert caught.value.reason == "unknown_key"
    with pytest.raises(EnvelopeRejected):
        open_reply(b"not.a.reply", backend_key_id=None, pinned=None)


def binding(**changes: Any) -> KeyBinding:
    values: dict[str, Any] = {
        "key_id": "k",
        "agent_id": "agent-1",
        "site": "site-a",
        "jwk": {},
        "status": "active",
        "source": "enrollment",
        "created_at": NOW,
        "changed_at": NOW,
    }
    values.update(changes)
    return KeyBinding.model_validate(values)


@pytest.mark.parametrize(
    ("changes", "agent", "site", "created", "reason"),
    [
        ({}, "agent-1", "site-a", NOW, None),
        ({}, "agent-2", "site-a", NOW, "key_not_enrolled_for_agent"),
        ({}, "agent-1", "site-b", NOW, "key_not_enrolled_for_site"),
        ({"site": None}, "agent-1", "site-b", NOW, None),
        ({"agent_id": None}, "anyone", "site-a", NOW, None),
        ({"status": "revoked"}, "agent-1", "site-a", NOW - timedelta(days=1), "key_revoked"),
        ({"status": "retired"}, "agent-1", "site-a", NOW - timedelta(days=1), None),
        ({"status": "retired"}, "agent-1", "site-a", NOW + RETIRED_GRACE, None),
        (
            {"status": "retired"},
            "agent-1",
            "site-a",
            NOW + RETIRED_GRACE + timedelta(seconds=1),
            "key_retired",
        ),
    ],
)
def test_key_refusal_rules(
    changes: dict[str, Any], agent: str, site: str, created: datetime, reason: str | None
) -> None:
    assert key_refusal(binding(**changes), agent_id=agent, site=site, created_at=created) == reason


# -- enrollment in the consumer core -----------------------------------------------------


def test_enrollment_binds_the_key_to_agent_and_site_only(
    ingestor: Ingestor, store: SqlStore, backend_key: AgentKey
) -> None:
    key = AgentKey.generate()
    token = new_token(store, backend=backend_key)
    topic, payload, message_id = enroll_request(key, "agent-1", token)
    outcome = ingestor.handle(topic, payload)
    assert (outcome.kind, outcome.reason) == ("answered", None)
    reply = reply_of(outcome, backend_key)
    assert (reply.outcome, reply.site, reply.key_id, reply.request_id) == (
        "accepted",
        "site-a",
        key.key_id,
        message_id,
    )
    bound = KeyRing(store).binding(key.key_id)
    assert bound is not None
    assert (bound.agent_id, bound.site, bound.status, bound.source) == (
        "agent-1",
        "site-a",
        "active",
        "enrollment",
    )
    assert ingestor.handle(*reads(key, "agent-1")).kind == "stored"
    assert ingestor.handle(*reads(key, "agent-2")).reason == "key_not_enrolled_for_agent"
    assert ingestor.handle(*reads(key, "agent-1", site="site-b")).reason == (
        "key_not_enrolled_for_site"
    )
    # The same request again (a redelivery): the same reply, nothing applied twice.
    again = ingestor.handle(topic, payload)
    assert again.reply == outcome.reply
    (info,) = KeyRing(store).tokens()
    assert (info.used_by, info.used_key_id) == ("agent-1", key.key_id)
    assert store.rejections() == {
        "key_not_enrolled_for_agent": 1,
        "key_not_enrolled_for_site": 1,
    }
    assert ingestor.summary().answered == {"enroll accepted": 2}


def test_enrollment_refusals_are_answered_and_counted(
    ingestor: Ingestor, store: SqlStore, backend_key: AgentKey, clock: Clock
) -> None:
    key, other = AgentKey.generate(), AgentKey.generate()
    token = new_token(store)
    assert reply_of(ingestor.handle(*enroll_request(key, "a", token)[:2]), backend_key).accepted
    # A retry by the same agent and key after a lost reply: accepted again.
    retry = ingestor.handle(*enroll_request(key, "a", token)[:2])
    assert reply_of(retry, backend_key).outcome == "accepted"

    def outcome(token: EnrollmentToken, key: AgentKey = other, agent: str = "b") -> str:
        topic, payload, _ = enroll_request(key, agent, token)
        return reply_of(ingestor.handle(topic, payload), backend_key).outcome

    assert outcome(token) == "token_reused"
    assert outcome(EnrollmentToken.new(None)) == "unknown_token"
    assert outcome(new_token(store, "site-b")) == "site_mismatch"
    assert outcome(new_token(store), key=key) == "key_in_use"  # a's key claimed by b
    expiring = new_token(store, expires=timedelta(minutes=1))
    clock.now = NOW + timedelta(minutes=2)
    assert outcome(expiring) == "token_expired"
    revoked = new_token(store)
    KeyRing(store).revoke_token(revoked.hash[:12], NOW)
    assert outcome(revoked) == "token_revoked"
    assert KeyRing(store).binding(other.key_id) is None
    assert store.rejections() == {
        "key_in_use": 1,
        "site_mismatch": 1,
        "token_expired": 1,
        "token_reused": 1,
        "token_revoked": 1,
        "unknown_token": 1,
    }


def test_a_new_enrollment_retires_the_agents_old_key(
    ingestor: Ingestor, store: SqlStore, clock: Clock
) -> None:
    first, second = AgentKey.generate(), AgentKey.generate()
    ingestor.handle(*enroll_request(first, "a", new_token(store))[:2])
    clock.now = NOW + timedelta(minutes=1)
    ingestor.handle(*enroll_request(second, "a", new_token(store))[:2])
    ring = KeyRing(store)
    assert (ring.binding(first.key_id).status, ring.binding(second.key_id).status) == (  # type: ignore[union-attr]
        "retired",
        "active",
    )


def test_enrollment_request_must_be_signed_by_the_key_it_enrolls(
    ingestor: Ingestor, store: SqlStore
) -> None:
    key, thief = AgentKey.generate(), AgentKey.generate()
    body = {"token": new_token(store).secret, "public_jwk": key.public_jwk(),
            "agent_version": "1", "site": "site-a"}  # fmt: skip
    signed = Signer(thief, "a").sign(kind="enroll", body=body, sequence=1, prev_hash=None)
    outcome = ingestor.handle(f"{PREFIX}/site-a/a/enroll", signed.token.encode())
    assert (outcome.kind, outcome.reason, outcome.reply) == ("rejected", "unknown_key", None)
    body["agent_version"] = ""
    bad = Signer(key, "a").sign(kind="enroll", body=body, sequence=1, prev_hash=None)
    assert ingestor.handle(f"{PREFIX}/site-a/a/enroll", bad.token.encode()).reason == "bad_schema"


def test_without_a_backend_key_control_requests_are_refused(store: SqlStore) -> None:
    ingestor = Ingestor(store, topic_prefix=PREFIX)
    outcome = ingestor.handle(*enroll_request(AgentKey.generate(), "a", new_token(store))[:2])
    assert (outcome.kind, outcome.reason, outcome.reply) == ("rejected", "no_backend_key", None)


# -- rotation and revocation -------------------------------------------------------------


def rotation(old: AgentKey, new: AgentKey, agent: str, proof_key: AgentKey | None = None):  # type: ignore[no-untyped-def]
    body = KeyRotationRequest(
        new_jwk=PublicJwk.model_validate(new.public_jwk()),
        new_key_proof=key_proof(proof_key or new, agent_id=agent, old_key_id=old.key_id),
        agent_version="1",
    ).model_dump(mode="json")
    signed = Signer(old, agent).sign(kind="key_rotation", body=body, sequence=1, prev_hash=None)
    return f"{PREFIX}/site-a/{agent}/keys", signed.token.encode()


def test_rotation_binds_the_new_key_and_retires_the_old(
    ingestor: Ingestor, store: SqlStore, backend_key: AgentKey, clock: Clock
) -> None:
    old, new, other = AgentKey.generate(), AgentKey.generate(), AgentKey.generate()
    ingestor.handle(*enroll_request(old, "a", new_token(store))[:2])
    ingestor.handle(*enroll_request(other, "b", new_token(store))[:2])
    # b's key asks to rotate a's: refused (it may not sign for a).
    refused = reply_of(ingestor.handle(*rotation(other, new, "a")), backend_key)
    assert (refused.outcome, refused.detail.split(":")[0]) == (
        "key_not_active",
        "key_not_enrolled_for_agent",
    )
    assert (
        reply_of(ingestor.handle(*rotation(old, new, "a", proof_key=other)), backend_key).outcome
        == "bad_proof"
    )
    clock.now = NOW + timedelta(hours=1)
    accepted = reply_of(ingestor.handle(*rotation(old, new, "a")), backend_key)
    assert (accepted.outcome, accepted.key_id, accepted.site) == ("accepted", new.key_id, "site-a")
    ring = KeyRing(store)
    old_binding, new_binding = ring.binding(old.key_id), ring.binding(new.key_id)
    assert old_binding is not None
    assert new_binding is not None
    assert (old_binding.status, old_binding.replaced_by) == ("retired", new.key_id)
    assert (new_binding.agent_id, new_binding.site, new_binding.source) == (
        "a",
        "site-a",
        "rotation",
    )
    # Asked again (reply lost, agent retries with the same new key): accepted, no change.
    assert reply_of(ingestor.handle(*rotation(old, new, "a")), backend_key).accepted
    # The outbox's backlog signed by the old key before the rotation is still taken;
    # the old key signing afterwards is refused.
    assert ingestor.handle(*reads(old, "a", now=NOW + timedelta(minutes=30))).kind == "stored"
    late = reads(old, "a", now=clock.now + RETIRED_GRACE + timedelta(minutes=1))
    assert ingestor.handle(*late).reason == "key_retired"
    assert ingestor.summary().answered == {
        "enroll accepted": 2,
        "key_rotation accepted": 2,
        "key_rotation bad_proof": 1,
        "key_rotation key_not_active": 1,
    }


def test_revoked_keys_are_refused_by_reason(ingestor: Ingestor, store: SqlStore) -> None:
    a, b = AgentKey.generate(), AgentKey.generate()
    ingestor.handle(*enroll_request(a, "a", new_token(store))[:2])
    ingestor.handle(*enroll_request(b, "b", new_token(store))[:2])
    ring = KeyRing(store)
    (revoked,) = ring.revoke(key_ids=[a.key_id], now=NOW)
    assert revoked.status == "revoked"
    assert ingestor.handle(*reads(a, "a")).reason == "key_revoked"
    assert ingestor.handle(*reads(b, "b")).kind == "stored"
    assert [k.key_id for k in ring.revoke(agent_id="b", now=NOW)] == [b.key_id]
    assert ingestor.handle(*reads(b, "b", now=NOW + timedelta(seconds=1))).reason == "key_revoked"
    with pytest.raises(KeyringError, match="not registered"):
        ring.revoke(key_ids=["nope"], now=NOW)
    with pytest.raises(KeyringError, match="no key registered"):
        ring.revoke(agent_id="nobody", now=NOW)
    assert store.rejections() == {"key_revoked": 2}


# -- keys registered by hand -------------------------------------------------------------


def test_a_hand_registered_key_is_bound_to_its_agent_or_on_first_use(
    store: SqlStore, tmp_path: Path
) -> None:
    named, loose = AgentKey.generate(), AgentKey.generate()
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "named.jwk").write_text(json.dumps({**named.public_jwk(), "agent_id": "a"}))
    (keys / "loose.jwk").write_text(json.dumps(loose.public_jwk()))
    registered = load_registered_keys(keys)
    assert {(k.key_id, k.agent_id) for k in registered} == {
        (named.key_id, "a"),
        (loose.key_id, None),
    }
    ingestor = Ingestor(store, topic_prefix=PREFIX, file_keys=registered)
    assert ingestor.handle(*reads(named, "b")).reason == "key_not_enrolled_for_agent"
    assert ingestor.handle(*reads(named, "a")).kind == "stored"
    assert ingestor.handle(*reads(loose, "c")).kind == "stored"  # first use binds it to c
    assert ingestor.handle(*reads(loose, "d")).reason == "key_not_enrolled_for_agent"
    assert KeyRing(store).binding(loose.key_id).agent_id == "c"  # type: ignore[union-attr]
    # Registering the files again keeps the first-use binding and never revives a revoked key.
    KeyRing(store).revoke(key_ids=[named.key_id], now=NOW)
    Ingestor(store, topic_prefix=PREFIX, file_keys=registered)
    assert KeyRing(store).binding(named.key_id).status == "revoked"  # type: ignore[union-attr]
    assert KeyRing(store).binding(loose.key_id).agent_id == "c"  # type: ignore[union-attr]


def test_a_bad_agent_id_in_a_key_file_is_named(tmp_path: Path) -> None:
    key = AgentKey.generate()
    (tmp_path / "k.jwk").write_text(json.dumps({**key.public_jwk(), "agent_id": "a/b"}))
    with pytest.raises(KeyFileError, match=r"k\.jwk: field 'agent_id'"):
        load_registered_keys(tmp_path)


def test_registered_key_of_an_agent_key() -> None:
    key = AgentKey.generate()
    registered = RegisteredKey.of(key, "a", "s")
    assert (registered.key_id, registered.agent_id, registered.site) == (key.key_id, "a", "s")
    assert registered.jwk["x"] == key.public_jwk()["x"]


def test_token_ids_for_revocation(store: SqlStore) -> None:
    ring = KeyRing(store)
    token = new_token(store)
    with pytest.raises(KeyringError, match="8 to 64 hex digits"):
        ring.revoke_token("abc", NOW)
    with pytest.raises(KeyringError, match="no such token"):
        ring.revoke_token("0" * 12 if not token.hash.startswith("0" * 12) else "f" * 12, NOW)
    info = ring.revoke_token(token.hash[:8], NOW)
    assert info.state(NOW) == "revoked"
    stored = store.execute("SELECT token_hash FROM enrollment_tokens").fetchall()
    assert stored == [(token.hash,)]  # the store keeps the SHA-256, never the secret


# -- the backend's commands (no broker) --------------------------------------------------


def test_enroll_token_and_keys_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import main

    url = f"sqlite:///{tmp_path}/b.db"
    backend_dir = tmp_path / "backend"
    assert main(["keys", "init", "--state-dir", str(backend_dir)]) == 0
    backend = AgentKey.load(backend_dir / "agent.key")
    capsys.readouterr()
    create = ["enroll-token", "create", "--site", "s1", "--store", url]
    assert main([*create, "--backend-key", str(backend_dir / "agent.key")]) == 0
    captured = capsys.readouterr()
    token = EnrollmentToken.parse(captured.out.strip())
    assert token.backend_key_id == backend.key_id
    assert f"fleet-agent enroll --token {token}" in captured.err
    assert main([*create, "--expires", "30m", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["site"] == "s1"
    assert record["state"] == "unused"
    assert EnrollmentToken.parse(record["token"]).backend_key_id is None
    assert main(["enroll-token", "revoke", record["token_id"], "--store", url]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["enroll-token", "list", "--store", url, "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "token_id,site,state,created_at,expires_at,used_by,used_at"
    assert sorted(row.split(",")[2] for row in rows[1:]) == ["revoked", "unused"]
    assert main(["enroll-token", "list", "--store", url]) == 0
    assert "2 enrollment tokens" in capsys.readouterr().out

    key = AgentKey.generate()
    store = open_store(url)
    Ingestor(store, topic_prefix=PREFIX, file_keys=[RegisteredKey.of(key, "a1")])
    store.close()
    capsys.readouterr()  # the consumer core's own log lines
    assert main(["keys", "list", "--store", url, "--format", "json"]) == 0
    (listed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (listed["key_id"], listed["agent_id"], listed["status"], listed["source"]) == (
        key.key_id,
        "a1",
        "active",
        "file",
    )
    # A thumbprint may start with '-' (one in 64): after '--' it is never read as an option.
    assert main(["keys", "revoke", "--store", url, "--", key.key_id]) == 0
    assert f"revoked key {key.key_id} (agent a1)" in capsys.readouterr().out
    assert main(["keys", "revoke", "nope", "--store", url]) == 1
    assert "key nope: not registered" in capsys.readouterr().err


def test_a_key_id_that_starts_with_a_dash_is_shown_where_it_goes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from agent.cli import main

    kid = "-jSsebmCFVyAliVdjst7aqoVQIdqODnGMHuO_BB_1nA"  # a real thumbprint's shape
    with pytest.raises(SystemExit) as stopped:
        main(["keys", "revoke", kid, "--store", "sqlite:///nowhere.db"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "usage: fleet-agent keys revoke" in err
    assert f"an id that starts with '-' goes after '--': ... -- {kid}" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["enroll-token", "create", "--site", "a/b"], "--site 'a/b'"),
        (["enroll-token", "create", "--site", "s", "--expires", "soon"], "--expires 'soon'"),
        (["enroll-token", "create", "--site", "s", "--expires", "0"], "must be positive"),
        (["keys", "revoke"], "name key ids, or --agent"),
        (["enroll", "--token", "nope"], "--token: not an enrollment token"),
        (["enroll", "--token", "a" * 40, "--timeout", "0"], "--timeout: must be positive"),
        (["keys", "rotate", "--timeout", "-1"], "--timeout: must be positive"),
    ],
)
def test_usage_errors_exit_2_naming_the_argument(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    from agent.cli import main

    store = (
        ["--store", f"sqlite:///{tmp_path}/b.db"]
        if argv[0] != "enroll" and argv[1] != "rotate"
        else []
    )
    assert main([*argv, *store]) == 2
    assert message in capsys.readouterr().err


def test_enroll_without_a_broker_in_the_config_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    config = tmp_path / "c.yaml"
    config.write_text(f"agent_id: a\nstate_dir: {tmp_path}/s\nupload:\n  enabled: false\n")
    assert main(["enroll", "--token", "a" * 40, "--config", str(config)]) == 2
    assert "upload.mqtt: enrollment needs the broker" in capsys.readouterr().err
    assert main(["keys", "rotate", "--config", str(config)]) == 2
    assert "upload.mqtt: key rotation needs the broker" in capsys.readouterr().err


# -- the agent after a rotation -----------------------------------------------------------


def test_the_outbox_goes_on_with_a_rotated_key(tmp_path: Path) -> None:
    from uploader.outgoing import JsonMessage
    from uploader.queue import Outbox

    old, new = AgentKey.generate(), AgentKey.generate()
    with Outbox(tmp_path / "outbox.db", Signer(old, "a")) as outbox:
        first = outbox.submit(JsonMessage("read", {"n": 1}))
        with pytest.raises(ValueError, match="cannot sign as 'b'"):
            outbox.use_signer(Signer(new, "b"))
        outbox.use_signer(Signer(new, "a"))
        second = outbox.submit(JsonMessage("read", {"n": 2}))
    verified_first = Verifier({old.key_id: old.jose_key}).verify(first.token)
    verified_second = Verifier({new.key_id: new.jose_key}).verify(second.token)
    assert verified_first.key_id == old.key_id
    assert (verified_second.sequence, verified_second.prev_hash) == (2, envelope_hash(first.token))


async def test_the_daemon_follows_a_rotated_key_file(tmp_path: Path) -> None:
    from agent.daemon import Daemon
    from agent.state import key_path, load_or_create_key, outbox_path
    from uploader.outgoing import JsonMessage
    from uploader.queue import Outbox

    config = tmp_path / "agent.yaml"
    config.write_text(f"agent_id: a\nstate_dir: {tmp_path}\nupload:\n  enabled: false\n")
    old = load_or_create_key(tmp_path)
    daemon = Daemon(config)
    with Outbox(outbox_path(tmp_path), Signer(old, "a")) as outbox:
        daemon._outbox = outbox  # what Daemon.run() opens
        daemon.follow_key()  # the key it started with
        assert Verifier({old.key_id: old.jose_key}).verify(
            outbox.submit(JsonMessage("read", {})).token
        )
        new = AgentKey.generate()
        new.save(key_path(tmp_path), force=True)  # what `keys rotate` does once acknowledged
        daemon.follow_key()
        token = outbox.submit(JsonMessage("read", {})).token
        assert Verifier({new.key_id: new.jose_key}).verify(token).sequence == 2
        key_path(tmp_path).write_text("garbage")  # a broken key file: logged, old signer kept
        daemon.follow_key()
        assert Verifier({new.key_id: new.jose_key}).verify(
            outbox.submit(JsonMessage("read", {})).token
        )


def test_checked_in_schema_matches_the_models_and_real_messages_follow_it(
    store: SqlStore, ingestor: Ingestor, backend_key: AgentKey
) -> None:
    import base64

    import jsonschema

    from agent.schema import ENROLLMENT_PATH, enrollment_schema

    schema = enrollment_schema()
    assert json.loads(ENROLLMENT_PATH.read_text()) == schema, "stale: python -m agent.schema"

    def check(instance: object, name: str) -> None:
        jsonschema.validate(instance, {**schema, "$ref": f"#/$defs/{name}"})

    key, new = AgentKey.generate(), AgentKey.generate()
    topic, payload, _ = enroll_request(key, "a1", new_token(store, backend=backend_key))
    check(Verifier({key.key_id: key.jose_key}).verify(payload).body, "enroll")
    (outcome,) = ingestor.handle_batch([(topic, payload)])
    assert outcome.reply is not None
    signed = outcome.reply[1].split(b".")[1]
    check(json.loads(base64.urlsafe_b64decode(signed + b"=" * (-len(signed) % 4))), "reply")
    rotation = KeyRotationRequest(
        new_jwk=PublicJwk.model_validate(new.public_jwk()),
        new_key_proof=key_proof(new, agent_id="a1", old_key_id=key.key_id),
        agent_version="1.2.3",
    )
    check(rotation.model_dump(mode="json", exclude_none=True), "key_rotation")
    with pytest.raises(jsonschema.ValidationError):
        check({**rotation.model_dump(mode="json", exclude_none=True), "extra": 1}, "key_rotation")
