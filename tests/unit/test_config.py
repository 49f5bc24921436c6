from __future__ import annotations

from pathlib import Path

import pytest

from agent.commands.config import example_text
from agent.config import AgentConfig, load_config, parse_duration
from agent.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults_need_only_a_broker(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "upload:\n  mqtt:\n    host: broker.local\n"), environ={})
    assert config.schedule.meters == 4 * 3600
    assert config.schedule.supplies == 15 * 60
    assert config.schedule.discovery == 86400
    assert config.http.listen == "127.0.0.1"
    assert config.upload.mqtt is not None
    assert config.upload.mqtt.tls is True  # TLS on by default
    assert [c.name for c in config.snmp.credentials] == ["public"]


def test_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "site: acme\n"
        "snmp:\n"
        "  port: 70000\n"
        "  credentials:\n"
        "    - name: a\n"
        "      version: v2c\n"
        "schedule:\n"
        "  meters: often\n"
        "upload:\n"
        "  enabled: false\n"
        "colour: blue\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    lines = str(info.value).splitlines()
    assert f"{path}:3: snmp.port: must be at most 65535 (got 70000)" in lines
    assert f"{path}:5: snmp.credentials[0]: v2c profile needs a community" in lines
    assert any(line.startswith(f"{path}:8: schedule.meters: a duration like 15m") for line in lines)
    assert f"{path}:11: colour: is not a known field" in lines


def test_upload_without_broker_is_refused_with_the_way_out(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"config.yaml:1: upload.mqtt: a broker .* upload.enabled: false"
    ):
        load_config(_write(tmp_path, "site: x\n"), environ={})


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.yaml:3: not valid YAML"):
        load_config(_write(tmp_path, "snmp:\n  port: 1\n bad: [\n  x: 2\n"), environ={})


def test_environment_overrides_file_and_is_named_in_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, "upload:\n  enabled: false\nsnmp:\n  timeout: 2\n")
    config = load_config(
        path,
        environ={
            "FLEET_AGENT_SNMP__TIMEOUT": "5",
            "FLEET_AGENT_STATE_DIR": "/data/fa",
            "FLEET_AGENT_DISCOVERY__TARGETS": '["127.0.0.0/30", "127.0.1.5"]',
            "OTHER": "ignored",
        },
    )
    assert config.snmp.timeout == 5.0
    assert config.state_dir == Path("/data/fa")
    assert config.discovery.targets == ["127.0.0.0/30", "127.0.1.5"]
    with pytest.raises(ConfigError, match=r"environment variable FLEET_AGENT_SNMP__RETRIES: "):
        load_config(path, environ={"FLEET_AGENT_SNMP__RETRIES": "-1"})


def test_secrets_from_files_and_never_echoed(tmp_path: Path) -> None:
    (tmp_path / "community").write_text("s3cret-community\n")
    path = _write(
        tmp_path,
        "upload:\n  enabled: false\n"
        "snmp:\n  credentials:\n    - name: v2\n      community_file: community\n"
        "    - name: v3\n      version: v3\n      username: u\n      auth_protocol: SHA\n"
        "      auth_key: short\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "short" not in str(info.value)  # a wrong secret is not echoed back either
    path.write_text(path.read_text().replace("auth_key: short", "auth_key: longenough1"))
    config = load_config(path, environ={})
    community = config.snmp.credentials[0].community
    assert community is not None
    assert community.get_secret_value() == "s3cret-community"
    assert "s3cret" not in config.model_dump_json()


def test_missing_secret_file_is_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "upload:\n  enabled: false\nsnmp:\n  credentials:\n"
        "    - name: v2\n      community_file: /nonexistent/community\n",
    )
    with pytest.raises(ConfigError, match=r"config.yaml:6: .*community_file: cannot read secret"):
        load_config(path, environ={})


def test_site_flows_into_broker_topics(tmp_path: Path) -> None:
    config = load_config(
        _write(tmp_path, "site: acme-hq\nupload:\n  mqtt:\n    host: b\n"), environ={}
    )
    assert config.upload.mqtt is not None
    assert config.upload.mqtt.site == "acme-hq"


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900.0), ("4h", 14400.0), ("1d", 86400.0), ("30", 30.0), (2, 2.0)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_example_covers_every_option_and_validates(tmp_path: Path) -> None:
    for name in ("v3-auth-key", "v3-priv-key"):
        (tmp_path / name).write_text("longenough123\n")
    text = example_text().replace("/etc/fleet-agent/", f"{tmp_path}/")
    config = load_config(_write(tmp_path, text), environ={})
    dumped = config.model_dump()

    def keys(model: type, prefix: str = "") -> set[str]:
        out = set()
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            out.add(prefix + name)
            ann = field.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                out |= keys(ann, prefix + name + ".")
        return out

    for key in keys(AgentConfig):
        top = key.split(".")[0]
        assert top in dumped
        assert key.split(".")[-1] in text, f"example does not mention {key}"


def test_a_key_given_twice_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    path = _write(tmp_path, "upload:\n  enabled: false\nsnmp:\n  port: 161\n  port: 1161\n")
    with pytest.raises(ConfigError, match=r"config.yaml:5: port: appears twice in one mapping"):
        load_config(path, environ={})
