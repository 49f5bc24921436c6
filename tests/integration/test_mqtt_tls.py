"""TLS and mTLS against Mosquitto: a test CA, a server certificate, client certificates.

A client with a certificate from another CA, one without a certificate, one
talking plain TCP to the TLS port and one that does not trust the server are all
refused, and each error says what really happened (aiomqtt alone would only
report "Operation timed out").
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.support.mosquitto import Mosquitto, MosquittoFactory
from tests.support.mqtt_consumer import eventually, start_agent, start_consumer, unique_prefix
from uploader.broker_probe import MqttConfigError
from uploader.config import MqttSettings
from uploader.keys import AgentKey
from uploader.mqtt import BrokerUnavailable, connect

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tls_broker(mosquitto_factory: MosquittoFactory) -> Mosquitto:
    return mosquitto_factory(tls=True)


def mtls_settings(broker: Mosquitto, **overrides: object) -> MqttSettings:
    assert broker.pki is not None
    values: dict[str, object] = {
        "host": broker.host,
        "port": broker.port,
        "ca_file": broker.pki.ca.cert,
        "cert_file": broker.pki.client.cert,
        "key_file": broker.pki.client.key,
        "topic_prefix": unique_prefix("tls"),
        "connect_timeout": 2,
        "backoff_min": 0.05,
        "backoff_max": 0.3,
    }
    values.update(overrides)
    return MqttSettings.model_validate(values)


async def test_reads_flow_over_mutual_tls(tls_broker: Mosquitto, tmp_path: Path) -> None:
    settings = mtls_settings(tls_broker)
    assert settings.tls
    key = AgentKey.generate()
    consumer = await start_consumer(settings, [key], tmp_path / "ingest.db")
    agent = start_agent(settings, key, "agent-tls", tmp_path / "outbox.db")
    agent.submit(50)
    await consumer.wait_stored(50)
    await agent.finish()
    summary = await consumer.finish()
    assert (summary.stored, summary.rejected) == (50, {})
    consumer.store.close()


async def refusal(settings: MqttSettings) -> str:
    with pytest.raises(BrokerUnavailable) as caught:
        async with connect(settings, client_id="refused"):
            pass
    return str(caught.value)


async def test_client_certificate_from_another_ca_is_refused(tls_broker: Mosquitto) -> None:
    assert tls_broker.pki is not None
    settings = mtls_settings(
        tls_broker,
        cert_file=tls_broker.pki.other_client.cert,
        key_file=tls_broker.pki.other_client.key,
    )
    message = await refusal(settings)
    assert f"MQTT broker 127.0.0.1:{tls_broker.port}" in message
    assert "client certificate rejected by the broker" in message


async def test_missing_client_certificate_is_named(tls_broker: Mosquitto) -> None:
    message = await refusal(mtls_settings(tls_broker, cert_file=None, key_file=None))
    assert "the broker requires a client certificate (mTLS)" in message


async def test_plain_tcp_to_the_tls_port_is_refused(tls_broker: Mosquitto) -> None:
    settings = mtls_settings(tls_broker, tls=False, ca_file=None, cert_file=None, key_file=None)
    message = await refusal(settings)
    assert "requires TLS on this port" in message


async def test_a_server_certificate_from_an_unknown_ca_is_not_trusted(
    tls_broker: Mosquitto,
) -> None:
    assert tls_broker.pki is not None
    message = await refusal(mtls_settings(tls_broker, ca_file=tls_broker.pki.other_ca.cert))
    assert "server certificate not trusted" in message


async def test_tls_client_against_a_plain_broker_is_told_so(mosquitto: Mosquitto) -> None:
    settings = MqttSettings(host=mosquitto.host, port=mosquitto.port, connect_timeout=2)
    message = await refusal(settings)
    assert "does not speak TLS on this port" in message


async def test_publisher_keeps_reads_and_reports_the_refusal(
    tls_broker: Mosquitto, tmp_path: Path
) -> None:
    assert tls_broker.pki is not None
    settings = mtls_settings(
        tls_broker,
        cert_file=tls_broker.pki.other_client.cert,
        key_file=tls_broker.pki.other_client.key,
    )
    agent = start_agent(settings, AgentKey.generate(), "agent-intruder", tmp_path / "outbox.db")
    agent.submit(5)
    await eventually(lambda: agent.publisher.last_error is not None, within=20, what="an error")
    assert "client certificate rejected" in (agent.publisher.last_error or "")
    assert not agent.publisher.connected
    assert agent.outbox.depth() == 5
    await agent.finish()


def test_ingest_cli_names_an_untrusted_server(tls_broker: Mosquitto, tmp_path: Path) -> None:
    assert tls_broker.pki is not None
    keys = tmp_path / "keys"
    keys.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent.cli",
            "ingest",
            "--broker",
            "127.0.0.1",
            "--port",
            str(tls_broker.port),
            "--ca-file",
            str(tls_broker.pki.other_ca.cert),
            "--cert-file",
            str(tls_broker.pki.client.cert),
            "--key-file",
            str(tls_broker.pki.client.key),
            "--keys-dir",
            str(keys),
            "--store",
            f"sqlite:///{tmp_path}/x.db",
            "--duration",
            "1.5",
            "--connect-timeout",
            "1",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "server certificate not trusted" in result.stderr
    assert "received 0" in result.stdout


async def test_tls_files_that_do_not_exist_are_named(tmp_path: Path) -> None:
    settings = MqttSettings(host="127.0.0.1", port=1, ca_file=tmp_path / "missing-ca.pem")
    with pytest.raises(MqttConfigError, match=r"mqtt ca_file .*missing-ca\.pem: no such file"):
        async with connect(settings, client_id="x"):
            pass
    await asyncio.sleep(0)


async def test_username_and_password(mosquitto_factory: MosquittoFactory, tmp_path: Path) -> None:
    broker = mosquitto_factory(users={"agent-7": "correct horse"})
    base = MqttSettings(
        host=broker.host,
        port=broker.port,
        tls=False,
        username="agent-7",
        password=SecretStr("not-the-Pa55word"),
        connect_timeout=2,
    )
    message = await refusal(base)
    assert "not authorised to connect (wrong username or password?)" in message
    assert "not-the-Pa55word" not in message
    anonymous = base.model_copy(update={"username": None, "password": None})
    assert "not authorised" in await refusal(anonymous)
    good = base.model_copy(update={"password": SecretStr("correct horse")})
    async with connect(good, client_id="agent-7") as client:
        await client.publish("t/ok", b"1", qos=1)
