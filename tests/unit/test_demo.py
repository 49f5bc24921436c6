"""The demo's parts without sockets: its config, its policy's verdicts, its read round trip."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.config import AgentConfig
from agent.demo import broker as broker_module
from agent.demo import embedded as embedded_module
from agent.demo.broker import config_text
from agent.demo.embedded import start_embedded_broker
from agent.demo.fleet import DEMO_FLEET, to_snmprec
from agent.demo.run import DEFAULT_POLICY, BrokerInfo, agent_config
from agent.demo.sim import DemoError
from agent.eligibility.fleet import evaluate_fleet
from agent.eligibility.policy import load_policy
from mibs.decode import decode_read
from mibs.messages import ReadMessage, parse_body
from mibs.models import PrinterRead
from mibs.snmprec import load_varbinds

AT = datetime(2026, 11, 22, tzinfo=UTC)


def demo_reads() -> list[PrinterRead]:
    return [
        decode_read(f"127.0.50.{n}", AT, load_varbinds(to_snmprec(spec)))
        for n, spec in enumerate(DEMO_FLEET, start=1)
    ]


def test_demo_policy_gives_the_documented_verdicts() -> None:
    report = evaluate_fleet(demo_reads(), load_policy(DEFAULT_POLICY))
    verdicts = {
        row.serial: (row.verdict.eligible, set(row.verdict.codes)) for row in report.devices
    }
    assert verdicts["PHBQA12345"] == (True, set())
    assert verdicts["PHBQA12346"] == (True, set())  # 7 % toner is above the 5 % floor
    assert verdicts["50061234ABCD"] == (True, set())
    assert verdicts["XRX3TB012345"][0] is False
    assert "lifetime_count_over_max" in verdicts["XRX3TB012345"][1]
    assert verdicts["E78123K9N456"][0] is False
    assert "model_not_supported" in verdicts["E78123K9N456"][1]
    assert report.summary.eligible == 3
    assert report.summary.onboarding_method == "self_entitlement"


@pytest.mark.parametrize(("protocol", "group"), [("5", "demo"), ("3.1.1", None)])
def test_generated_agent_config_is_valid_and_points_at_the_demo_parts(
    tmp_path: Path, protocol: str, group: str | None
) -> None:
    broker = BrokerInfo("x", "127.0.0.1", 18830, protocol, group)  # type: ignore[arg-type]
    data = agent_config(
        state_dir=tmp_path / "state",
        addresses=[f"127.0.50.{n}" for n in range(1, 6)],
        snmp_port=16100,
        broker=broker,
        policy=DEFAULT_POLICY,
    )
    config = AgentConfig.model_validate(data)
    assert config.discovery.targets == ["127.0.50.1-127.0.50.5"]
    assert config.snmp.port == 16100
    assert config.schedule.jitter == 0
    assert config.upload.mqtt is not None
    assert config.upload.mqtt.endpoint == "mqtt://127.0.0.1:18830"
    assert config.upload.mqtt.protocol == protocol
    assert config.eligibility.policy == DEFAULT_POLICY
    assert config.http.enabled is False


def test_read_body_round_trips_to_the_read() -> None:
    read = demo_reads()[1]
    message = ReadMessage.of(read, device_id="sn:hp:PHBQA12346", purpose="meters", verdict=None)
    parsed = parse_body("read", message.to_body())
    assert parsed == message
    assert isinstance(parsed, ReadMessage)
    assert parsed.model_dump(include=set(PrinterRead.model_fields)) == read.model_dump()


def test_mosquitto_config_is_loopback_only_with_raised_queue_limit(tmp_path: Path) -> None:
    text = config_text(18830, tmp_path)
    assert "listener 18830 127.0.0.1\n" in text
    assert "allow_anonymous true\n" in text
    assert "max_queued_messages 1000000\n" in text


async def test_no_broker_at_all_says_how_to_install_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_module, "mosquitto_path", lambda: None)
    monkeypatch.setattr(embedded_module, "embedded_available", lambda: False)
    with pytest.raises(DemoError, match="apt-get install mosquitto"):
        await start_embedded_broker()
    with pytest.raises(DemoError, match="apt-get install mosquitto"):
        broker_module.start_broker(Path("/nonexistent"))
