"""Remote configuration documents: signing, verification, the merge rule, provenance,
the receiver's screening (pinned key, scope, replay) and the last good file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import JsonValue

from agent.config import read_local
from agent.errors import ConfigError
from agent.remote_agent import Received, RemoteConfigReceiver
from agent.remote_config import check_settings, effective_config, provenance
from agent.state import backend_key_path, remote_config_path
from uploader.errors import DocumentRejected
from uploader.keys import AgentKey
from uploader.remote_config import (
    ConfigDocument,
    ConfigStatus,
    config_topic,
    sign_document,
    verify_document,
)

LOCAL = """\
agent_id: a1
site: lab
state_dir: {state}
snmp:
  timeout: 3
  credentials:
    - name: office
      version: v2c
      community: s3cret
    - name: plant
      version: v2c
      community: other
discovery:
  exclude: ["10.1.0.9"]
upload:
  enabled: false
"""


def _document(version: int = 1, **settings: Any) -> ConfigDocument:
    return ConfigDocument(
        version=version, site="lab", issued_at=datetime.now(UTC), settings=settings
    )


@pytest.fixture
def local_file(tmp_path: Path) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(LOCAL.format(state=tmp_path / "state"))
    return path


def test_a_signed_document_verifies_only_with_the_backend_key() -> None:
    backend, other = AgentKey.generate(), AgentKey.generate()
    document = _document(3, schedule={"meters": "1h"})
    token = sign_document(backend, document)
    assert verify_document(token, backend.jose_key) == document
    with pytest.raises(DocumentRejected) as info:
        verify_document(sign_document(other, document), backend.jose_key)
    assert info.value.reason == "unknown_key"
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(DocumentRejected) as info:
        verify_document(f"{header}.{payload}.{flipped}", backend.jose_key)
    assert info.value.reason == "bad_signature"
    assert "configuration document rejected (bad_signature)" in str(info.value)


def test_an_envelope_is_not_a_document() -> None:
    from uploader.envelope import Signer

    key = AgentKey.generate()
    envelope = Signer(key, "a1").sign(kind="status", body={}, sequence=1, prev_hash=None)
    with pytest.raises(DocumentRejected) as info:
        verify_document(envelope.token, key.jose_key)
    assert info.value.reason == "wrong_type"


def test_topics() -> None:
    assert config_topic("fleet", "lab") == "fleet/lab/config"
    assert config_topic("fleet", "lab", "a1") == "fleet/lab/a1/config"
    with pytest.raises(ValueError, match="site"):
        config_topic("fleet", "l+b")


def test_only_remote_keys_may_be_set() -> None:
    settings: dict[str, JsonValue] = {
        "upload": {"enabled": False},
        "discovery": {"targets": [], "colour": 1},
        "snmp": {"credentials": [{"name": "x", "community": "leak"}]},
    }
    with pytest.raises(ConfigError) as info:
        check_settings(settings, "remote config v2 (site lab)")
    lines = str(info.value).splitlines()
    assert lines[0].startswith("remote config v2 (site lab): upload: cannot be set remotely")
    assert lines[1].startswith("remote config v2 (site lab): discovery.colour: cannot be set")
    assert "credentials are never sent over the wire" in lines[2]


def test_local_keys_win_and_credentials_are_picked_by_name(local_file: Path) -> None:
    local = read_local(local_file, environ={})
    document = _document(
        4,
        discovery={"targets": ["10.1.0.0/28"], "exclude": ["10.1.0.3"]},
        schedule={"meters": "2h"},
        snmp={"credentials": ["plant"], "timeout": 9},
    )
    config = effective_config(local, document)
    assert config.discovery.targets == ["10.1.0.0/28"]
    assert config.discovery.exclude == ["10.1.0.9"]  # set locally: local wins
    assert config.snmp.timeout == 3  # idem
    assert config.schedule.meters == 7200
    assert [c.name for c in config.snmp.credentials] == ["plant"]
    assert config.snmp.credentials[0].community is not None
    assert config.snmp.credentials[0].community.get_secret_value() == "other"

    sources = {row.key: row.source for row in provenance(config, local, document)}
    assert sources["discovery.targets"] == "remote config v4 (site lab)"
    assert sources["discovery.exclude"] == f"{local_file}:14"
    assert sources["snmp.timeout"] == f"{local_file}:5"
    assert sources["schedule.meters"] == "remote config v4 (site lab)"
    assert sources["snmp.credentials"].endswith("(profiles defined locally)")
    assert sources["schedule.supplies"] == "default"
    values = {row.key: row.value for row in provenance(config, local, document)}
    assert "s3cret" not in json.dumps(values)
    assert "other" not in json.dumps(values)


def test_remote_values_are_validated_like_the_local_file(local_file: Path) -> None:
    local = read_local(local_file, environ={})
    document = _document(5, discovery={"targets": ["10.1.0.1", "224.0.1.0/24"]})
    with pytest.raises(ConfigError) as info:
        effective_config(local, document)
    assert str(info.value).startswith(
        "remote config v5 (site lab): discovery.targets[1]: target '224.0.1.0/24': covers"
    )
    with pytest.raises(ConfigError, match=r"snmp.credentials\[0\]: no credential profile named"):
        effective_config(local, _document(6, snmp={"credentials": ["nowhere"]}))
    with pytest.raises(ConfigError, match=r"remote config v7 \(site lab\): schedule.meters"):
        effective_config(local, _document(7, schedule={"meters": "often"}))


def _receiver(tmp_path: Path, backend: AgentKey | None) -> RemoteConfigReceiver:
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    if backend is not None:
        backend_key_path(state).write_text(json.dumps(backend.public_jwk()))
    return RemoteConfigReceiver(state, site="lab", agent_id="a1")


def test_without_a_pinned_key_documents_are_ignored_and_it_is_said_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = _receiver(tmp_path, None)
    token = sign_document(AgentKey.generate(), _document(1)).encode()
    assert receiver.screen(token) is None
    assert receiver.screen(sign_document(AgentKey.generate(), _document(2)).encode()) is None
    assert capsys.readouterr().out.count("config.remote_ignored") == 1


def test_screening_refuses_bad_signatures_other_scopes_and_replays(tmp_path: Path) -> None:
    backend = AgentKey.generate()
    receiver = _receiver(tmp_path, backend)
    forged = receiver.screen(sign_document(AgentKey.generate(), _document(9)).encode())
    assert isinstance(forged, ConfigStatus)
    assert (forged.outcome, forged.reason) == ("refused", "rejected")
    other_site = _document(2).model_copy(update={"site": "elsewhere"})
    wrong = receiver.screen(sign_document(backend, other_site).encode())
    assert isinstance(wrong, ConfigStatus)
    assert wrong.reason == "wrong_scope"

    good = sign_document(backend, _document(2, schedule={"meters": "1h"})).encode()
    received = receiver.screen(good)
    assert isinstance(received, Received)
    applied = receiver.applied_ok(received)
    assert (applied.outcome, applied.version, applied.applied_version) == ("applied", 2, 2)
    assert receiver.screen(good) is None  # the retained copy again, after a reconnect
    replay = receiver.screen(sign_document(backend, _document(2)).encode())
    assert isinstance(replay, ConfigStatus)
    assert (replay.reason, replay.version, replay.applied_version) == ("replay", 2, 2)
    older = receiver.screen(sign_document(backend, _document(1)).encode())
    assert isinstance(older, ConfigStatus)
    assert older.reason == "replay"
    assert older.to_body()["report"] == "config_status"

    # The last good document is on disk, signed, and reloads verified after a restart.
    record = json.loads(remote_config_path(tmp_path / "state").read_text())
    assert record["version"] == 2
    restarted = _receiver(tmp_path, None)
    last = restarted.load_last_good()
    assert last is not None
    assert last.document.version == 2
    assert restarted.screen(good) is None


def test_a_tampered_last_good_file_is_not_used(tmp_path: Path) -> None:
    backend = AgentKey.generate()
    receiver = _receiver(tmp_path, backend)
    received = receiver.screen(sign_document(backend, _document(3)).encode())
    assert isinstance(received, Received)
    receiver.applied_ok(received)
    path = remote_config_path(tmp_path / "state")
    record = json.loads(path.read_text())
    forged = sign_document(AgentKey.generate(), _document(3, discovery={"targets": ["10.9.9.9"]}))
    path.write_text(json.dumps({**record, "token": forged}))
    restarted = _receiver(tmp_path, None)
    assert restarted.load_last_good() is None
    assert restarted.last_error is not None
    assert "unknown_key" in restarted.last_error


def test_checked_in_schemas_match_the_models_and_bodies_follow_them() -> None:
    import jsonschema

    from agent.schema import (
        CONFIG_DOCUMENT_PATH,
        CONFIG_STATUS_PATH,
        config_document_schema,
        config_status_schema,
    )

    for path, schema in (
        (CONFIG_DOCUMENT_PATH, config_document_schema()),
        (CONFIG_STATUS_PATH, config_status_schema()),
    ):
        assert json.loads(path.read_text()) == schema, f"{path} is stale: python -m agent.schema"
    status = ConfigStatus(
        outcome="rolled_back", version=3, applied_version=1, reason="cannot_start", detail="x"
    )
    jsonschema.validate(status.to_body(), config_status_schema())
    document = _document(2, discovery={"targets": ["10.0.0.1"]})
    jsonschema.validate(document.model_dump(mode="json"), config_document_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**status.to_body(), "extra": 1}, config_status_schema())


def test_config_show_names_the_source_of_every_value(
    local_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    backend = AgentKey.generate()
    receiver = _receiver(tmp_path, backend)
    document = _document(7, discovery={"targets": ["10.1.0.0/28"]}, schedule={"meters": "2h"})
    received = receiver.screen(sign_document(backend, document).encode())
    assert isinstance(received, Received)
    receiver.applied_ok(received)
    capsys.readouterr()  # the receiver's log line

    assert main(["config", "show", "--config", str(local_file), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["remote_version"] == 7
    rows = {row["key"]: row for row in shown["values"]}
    assert rows["discovery.targets"] == {
        "key": "discovery.targets",
        "value": ["10.1.0.0/28"],
        "source": "remote config v7 (site lab)",
    }
    assert rows["schedule.meters"]["value"] == 7200
    assert rows["agent_id"]["source"] == f"{local_file}:1"
    assert rows["schedule.jitter"]["source"] == "default"
    assert "s3cret" not in json.dumps(shown)

    assert main(["config", "show", "--config", str(local_file)]) == 0
    table = capsys.readouterr().out
    assert "remote config v7 (site lab)" in table
    assert "discovery.targets" in table


def test_config_push_refuses_keys_that_are_local_only_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    key = tmp_path / "backend.key"
    AgentKey.generate().save(key)
    document = tmp_path / "push.yaml"
    document.write_text("upload:\n  enabled: false\ndiscovery:\n  targets: [10.0.0.1]\n")
    # Port 9 on loopback: nothing listens; the refusal comes before any connection.
    argv = ["config", "push", str(document), "--site", "lab", "--backend-key", str(key)]
    argv += ["--broker", "127.0.0.1", "--port", "9", "--no-tls"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{document}: upload: cannot be set remotely" in err
    assert "Traceback" not in err
