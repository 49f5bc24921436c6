"""Enrollment, key binding, rotation and revocation end to end through a real Mosquitto.

The consumer is the real CLI in its own process (``fleet-agent ingest
--backend-key``); the other commands (``enroll-token create|list``, ``keys
list|revoke`` on the backend's store, ``enroll`` and ``keys rotate`` on two
agents configured by YAML files) run through the CLI's ``main`` in the test's
process (one interpreter start each would take most of the test's time on a
loaded machine), the first enrollment through a process of its own. Envelopes
are published raw with a plain MQTT client; the store says what was stored and
what was refused, by reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest
import structlog
import yaml

from agent.cli import main
from backend.store import SqlStore, open_store
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_consumer import unique_prefix
from uploader.envelope import Signer
from uploader.keys import AgentKey

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """CLI runs point structlog at the streams of the moment, which close after the test."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``fleet-agent ARGS`` through the CLI's ``main``: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def cli_process(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``fleet-agent ARGS`` in a process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
        check=False,
    )


def agent_config(directory: Path, broker: Mosquitto, prefix: str, agent_id: str, site: str) -> Path:
    state = directory / agent_id
    config = {
        "agent_id": agent_id,
        "site": site,
        "state_dir": str(state),
        "upload": {
            "mqtt": {
                "host": broker.host,
                "port": broker.port,
                "tls": False,
                "topic_prefix": prefix,
                "connect_timeout": 5,
            }
        },
    }
    path = directory / f"{agent_id}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class Backend:
    """The backend's key, store and a running ``fleet-agent ingest`` process."""

    def __init__(self, directory: Path, broker: Mosquitto, prefix: str) -> None:
        self.directory = directory
        self.store_url = f"sqlite:///{directory / 'backend.db'}"
        self.key_file = directory / "backend" / "agent.key"
        assert cli("keys", "init", "--state-dir", str(self.key_file.parent)).returncode == 0
        self.key = AgentKey.load(self.key_file)
        self.broker, self.prefix = broker, prefix
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "agent.cli", "ingest",
            "--broker", self.broker.host, "--port", str(self.broker.port), "--no-tls",
            "--topic-prefix", self.prefix, "--group", "", "--client-id", f"{self.prefix}-c",
            "--store", self.store_url, "--backend-key", str(self.key_file),
            "--format", "json", "--log-level", "info",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=open(self.directory / "ingest.log", "w"),  # noqa: SIM115 - closed by the OS
            text=True,
        )
        log = self.directory / "ingest.log"
        deadline = time.monotonic() + 120  # an interpreter start on a loaded machine
        while "ingest.subscribed" not in log.read_text():
            assert self.process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the consumer did not subscribe"
            time.sleep(0.05)

    def stop(self) -> dict[str, object]:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, (self.directory / "ingest.log").read_text()
        summary: dict[str, object] = json.loads(out.strip().splitlines()[-1])
        return summary

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--store", self.store_url)

    def token(self, site: str, expires: str = "1h") -> str:
        done = self.cli(
            "enroll-token", "create", "--site", site, "--expires", expires,
            "--backend-key", str(self.key_file),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def open_store(self) -> SqlStore:
        return open_store(self.store_url)


@pytest.fixture
def backend(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Backend]:
    backend = Backend(tmp_path, mosquitto, unique_prefix("enroll"))
    yield backend
    if backend.process is not None and backend.process.poll() is None:
        backend.process.kill()
        backend.process.wait()


def enroll(
    config: Path, token: str, timeout: str = "20", *, process: bool = False
) -> tuple[int, dict[str, object]]:
    run = cli_process if process else cli
    done = run("enroll", "--token", token, "--config", str(config), "--format", "json",
               "--timeout", timeout)  # fmt: skip
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def publish(broker: Mosquitto, messages: list[tuple[str, bytes]]) -> None:
    async def send() -> None:
        async with aiomqtt.Client(broker.host, broker.port) as client:
            for topic, payload in messages:
                await client.publish(topic, payload, qos=1)

    asyncio.run(send())


def wait_for(predicate: object, what: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def read(key: AgentKey, agent_id: str, sequence: int, prev: str | None, **kw: object) -> bytes:
    signed = Signer(key, agent_id).sign(
        kind="read",
        body={"pages": sequence},
        sequence=sequence,
        prev_hash=prev,
        **kw,  # type: ignore[arg-type]
    )
    return signed.token.encode()


def test_enroll_bind_rotate_revoke_through_the_broker(
    backend: Backend, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    prefix = backend.prefix
    config_a = agent_config(tmp_path, mosquitto, prefix, "agent-a", "site-a")
    config_b = agent_config(tmp_path, mosquitto, prefix, "agent-b", "site-a")
    backend.start()

    # Agent A enrolls: accepted for site-a; the backend's key is pinned.
    token_a = backend.token("site-a")
    code, reply = enroll(config_a, token_a, process=True)
    assert (code, reply["outcome"], reply["site"]) == (0, "accepted", "site-a"), reply
    pinned = json.loads((tmp_path / "agent-a" / "backend-key.jwk").read_text())
    assert pinned["kid"] == backend.key.key_id
    assert pinned["x"] == backend.key.public_jwk()["x"]
    key_a = AgentKey.load(tmp_path / "agent-a" / "agent.key")
    assert reply["key_id"] == key_a.key_id

    # The same token again, from agent B: token_reused, nothing pinned, exit 1.
    code, reply = enroll(config_b, token_a)
    assert (code, reply["outcome"]) == (1, "token_reused"), reply
    assert "already used" in str(reply["detail"])
    assert not (tmp_path / "agent-b" / "backend-key.jwk").exists()

    # An expired token, an unknown one, one for another site: each refused by name.
    expired = backend.token("site-a", expires="1s")
    time.sleep(1.5)
    code, reply = enroll(config_b, expired)
    assert (code, reply["outcome"]) == (1, "token_expired"), reply
    unknown = "x" * 32 + "." + backend.key.key_id
    code, reply = enroll(config_b, unknown)
    assert (code, reply["outcome"]) == (1, "unknown_token"), reply
    code, reply = enroll(config_b, backend.token("site-b"))
    assert (code, reply["outcome"]) == (1, "site_mismatch"), reply
    assert "set site: site-b" in str(reply["detail"])

    # A good token for B.
    code, reply = enroll(config_b, backend.token("site-a"))
    assert (code, reply["outcome"]) == (0, "accepted"), reply
    key_b = AgentKey.load(tmp_path / "agent-b" / "agent.key")

    # A's key signs for A: stored. A's key claiming agent B: refused.
    topic_a, topic_b = f"{prefix}/site-a/agent-a/reads", f"{prefix}/site-a/agent-b/reads"
    first_a = read(key_a, "agent-a", 1, None)
    publish(mosquitto, [(topic_a, first_a), (topic_b, read(key_a, "agent-b", 1, None))])
    store = backend.open_store()
    wait_for(lambda: store.rejections().get("key_not_enrolled_for_agent") == 1, "A claiming B")
    wait_for(lambda: store.message_count("agent-a") == 1, "A's read")
    assert store.message_count("agent-b") == 0

    # Rotation: A's new key is acknowledged, then replaces the old one on disk.
    done = cli("keys", "rotate", "--config", str(config_a), "--format", "json", "--timeout", "20")
    rotated = json.loads(done.stdout)
    assert (done.returncode, rotated["outcome"]) == (0, "accepted"), done
    new_a = AgentKey.load(tmp_path / "agent-a" / "agent.key")
    assert new_a.key_id == rotated["new_key_id"] != key_a.key_id
    assert not (tmp_path / "agent-a" / "agent.key.next").exists()
    later = datetime.now(UTC) + timedelta(minutes=10)  # past the retired key's grace
    from uploader.envelope import envelope_hash

    prev = envelope_hash(first_a)
    publish(
        mosquitto,
        [
            (topic_a, read(new_a, "agent-a", 2, prev)),  # the new key: stored
            (topic_a, read(key_a, "agent-a", 3, prev, now=later)),  # the old one: retired
        ],
    )
    wait_for(lambda: store.rejections().get("key_retired") == 1, "the retired key refused")
    wait_for(lambda: store.message_count("agent-a") == 2, "the new key's read")

    # Revocation of B: its envelopes are refused from then on.
    publish(mosquitto, [(topic_b, read(key_b, "agent-b", 1, None))])
    wait_for(lambda: store.message_count("agent-b") == 1, "B's first read")
    done = backend.cli("keys", "revoke", "--agent", "agent-b")
    assert done.returncode == 0, done.stderr
    assert f"revoked key {key_b.key_id}" in done.stdout
    second_b = read(key_b, "agent-b", 2, envelope_hash(read(key_b, "agent-b", 1, None)))
    publish(mosquitto, [(topic_b, second_b)])
    wait_for(lambda: store.rejections().get("key_revoked") == 1, "the revoked key refused")
    assert store.message_count("agent-b") == 1

    # What the backend's listings say.
    listed = backend.cli("keys", "list", "--format", "json")
    keys = {row["key_id"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert keys[key_a.key_id]["status"] == "retired"
    assert keys[new_a.key_id]["status"] == "active"
    assert keys[new_a.key_id]["source"] == "rotation"
    assert keys[key_b.key_id]["status"] == "revoked"
    assert {keys[k]["agent_id"] for k in (key_a.key_id, new_a.key_id)} == {"agent-a"}
    tokens = [
        json.loads(line)
        for line in backend.cli("enroll-token", "list", "--format", "json").stdout.splitlines()
    ]
    states = sorted(str(t["state"]) for t in tokens)
    assert states == ["expired", "unused", "used", "used"]
    rejections = store.rejections()
    store.close()

    summary = backend.stop()
    answered = summary["answered"]
    assert answered == {
        "enroll accepted": 2,
        "enroll site_mismatch": 1,
        "enroll token_expired": 1,
        "enroll token_reused": 1,
        "enroll unknown_token": 1,
        "key_rotation accepted": 1,
    }
    for reason in ("token_reused", "token_expired", "unknown_token", "site_mismatch"):
        assert rejections[reason] == 1


def test_enroll_without_a_backend_says_so(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = agent_config(tmp_path, mosquitto, unique_prefix("nobody"), "agent-x", "site-a")
    code, reply = enroll(config, "y" * 40, timeout="2")
    assert (code, reply["outcome"]) == (1, "timeout")
    assert "no reply from the backend within 2 s" in str(reply["detail"])
    assert "is the backend consumer running" in str(reply["detail"])
