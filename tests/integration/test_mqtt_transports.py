"""MQTT over TLS WebSockets through an HTTP CONNECT proxy with basic auth: real peers.

The broker is aedes behind a Node TLS WebSocket listener (``wss://127.0.0.1:P/mqtt``,
certificate from a test CA); the proxy is Debian's tinyproxy with basic auth. The
agent's publisher and the reference consumer both go through the proxy; ``ss``
shows that every connection the broker accepted belongs to tinyproxy, and the
proxy's log shows the CONNECT tunnels. A wrong proxy password, an untrusted server
certificate and a broker refusing our credentials each get their own message,
naming the hop.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from agent.cli import main
from agent.state import backend_key_path, key_path
from backend.keyring import KeyRing
from tests.support.mqtt_consumer import (
    eventually,
    register_key,
    start_agent,
    start_consumer,
    unique_prefix,
)
from tests.support.wsbroker import (
    SOCKS_PASSWORD,
    SOCKS_USER,
    SocksProxy,
    Tinyproxy,
    TinyproxyFactory,
    WssBroker,
    WssBrokerFactory,
)
from uploader.config import MqttSettings, ProxySettings
from uploader.envelope import Verifier
from uploader.keys import AgentKey
from uploader.mqtt import BrokerUnavailable, connect

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BROKER_USERS = {"agent-7": "broker-pass", "backend": "backend-pass"}


@pytest.fixture
def broker(wss_broker_factory: WssBrokerFactory) -> WssBroker:
    return wss_broker_factory(users=BROKER_USERS)


@pytest.fixture
def proxy(tinyproxy_factory: TinyproxyFactory) -> Tinyproxy:
    return tinyproxy_factory(username="fleet", password="proxy-pass")


def wss_settings(broker: WssBroker, proxy: Tinyproxy | None, **overrides: object) -> MqttSettings:
    values: dict[str, object] = {
        "host": broker.host,
        "port": broker.port,
        "transport": "websockets",
        "websocket_path": broker.path,
        "ca_file": broker.pki.ca.cert,
        "username": "agent-7",
        "password": SecretStr("broker-pass"),
        "protocol": "3.1.1",  # aedes speaks MQTT 3.1.1
        "topic_prefix": unique_prefix("wss"),
        "connect_timeout": 10,  # TLS + WebSocket + proxy on a loaded machine
        "backoff_min": 0.05,
        "backoff_max": 0.3,
    }
    if proxy is not None:
        values["proxy"] = ProxySettings(
            host=proxy.host,
            port=proxy.port,
            username="fleet",
            password=SecretStr("proxy-pass"),
        )
    values.update(overrides)
    return MqttSettings.model_validate(values)


def broker_side_owners(port: int) -> list[str]:
    """The process names owning the client end of every TCP connection to ``port``."""
    result = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( dport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    )
    owners = []
    for line in result.stdout.splitlines():
        found = re.search(r'users:\(\("([^"]+)"', line)
        owners.append(found.group(1) if found else "?")
    return owners


async def test_reads_flow_over_tls_websockets_through_an_authenticating_proxy(
    broker: WssBroker, proxy: Tinyproxy, tmp_path: Path
) -> None:
    settings = wss_settings(broker, proxy)
    assert settings.endpoint == (
        f"wss://127.0.0.1:{broker.port}/mqtt via http://127.0.0.1:{proxy.port}"
    )
    key = AgentKey.generate()
    verifier = Verifier({key.key_id: key.jose_key})
    backend = settings.model_copy(
        update={"username": "backend", "password": SecretStr("backend-pass")}
    )
    received: list[int] = []
    async with connect(backend, client_id="backend-subscriber") as subscriber:
        await subscriber.subscribe(settings.agent_topic("agent-7", "read"), qos=1)
        agent = start_agent(settings, key, "agent-7", tmp_path / "outbox.db")
        agent.submit(30)

        async def collect() -> None:
            async for message in subscriber.messages:
                assert isinstance(message.payload, bytes)
                received.append(verifier.verify(message.payload).sequence)
                if len(received) == 30:
                    return

        await asyncio.wait_for(collect(), timeout=60)
        # Both connections are up: every TCP connection the broker has is tinyproxy's.
        owners = await asyncio.to_thread(broker_side_owners, broker.port)
        assert owners, "no connection to the broker"
        assert set(owners) == {"tinyproxy"}, owners
        await eventually(lambda: agent.outbox.depth() == 0, within=20, what="outbox drained")
        await agent.finish()
    assert received == list(range(1, 31))
    # The proxy tunnelled each of them to the broker (and the broker saw only loopback peers).
    tunnels = re.findall(rf"CONNECT 127\.0\.0\.1:{broker.port} HTTP", proxy.log())
    accepted = broker.events("connection")
    assert len(tunnels) == len(accepted) == 2
    assert len(broker.events("client")) == 2


async def refusal(settings: MqttSettings) -> BrokerUnavailable:
    with pytest.raises(BrokerUnavailable) as caught:
        async with connect(settings, client_id="refused"):
            pass
    return caught.value


async def test_a_wrong_proxy_password_is_named(broker: WssBroker, proxy: Tinyproxy) -> None:
    settings = wss_settings(broker, proxy)
    assert settings.proxy is not None
    wrong = settings.proxy.model_copy(update={"password": SecretStr("not-the-proxy-pass")})
    error = await refusal(settings.model_copy(update={"proxy": wrong}))
    assert error.hop == "proxy_auth"
    assert error.reason.startswith("proxy authentication: ")
    assert "refused our username or password (HTTP 401 Unauthorized)" in error.reason
    assert "not-the-proxy-pass" not in str(error)
    assert not broker.events("connection"), "nothing reached the broker"


async def test_no_proxy_credentials_is_named(broker: WssBroker, proxy: Tinyproxy) -> None:
    settings = wss_settings(broker, proxy)
    anonymous = ProxySettings(host=proxy.host, port=proxy.port)
    error = await refusal(settings.model_copy(update={"proxy": anonymous}))
    assert error.hop == "proxy_auth"
    assert "requires authentication (HTTP 407 Proxy Authentication Required)" in error.reason


async def test_an_untrusted_server_certificate_is_named(
    broker: WssBroker, proxy: Tinyproxy
) -> None:
    error = await refusal(wss_settings(broker, proxy, ca_file=broker.pki.other_ca.cert))
    assert error.hop == "tls"
    assert error.reason.startswith("TLS: server certificate not trusted")


async def test_a_broker_refusing_our_credentials_is_named(
    broker: WssBroker, proxy: Tinyproxy
) -> None:
    error = await refusal(wss_settings(broker, proxy, password=SecretStr("wrong-broker-pass")))
    assert error.hop == "broker_auth"
    assert error.reason == ("broker authentication: the broker rejected the username or password")
    assert "wrong-broker-pass" not in str(error)
    assert broker.events("auth_failed")


async def test_a_wrong_websocket_path_is_named(broker: WssBroker, proxy: Tinyproxy) -> None:
    error = await refusal(wss_settings(broker, proxy, websocket_path="/not-mqtt"))
    assert error.hop == "websocket"
    assert "WebSocket upgrade at /not-mqtt refused by the server" in error.reason


async def test_a_proxy_that_is_down_is_named(broker: WssBroker, proxy: Tinyproxy) -> None:
    settings = wss_settings(broker, proxy)
    proxy.stop()
    error = await refusal(settings)
    assert error.hop == "proxy"
    assert f"proxy: cannot reach the proxy 127.0.0.1:{proxy.port}" in error.reason


async def test_direct_tls_websocket_without_proxy(broker: WssBroker, tmp_path: Path) -> None:
    settings = wss_settings(broker, None)
    async with connect(settings, client_id="direct") as client:
        await client.publish(f"{settings.topic_prefix}/x", b"1", qos=1)
    assert len(broker.events("client")) == 1


async def test_publisher_reports_the_failing_hop(
    broker: WssBroker, proxy: Tinyproxy, tmp_path: Path
) -> None:
    settings = wss_settings(broker, proxy)
    assert settings.proxy is not None
    wrong = settings.proxy.model_copy(update={"password": SecretStr("nope")})
    agent = start_agent(
        settings.model_copy(update={"proxy": wrong}),
        AgentKey.generate(),
        "agent-7",
        tmp_path / "outbox.db",
    )
    agent.submit(3)
    await eventually(lambda: agent.publisher.last_error is not None, within=20, what="an error")
    assert (agent.publisher.last_error or "").startswith("proxy authentication: ")
    assert agent.outbox.depth() == 3
    await agent.finish()


def test_ingest_cli_through_the_proxy(broker: WssBroker, proxy: Tinyproxy, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    register_key(keys, AgentKey.generate())
    (tmp_path / "proxy-password").write_text("proxy-pass\n")
    (tmp_path / "broker-password").write_text("not-the-backend-pass\n")
    base = [
        sys.executable,
        "-m",
        "agent.cli",
        "ingest",
        "--broker",
        "127.0.0.1",
        "--port",
        str(broker.port),
        "--transport",
        "websockets",
        "--websocket-path",
        "/mqtt",
        "--ca-file",
        str(broker.pki.ca.cert),
        "--protocol",
        "3.1.1",
        "--group",
        "",
        "--username",
        "backend",
        "--password-file",
        str(tmp_path / "broker-password"),
        "--proxy",
        f"http://fleet@127.0.0.1:{proxy.port}",
        "--proxy-password-file",
        str(tmp_path / "proxy-password"),
        "--keys-dir",
        str(keys),
        "--store",
        f"sqlite:///{tmp_path}/x.db",
        "--duration",
        "12",
        "--connect-timeout",
        "10",
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        base, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "broker authentication: the broker rejected the username or password" in result.stderr
    (tmp_path / "broker-password").write_text("backend-pass\n")
    result = subprocess.run(
        base, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "connect_failed" not in result.stderr
    assert "received 0" in result.stdout
    assert any(event["id"].startswith("fleet-ingest-") for event in broker.events("client"))
    assert re.search(rf"CONNECT 127\.0\.0\.1:{broker.port} HTTP", proxy.log())


def socks_settings(broker: WssBroker, proxy: SocksProxy, password: str) -> MqttSettings:
    socks5 = ProxySettings(
        type="socks5",
        host=proxy.host,
        port=proxy.port,
        username=SOCKS_USER,
        password=SecretStr(password),
    )
    return wss_settings(broker, None).model_copy(update={"proxy": socks5})


async def test_tls_websocket_through_a_socks5_proxy(
    broker: WssBroker, socks_proxy: SocksProxy
) -> None:
    settings = socks_settings(broker, socks_proxy, SOCKS_PASSWORD)
    async with connect(settings, client_id="via-socks") as client:
        await client.publish(f"{settings.topic_prefix}/x", b"1", qos=1)
        owners = await asyncio.to_thread(broker_side_owners, broker.port)
    assert owners == ["microsocks"]
    assert len(broker.events("client")) == 1


async def test_a_wrong_socks5_password_is_named(broker: WssBroker, socks_proxy: SocksProxy) -> None:
    error = await refusal(socks_settings(broker, socks_proxy, "not-the-socks-pass"))
    assert error.hop == "proxy_auth"
    assert error.reason.startswith(
        f"proxy authentication: the proxy 127.0.0.1:{socks_proxy.port} refused our username "
        "or password"
    )
    assert "not-the-socks-pass" not in str(error)
    assert not broker.events("connection")


def _agent_yaml(path: Path, settings: MqttSettings, proxy: Tinyproxy, secrets: Path) -> Path:
    """An agent configuration uploading over ``settings`` (TLS WebSockets via ``proxy``)."""
    (secrets / "broker-password").write_text("broker-pass\n")
    (secrets / "proxy-password").write_text("proxy-pass\n")
    config = {
        "agent_id": "agent-7",
        "site": "lab",
        "state_dir": str(path.parent / "state"),
        "upload": {
            "mqtt": {
                "host": settings.host,
                "port": settings.port,
                "transport": "websockets",
                "websocket_path": settings.websocket_path,
                "ca_file": str(settings.ca_file),
                "username": "agent-7",
                "password_file": str(secrets / "broker-password"),
                "protocol": "3.1.1",
                "topic_prefix": settings.topic_prefix,
                "connect_timeout": 10,
                "proxy": {
                    "host": proxy.host,
                    "port": proxy.port,
                    "username": "fleet",
                    "password_file": str(secrets / "proxy-password"),
                },
            }
        },
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _agent_cli(*args: str) -> dict[str, object]:
    """``fleet-agent ARGS --format json`` in a process of its own: its JSON record."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    done = subprocess.run(
        [sys.executable, "-m", "agent.cli", *args, "--format", "json", "--timeout", "60"],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.stdout, done.stderr
    record: dict[str, object] = json.loads(done.stdout)
    record["exit"] = done.returncode
    return record


async def test_enroll_and_rotate_over_tls_websockets_through_the_proxy(
    broker: WssBroker, proxy: Tinyproxy, tmp_path: Path
) -> None:
    """``fleet-agent enroll`` and ``keys rotate`` take the agent's own path to the broker
    (wss through the authenticating proxy); the keys they bind sign the agent's reads."""
    settings = wss_settings(broker, proxy, site="lab")
    backend = settings.model_copy(
        update={"username": "backend", "password": SecretStr("backend-pass")}
    )
    backend_key = AgentKey.generate()
    backend_key.save(tmp_path / "backend.key")
    db = tmp_path / "backend.db"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        created = main(
            ["enroll-token", "create", "--site", "lab", "--store", f"sqlite:///{db}",
             "--backend-key", str(tmp_path / "backend.key")]
        )  # fmt: skip
    assert created == 0
    token = out.getvalue().strip()
    config = _agent_yaml(tmp_path / "agent.yaml", settings, proxy, tmp_path)
    consumer = await start_consumer(backend, [], db, group=None, backend_key=backend_key)
    try:
        enrolled = await asyncio.to_thread(_agent_cli, "enroll", "--token", token,
                                           "--config", str(config))  # fmt: skip
        assert (enrolled["exit"], enrolled["outcome"], enrolled["site"]) == (0, "accepted", "lab")
        assert enrolled["backend_key_id"] == backend_key.key_id
        pinned = json.loads(backend_key_path(tmp_path / "state").read_text())
        assert pinned["kid"] == backend_key.key_id
        rotated = await asyncio.to_thread(_agent_cli, "keys", "rotate", "--config", str(config))
        assert (rotated["exit"], rotated["outcome"]) == (0, "accepted")
        assert rotated["old_key_id"] == enrolled["key_id"]
        new_key = AgentKey.load(key_path(tmp_path / "state"))
        assert new_key.key_id == rotated["new_key_id"]
        bindings = {b.key_id: b for b in KeyRing(consumer.store).bindings("agent-7")}
        assert {kid: (b.status, b.site) for kid, b in bindings.items()} == {
            enrolled["key_id"]: ("retired", "lab"),
            new_key.key_id: ("active", "lab"),
        }
        agent = start_agent(settings, new_key, "agent-7", tmp_path / "outbox.db")
        agent.submit(3)
        await consumer.wait_stored(3)
        await agent.finish()
    finally:
        summary = await consumer.finish()
    assert summary.answered == {"enroll accepted": 1, "key_rotation accepted": 1}
    assert (summary.stored, summary.rejected) == (3, {})
    # Every connection (consumer, enroll, rotate, agent) was tunnelled by the proxy.
    tunnels = re.findall(rf"CONNECT 127\.0\.0\.1:{broker.port} HTTP", proxy.log())
    assert len(tunnels) == len(broker.events("connection")) >= 4
