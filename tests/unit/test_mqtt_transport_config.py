"""WebSocket transport and proxy settings, how they reach aiomqtt, the DNS hop (no sockets)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import socks  # type: ignore[import-untyped]
from pydantic import SecretStr, ValidationError

from agent.config import load_config
from uploader.broker_probe import diagnose_path
from uploader.config import MqttSettings, ProxySettings
from uploader.mqtt import build_client


def test_websocket_defaults_and_endpoint() -> None:
    settings = MqttSettings(host="mqtt.provider.example", transport="websockets")
    assert settings.effective_port == 443
    assert settings.endpoint == "wss://mqtt.provider.example:443/mqtt"
    plain = MqttSettings(host="h", transport="websockets", tls=False, websocket_path="/ws")
    assert (plain.effective_port, plain.endpoint) == (80, "ws://h:80/ws")
    proxied = settings.model_copy(
        update={"proxy": ProxySettings(host="proxy.customer.example", port=3128)}
    )
    assert proxied.endpoint.endswith(" via http://proxy.customer.example:3128")


@pytest.mark.parametrize("path", ["mqtt", "/a b", "/x#y", ""])
def test_a_websocket_path_must_be_an_absolute_path(path: str) -> None:
    with pytest.raises(ValidationError, match="websocket_path"):
        MqttSettings(host="h", websocket_path=path)


def test_proxy_from_url() -> None:
    proxy = ProxySettings.from_url(
        "http://fleet%40acme@proxy.example:8080", password=SecretStr("p")
    )
    assert (proxy.type, proxy.host, proxy.port, proxy.username) == (
        "http",
        "proxy.example",
        8080,
        "fleet@acme",
    )
    assert ProxySettings.from_url("socks5://127.0.0.1").port == 1080
    assert ProxySettings.from_url("http://127.0.0.1").port == 3128


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://proxy", "must start with http:// or socks5://"),
        ("http://user:secret@proxy", "not in the URL"),
        ("http://proxy:99999", "port"),
        ("http://proxy/path", "scheme://"),
        ("http://", "no host"),
    ],
)
def test_bad_proxy_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        ProxySettings.from_url(url)
    assert "secret" not in str(caught.value)


def test_proxy_password_needs_a_username() -> None:
    with pytest.raises(ValidationError, match="proxy password needs a username"):
        ProxySettings(host="p", port=1, password=SecretStr("x"))


async def test_aiomqtt_client_gets_transport_path_and_proxy() -> None:
    settings = MqttSettings(
        host="broker.example",
        transport="websockets",
        websocket_path="/mqtt",
        proxy=ProxySettings(
            type="socks5", host="127.0.0.1", port=1080, username="u", password=SecretStr("pw")
        ),
    )
    client = build_client(settings, client_id="c")
    paho = client._client
    assert paho._transport == "websockets"
    assert paho._websocket_path == "/mqtt"
    assert paho._proxy == {
        "proxy_type": socks.SOCKS5,
        "proxy_addr": "127.0.0.1",
        "proxy_rdns": True,
        "proxy_username": "u",
        "proxy_password": "pw",
        "proxy_port": 1080,
    }
    direct = build_client(MqttSettings(host="broker.example"), client_id="c")._client
    assert direct._transport == "tcp"
    assert direct._proxy == {}


def _unknown(host: str, *_args: object) -> object:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def test_dns_failure_names_the_host_resolved_locally() -> None:
    hop, reason = diagnose_path(MqttSettings(host="mqtt.nowhere.example"), resolve=_unknown)
    assert hop == "dns"
    assert reason == (
        "DNS: cannot resolve the broker host 'mqtt.nowhere.example' (Name or service not known)"
    )
    via = MqttSettings(
        host="mqtt.nowhere.example", proxy=ProxySettings(host="proxy.nowhere.example", port=3128)
    )
    hop, reason = diagnose_path(via, resolve=_unknown)
    assert hop == "dns"
    assert "cannot resolve the proxy host 'proxy.nowhere.example'" in reason


def test_agent_config_takes_the_proxy_with_a_password_file(tmp_path: Path) -> None:
    (tmp_path / "proxy-password").write_text("s3cret\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        "agent_id: a1\nsite: s1\nupload:\n  mqtt:\n    host: mqtt.provider.example\n"
        "    transport: websockets\n    proxy:\n      host: 10.0.0.1\n      port: 3128\n"
        f"      username: fleet\n      password_file: {tmp_path / 'proxy-password'}\n"
    )
    config = load_config(path, environ={})
    mqtt = config.upload.mqtt
    assert mqtt is not None
    assert mqtt.proxy is not None
    assert mqtt.proxy.password is not None
    assert mqtt.proxy.password.get_secret_value() == "s3cret"
    assert mqtt.endpoint == "wss://mqtt.provider.example:443/mqtt via http://10.0.0.1:3128"
