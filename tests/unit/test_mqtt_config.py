"""MqttSettings validation, topic layout, backoff, broker CONNECT probe packet (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from backend.ingest import subscription_topics
from uploader.broker_probe import MqttConfigError, _connect_packet, tls_context
from uploader.config import MqttSettings
from uploader.mqtt import backoff_delay


def test_tls_is_on_by_default_with_port_8883() -> None:
    settings = MqttSettings(host="broker.example")
    assert settings.tls is True
    assert settings.effective_port == 8883
    assert settings.endpoint == "mqtts://broker.example:8883"
    assert MqttSettings(host="h", tls=False).effective_port == 1883
    assert MqttSettings(host="h", port=1999).effective_port == 1999


def test_topics_follow_prefix_site_agent_kind() -> None:
    settings = MqttSettings(host="h", topic_prefix="acme/fleet", site="paris-1")
    assert settings.agent_topic("agent-7", "read") == "acme/fleet/paris-1/agent-7/reads"
    assert settings.agent_topic("agent-7", "event") == "acme/fleet/paris-1/agent-7/events"
    assert settings.status_topic("agent-7") == "acme/fleet/paris-1/agent-7/status"
    with pytest.raises(ValueError, match="agent_id"):
        settings.agent_topic("a/b", "read")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("site", "a/b", "site"),
        ("site", "a+", "site"),
        ("site", "", "site"),
        ("topic_prefix", "fleet/#", "topic_prefix"),
        ("topic_prefix", "/fleet", "topic_prefix"),
        ("topic_prefix", "$SYS", "topic_prefix"),
        ("protocol", "4", "protocol"),
        ("max_inflight", 0, "max_inflight"),
        ("port", 70000, "port"),
        ("unknown", 1, "unknown"),
    ],
)
def test_bad_values_are_refused_naming_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MqttSettings.model_validate({"host": "h", field: value})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"cert_file": "c.pem"}, "cert_file and key_file go together"),
        ({"key_file": "k.pem"}, "cert_file and key_file go together"),
        ({"tls": False, "ca_file": "ca.pem"}, "need tls: true"),
        ({"password": "x"}, "password needs a username"),
        ({"backoff_min": 5, "backoff_max": 1}, "backoff_min must not exceed"),
    ],
)
def test_bad_combinations_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MqttSettings.model_validate({"host": "h", **values})


def test_password_is_secret_in_repr_and_dump() -> None:
    settings = MqttSettings(host="h", username="u", password=SecretStr("hunter2"))
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in settings.model_dump_json()


def test_settings_are_frozen() -> None:
    settings = MqttSettings(host="h")
    with pytest.raises(ValidationError):
        settings.host = "other"  # type: ignore[misc]


def test_backoff_grows_is_capped_and_jittered() -> None:
    low = [backoff_delay(n, minimum=0.5, maximum=30, rng=lambda: 0.0) for n in range(10)]
    high = [backoff_delay(n, minimum=0.5, maximum=30, rng=lambda: 1.0) for n in range(10)]
    assert low[:4] == [0.25, 0.5, 1.0, 2.0]
    assert high[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(high) == 30.0
    assert max(low) == 15.0
    assert backoff_delay(10_000, minimum=0.5, maximum=30, rng=lambda: 1.0) == 30.0


def test_shared_subscription_topics() -> None:
    assert subscription_topics("fleet", "backend") == [
        "$share/backend/fleet/+/+/reads",
        "$share/backend/fleet/+/+/events",
        "$share/backend/fleet/+/+/status",
        "$share/backend/fleet/+/+/enroll",
        "$share/backend/fleet/+/+/keys",
        "$share/backend/fleet/+/+/presence",
    ]
    assert subscription_topics("a/b", None)[0] == "a/b/+/+/reads"


def test_connect_probe_packet_is_mqtt_311_with_credentials() -> None:
    settings = MqttSettings(host="h", username="user", password=SecretStr("pw"))
    packet = _connect_packet(settings)
    assert packet[0] == 0x10
    assert packet[1] == len(packet) - 2  # one-byte remaining length
    assert packet[4:8] == b"MQTT"
    assert packet[8] == 4  # protocol level 3.1.1
    assert packet[9] == 0x80 | 0x40 | 0x02  # username, password, clean session
    assert packet.endswith(b"\x00\x04user\x00\x02pw")


def test_missing_tls_files_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(MqttConfigError, match=r"mqtt ca_file .*nope\.pem: no such file"):
        tls_context(MqttSettings(host="h", ca_file=missing))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(MqttConfigError, match=r"cert_file/key_file .*garbage\.pem: not a usable"):
        tls_context(MqttSettings(host="h", cert_file=garbage, key_file=garbage))
