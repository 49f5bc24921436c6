"""``fleet-agent keys init|show`` through the installed entry point, as an operator runs it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey

from uploader.envelope import Signer, Verifier
from uploader.keys import AgentKey, load_public_keys

pytestmark = pytest.mark.integration

FLEET_AGENT = Path(sys.executable).with_name("fleet-agent")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "FLEET_AGENT_STATE_DIR"}
    environment.update(env or {})
    return subprocess.run(
        [str(FLEET_AGENT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )


def test_init_creates_a_0600_key_and_show_prints_its_jwk(tmp_path: Path) -> None:
    state = tmp_path / "state"
    created = _run("keys", "init", "--state-dir", str(state))
    assert created.returncode == 0, created.stderr
    key_file = state / "agent.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    key = AgentKey.load(key_file)
    assert f"key id: {key.key_id}" in created.stdout

    shown = _run("keys", "show", "--state-dir", str(state), "--format", "jwk")
    assert shown.returncode == 0, shown.stderr
    jwk = json.loads(shown.stdout)
    assert jwk == key.public_jwk()
    assert "d" not in jwk

    as_json = json.loads(_run("keys", "show", "--state-dir", str(state), "--format", "json").stdout)
    assert as_json["key_id"] == key.key_id == OKPKey.import_key(jwk).thumbprint()

    text = _run("keys", "show", "--state-dir", str(state))
    assert key.key_id in text.stdout
    private_pem = key_file.read_text()
    body = "".join(private_pem.splitlines()[1:-1])
    for output in (created.stdout, shown.stdout, text.stdout):
        assert body not in output


def test_the_shown_jwk_registers_with_a_backend_that_then_verifies(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert _run("keys", "init", "--state-dir", str(state)).returncode == 0
    backend_keys = tmp_path / "backend-keys"
    backend_keys.mkdir()
    shown = _run("keys", "show", "--state-dir", str(state), "--format", "jwk")
    (backend_keys / "office.jwk").write_text(shown.stdout)

    signer = Signer(AgentKey.load(state / "agent.key"), "office-1")
    token = signer.sign(kind="read", body={"pages": 1}, sequence=1, prev_hash=None).token
    assert Verifier(load_public_keys(backend_keys)).verify(token).body == {"pages": 1}


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert _run("keys", "init", "--state-dir", str(state)).returncode == 0
    original = (state / "agent.key").read_bytes()

    again = _run("keys", "init", "--state-dir", str(state))
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert str(state / "agent.key") in again.stderr
    assert "Traceback" not in again.stderr
    assert (state / "agent.key").read_bytes() == original

    forced = _run("keys", "init", "--state-dir", str(state), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (state / "agent.key").read_bytes() != original
    assert stat.S_IMODE((state / "agent.key").stat().st_mode) == 0o600


def test_state_dir_comes_from_the_environment(tmp_path: Path) -> None:
    state = tmp_path / "from-env"
    env = {"FLEET_AGENT_STATE_DIR": str(state)}
    assert _run("keys", "init", env=env).returncode == 0
    assert (state / "agent.key").is_file()
    shown = _run("keys", "show", "--format", "json", env=env)
    assert json.loads(shown.stdout)["path"] == str(state / "agent.key")


def test_show_without_a_key_says_what_to_do(tmp_path: Path) -> None:
    result = _run("keys", "show", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "keys init" in result.stderr
    assert str(tmp_path / "agent.key") in result.stderr
    assert "Traceback" not in result.stderr


def test_show_with_a_damaged_key_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "agent.key").write_text("-----BEGIN PRIVATE KEY-----\nnope\n")
    result = _run("keys", "show", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert str(tmp_path / "agent.key") in result.stderr
    assert "Traceback" not in result.stderr


def test_keys_without_an_action_is_a_usage_error(tmp_path: Path) -> None:
    result = _run("keys")
    assert result.returncode == 2
    assert "init" in result.stderr
