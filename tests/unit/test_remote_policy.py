"""The contract policy pushed inline in a remote configuration document: validated like a
policy file (errors name the document and the field), the local file wins, ``config show``
says where the policy came from, the daemon applies it atomically and keeps it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import read_local
from agent.eligibility.inputs import load_eligibility
from agent.errors import ConfigError
from agent.remote_agent import Received, RemoteConfigReceiver
from agent.remote_config import check_policy, effective_config, provenance, pushed_policy
from agent.state import backend_key_path, remote_config_path
from uploader.keys import AgentKey
from uploader.remote_config import ConfigDocument, sign_document

LOCAL = """\
agent_id: a1
site: lab
state_dir: {state}
upload:
  enabled: false
"""

POLICY: dict[str, Any] = {
    "version": "2026.11-remote",
    "models": [{"vendor": "HP", "patterns": ["LaserJet Pro M4*"]}],
    "max_lifetime_pages": 50000,
    "replenishment": {"lead_time_days": 7, "emergency_percent": 10},
}


def _document(version: int, **settings: Any) -> ConfigDocument:
    return ConfigDocument(
        version=version, site="lab", issued_at=datetime.now(UTC), settings=settings
    )


def _local(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(LOCAL.format(state=tmp_path / "state") + extra)
    return path


def _policy_file(tmp_path: Path, version: str = "local-1") -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({**POLICY, "version": version}))
    return path


def test_a_pushed_policy_is_validated_like_a_policy_file(tmp_path: Path) -> None:
    local = read_local(_local(tmp_path), environ={})
    pushed = pushed_policy(local, _document(3, policy=POLICY))
    assert pushed is not None
    assert pushed.label == "remote config v3 (site lab)"
    assert pushed.policy.version == "2026.11-remote"
    assert pushed.policy.replenishment.lead_time_days == 7
    assert pushed.policy.replenishment.settings().emergency_percent == 10
    assert pushed.policy.max_lifetime_pages == 50000
    assert pushed_policy(local, _document(4, schedule={"meters": "1h"})) is None
    assert pushed_policy(local, None) is None

    bad = {
        **POLICY,
        "replenishment": {"lead_time_days": -1},
        "health": {"disqualifying_errors": ["on_fire"]},
        "colour": True,
    }
    with pytest.raises(ConfigError) as info:
        pushed_policy(local, _document(7, policy=bad))
    lines = str(info.value).splitlines()
    assert "remote config v7 (site lab): policy.replenishment.lead_time_days: must be at " in (
        str(info.value)
    )
    assert any(
        line.startswith("remote config v7 (site lab): policy.health.disqualifying_errors[0]:")
        for line in lines
    ), lines
    assert "remote config v7 (site lab): policy.colour: is not a known field" in lines
    with pytest.raises(ConfigError, match=r"remote config v8 \(site lab\): policy.models: is requ"):
        pushed_policy(local, _document(8, policy={"version": "x"}))
    # The section itself must be a mapping (checked with the other sections' shape).
    with pytest.raises(ConfigError, match=r"remote config v9 \(site lab\): policy: must be a map"):
        effective_config(local, _document(9, policy=["version"]))


def test_the_local_policy_file_wins_and_show_says_where_the_policy_came_from(
    tmp_path: Path,
) -> None:
    policy_file = _policy_file(tmp_path)
    document = _document(5, policy=POLICY, schedule={"meters": "2h"})

    remote_only = read_local(_local(tmp_path), environ={})
    config = effective_config(remote_only, document)
    inputs = load_eligibility(config, pushed_policy(remote_only, document))
    assert inputs is not None
    assert inputs.source == "remote config v5 (site lab)"
    assert inputs.policy.version == POLICY["version"]
    rows = {row.key: row for row in provenance(config, remote_only, document)}
    assert rows["eligibility.policy"].source == "remote config v5 (site lab)"
    assert rows["eligibility.policy"].value == "inline, policy version 2026.11-remote"

    pinned = read_local(_local(tmp_path, f"eligibility:\n  policy: {policy_file}\n"), environ={})
    config = effective_config(pinned, document)
    assert pushed_policy(pinned, document) is None
    inputs = load_eligibility(config, pushed_policy(pinned, document))
    assert inputs is not None
    assert (inputs.source, inputs.policy.version) == (str(policy_file), "local-1")
    rows = {row.key: row for row in provenance(config, pinned, document)}
    assert rows["eligibility.policy"].value == str(policy_file)
    assert rows["eligibility.policy"].source == (
        f"{tmp_path / 'agent.yaml'}:7 (wins over the policy in remote config v5 (site lab))"
    )
    assert rows["schedule.meters"].source == "remote config v5 (site lab)"  # the rest merges

    # The environment is a local source too.
    by_env = read_local(
        _local(tmp_path), environ={"FLEET_AGENT_ELIGIBILITY__POLICY": str(policy_file)}
    )
    assert pushed_policy(by_env, document) is None
    # A bad policy is refused even where the local file wins: the backend hears of it.
    unreadable = {**POLICY, "replenishment": {"safety_days": "x"}}
    with pytest.raises(ConfigError, match=r"v6 \(site lab\): policy\.replenishment\.safety_days"):
        pushed_policy(pinned, _document(6, policy=unreadable))


def test_check_policy_before_a_push_names_the_line_of_the_file(tmp_path: Path) -> None:
    from agent.yamlconf import read_yaml

    path = tmp_path / "push.yaml"
    path.write_text(
        "schedule:\n  meters: 4h\npolicy:\n  version: '1'\n  models:\n    - vendor: HP\n"
        "      names: [M404]\n  replenishment:\n    lead_time_days: -2\n"
    )
    document = read_yaml(path, what="configuration document")
    with pytest.raises(ConfigError) as info:
        check_policy(document.data, document.place, source=str(path))
    assert str(info.value) == (
        f"{path}:9: policy.replenishment.lead_time_days: must be at least 0 (got -2)"
    )
    assert check_policy({"schedule": {}}, document.place, source=str(path)) is None


def _daemon(tmp_path: Path, extra: str = "") -> Any:
    from agent.daemon import Daemon

    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return Daemon(_local(tmp_path, extra))


def _received(backend: AgentKey, document: ConfigDocument) -> Received:
    return Received(document, sign_document(backend, document))


def _status_text(daemon: Any) -> str:
    """What ``fleet-agent status`` prints for the daemon's ``/healthz`` as it is now."""
    import contextlib
    import io

    from agent.cli import main
    from agent.commands import run as run_command

    health = json.loads(json.dumps(daemon.health(), default=str))
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setattr(run_command, "fetch_health", lambda _host, _port: health)
        patch.setenv("FLEET_AGENT_CONFIG", "/nonexistent/fleet-agent.yaml")
        main(["status", "--port", "9464"])
    return out.getvalue()


def test_the_daemon_applies_a_pushed_policy_atomically_and_keeps_it(tmp_path: Path) -> None:
    backend = AgentKey.generate()
    daemon = _daemon(tmp_path)
    backend_key_path(tmp_path / "state").write_text(json.dumps(backend.public_jwk()))
    assert daemon._eligibility is None
    assert daemon.health()["config"]["policy_source"] is None
    assert "contract policy: none (no verdicts)" in _status_text(daemon)

    status = daemon._apply_document(_received(backend, _document(1, policy=POLICY)))
    assert (status.outcome, status.applied_version) == ("applied", 1)
    assert daemon._eligibility.policy.version == "2026.11-remote"
    assert daemon.health()["config"]["policy_source"] == "remote config v1 (site lab)"
    assert daemon.health()["config"]["policy_version"] == "2026.11-remote"
    assert "contract policy: version 2026.11-remote from remote config v1 (site lab)" in (
        _status_text(daemon)
    )

    # A bad policy beside a good schedule: the whole document is refused, nothing changes.
    bad = _document(2, schedule={"meters": "1h"}, policy={**POLICY, "version": ""})
    status = daemon._apply_document(_received(backend, bad))
    assert (status.outcome, status.reason, status.applied_version) == ("refused", "invalid", 1)
    assert status.detail is not None
    assert status.detail.startswith("remote config v2 (site lab): policy.version: ")
    assert daemon._eligibility.policy.version == "2026.11-remote"
    assert daemon.config.schedule.meters == 4 * 3600  # the default, not the refused 1h

    # A new policy replaces the old one; a document without one drops it.
    second = {**POLICY, "version": "2026.12", "replenishment": {"lead_time_days": 2}}
    assert daemon._apply_document(_received(backend, _document(3, policy=second))).version == 3
    assert daemon._eligibility.policy.replenishment.lead_time_days == 2

    # Restarted: the last good document (with its policy) runs before any broker is reached.
    assert json.loads(remote_config_path(tmp_path / "state").read_text())["version"] == 3
    restarted = _daemon(tmp_path)
    assert restarted.config_version == 3
    assert restarted._eligibility.policy.version == "2026.12"
    assert restarted._eligibility.source == "remote config v3 (site lab)"

    assert restarted._apply_document(_received(backend, _document(4))).outcome == "applied"
    assert restarted._eligibility is None


def test_a_local_policy_file_added_later_wins_at_the_next_reload(tmp_path: Path) -> None:
    backend = AgentKey.generate()
    daemon = _daemon(tmp_path)
    backend_key_path(tmp_path / "state").write_text(json.dumps(backend.public_jwk()))
    daemon._apply_document(_received(backend, _document(1, policy=POLICY)))
    policy_file = _policy_file(tmp_path, "site-pinned")
    _local(tmp_path, f"eligibility:\n  policy: {policy_file}\n")
    assert daemon.reload()
    assert daemon._eligibility.policy.version == "site-pinned"
    assert daemon._eligibility.source == str(policy_file)
    assert daemon.config_version == 1  # the document still runs for everything else


def test_config_show_names_the_policy_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    backend = AgentKey.generate()
    config = _local(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    backend_key_path(state).write_text(json.dumps(backend.public_jwk()))
    receiver = RemoteConfigReceiver(state, site="lab", agent_id="a1")
    received = receiver.screen(sign_document(backend, _document(7, policy=POLICY)).encode())
    assert isinstance(received, Received)
    receiver.applied_ok(received)
    capsys.readouterr()

    assert main(["config", "show", "--config", str(config), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["policy"] == {
        "from": "remote",
        "source": "remote config v7 (site lab)",
        "remote_version": 7,
        "version": "2026.11-remote",
    }
    assert main(["config", "show", "--config", str(config)]) == 0
    assert "inline, policy version 2026.11-remote" in capsys.readouterr().out

    policy_file = _policy_file(tmp_path)
    _local(tmp_path, f"eligibility:\n  policy: {policy_file}\n")
    assert main(["config", "show", "--config", str(config), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["policy"] == {"from": "local_file", "source": str(policy_file)}


def test_config_push_refuses_an_invalid_policy_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    key = tmp_path / "backend.key"
    AgentKey.generate().save(key)
    document = tmp_path / "push.yaml"
    document.write_text(
        yaml.safe_dump({"policy": {**POLICY, "replenishment": {"emergency_percent": 150}}})
    )
    # Port 9 on loopback: nothing listens; the refusal comes before any connection.
    argv = ["config", "push", str(document), "--site", "lab", "--backend-key", str(key)]
    argv += ["--broker", "127.0.0.1", "--port", "9", "--no-tls"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{document}:" in err
    assert "policy.replenishment.emergency_percent: must be at most 100 (got 150)" in err
    assert "Traceback" not in err


def test_the_document_schema_describes_the_inline_policy() -> None:
    import jsonschema

    from agent.schema import config_document_schema

    schema = config_document_schema()
    document = _document(2, policy=POLICY, schedule={"meters": "4h"})
    jsonschema.validate(document.model_dump(mode="json"), schema)
    wrong = _document(3, policy={**POLICY, "replenishment": {"emergency_percent": 150}})
    with pytest.raises(jsonschema.ValidationError, match="150 is greater than the maximum of 100"):
        jsonschema.validate(wrong.model_dump(mode="json"), schema)


def test_a_local_null_pins_no_policy(tmp_path: Path) -> None:
    local = read_local(_local(tmp_path, "eligibility:\n  policy: null\n"), environ={})
    document = _document(2, policy=POLICY)
    assert pushed_policy(local, document) is None
    assert load_eligibility(effective_config(local, document), None) is None


def test_the_documented_example_is_a_valid_document() -> None:
    import re

    from agent.remote_config import check_settings

    text = (Path(__file__).resolve().parents[2] / "docs" / "remote-config.md").read_text()
    match = re.search(r"Example:\n\n```yaml\n(.*?)```", text, re.DOTALL)
    assert match is not None
    settings = yaml.safe_load(match.group(1))
    check_settings(settings, "example")
    policy = check_policy(settings, lambda _loc: "example", source="example")
    assert policy is not None
    assert policy.replenishment.lead_time_days == 7
    assert policy.billing is not None


def test_config_push_refuses_what_a_signed_document_cannot_carry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    key = tmp_path / "backend.key"
    AgentKey.generate().save(key)
    document = tmp_path / "push.yaml"
    document.write_text(
        "schedule:\n  meters: 4h\n  jitter: .nan\npolicy:\n  version: '1'\n"
        "  models: [{vendor: HP, names: [M404]}]\n  managed: [2026-11-30]\n"
    )
    argv = ["config", "push", str(document), "--site", "lab", "--backend-key", str(key)]
    argv += ["--broker", "127.0.0.1", "--port", "9", "--no-tls"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{document}:3: schedule.jitter: not a JSON value (nan): quote it" in err
    assert f"{document}:7: policy.managed[0]: not a JSON value (a date): quote it" in err
    assert "Traceback" not in err
