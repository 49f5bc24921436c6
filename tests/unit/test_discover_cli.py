"""Option parsing for discover/scan, the config merge, and the inventory CSV."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from agent.cli import build_parser, main
from agent.commands._snmp_options import (
    add_snmp_options,
    credentials_from_args,
    snmp_config_from_args,
)
from agent.commands.discover import build_plan
from agent.commands.inventory import spreadsheet_safe, write_csv
from agent.errors import UsageError
from agent.inventory import Inventory, InventoryDevice
from mibs.models import Identity


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """CLI runs point structlog at pytest's capture streams, which close after the test."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


def _snmp(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_snmp_options(parser)
    return parser.parse_args(list(argv))


def test_default_is_public_v2c() -> None:
    (only,) = credentials_from_args(_snmp())
    assert (only.name, only.version, only.community.get_secret_value()) == (  # type: ignore[union-attr]
        "v2c#1",
        "v2c",
        "public",
    )


def test_v3_first_then_communities_in_order(tmp_path: Path) -> None:
    key = tmp_path / "auth.key"
    key.write_text("authpass123\n")
    profiles = credentials_from_args(
        _snmp(
            "--community", "a", "--community", "b", "--community", "a",
            "--v3-user", "ops", "--v3-auth-key-file", str(key), "--v3-priv-key", "privpass123",
        )
    )  # fmt: skip
    assert [p.name for p in profiles] == ["v3:ops", "v2c#1", "v2c#2"]
    v3 = profiles[0]
    assert (v3.version, v3.priv_key is not None) == ("v3", True)  # authPriv
    assert v3.auth_key is not None
    assert v3.auth_key.get_secret_value() == "authpass123"
    assert (v3.auth_protocol, v3.priv_protocol) == ("SHA256", "AES")


def test_v3_alone_drops_the_default_community() -> None:
    profiles = credentials_from_args(_snmp("--v3-user", "ops"))
    assert [(p.version, p.auth_key, p.priv_key) for p in profiles] == [("v3", None, None)]


def test_v1_communities() -> None:
    (profile,) = credentials_from_args(_snmp("--snmp-version", "1", "--community", "x"))
    assert profile.version == "v1"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--v3-auth-key", "authpass123"], "need --v3-user"),
        (["--v3-user", "u", "--v3-auth-key", "short"], "at least 8 characters"),
        (["--v3-user", "u", "--v3-auth-protocol", "SHA"], "needs --v3-auth-key"),
        (["--v3-user", "u", "--v3-auth-key-file", "/nonexistent/key"], "/nonexistent/key"),
        (["--community", ""], "--community #1 is empty"),
    ],
)
def test_credential_mistakes_name_the_option(argv: list[str], fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment) as caught:
        credentials_from_args(_snmp(*argv))
    assert "authpass123" not in str(caught.value)


def test_secret_never_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        credentials_from_args(_snmp("--v3-user", "u", "--v3-auth-key", "sh0rt"))
    assert "sh0rt" not in str(caught.value)


def test_settings_from_options() -> None:
    settings = snmp_config_from_args(
        _discover_args("--snmp-port", "1161", "--timeout", "0.5", "--no-bulk"), None
    )
    assert (settings.port, settings.timeout, settings.use_bulk, settings.retries) == (
        1161,
        0.5,
        False,
        1,
    )
    with pytest.raises(UsageError, match="--timeout"):
        snmp_config_from_args(_discover_args("--timeout", "0"), None)


def _discover_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["discover", *argv])


def test_targets_are_required_without_a_config() -> None:
    with pytest.raises(UsageError, match="nothing to sweep"):
        build_plan(_discover_args())


def test_bad_target_and_bad_exclusion_are_named() -> None:
    with pytest.raises(UsageError, match=r"TARGET: target '10\.0\.0\.300'"):
        build_plan(_discover_args("10.0.0.300"))
    with pytest.raises(UsageError, match="--exclude"):
        build_plan(_discover_args("10.0.0.0/24", "--exclude", "nonsense.invalid"))
    with pytest.raises(UsageError, match="--allow-huge"):
        build_plan(_discover_args("10.0.0.0/8"))


def test_config_supplies_targets_credentials_and_budget(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
state_dir: {tmp_path / "state"}
upload: {{enabled: false}}
snmp:
  timeout: 0.7
  credentials:
    - {{name: office, version: v2c, community: office-ro}}
discovery:
  allow_public: true  # documentation addresses (TEST-NET-1) are not private space
  targets: ["192.0.2.0/28"]
  exclude: ["192.0.2.5"]
  rate: 50
  max_in_flight: 8
"""
    )
    plan = build_plan(_discover_args("--config", str(config), "--retries", "3"))
    assert len(plan.targets) == 13
    assert "192.0.2.5" not in plan.targets
    assert [c.name for c in plan.snmp.credentials] == ["office"]
    assert (plan.snmp.timeout, plan.snmp.retries) == (0.7, 3)
    assert (plan.options.rate, plan.options.max_in_flight) == (50, 8)
    assert plan.state_dir == tmp_path / "state"
    # The command line wins over the file.
    override = build_plan(
        _discover_args("--config", str(config), "198.51.100.7", "--community", "x", "--rate", "0")
    )
    assert list(override.targets) == ["198.51.100.7"]
    assert [c.name for c in override.snmp.credentials] == ["v2c#1"]
    assert override.options.rate is None


def test_spreadsheet_formula_injection_is_neutralised() -> None:
    assert spreadsheet_safe('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("LaserJet") == "LaserJet"
    assert spreadsheet_safe(12345) == "12345"
    assert spreadsheet_safe(None) == ""


def test_inventory_csv_has_the_onboarding_columns(tmp_path: Path) -> None:
    seen = datetime(2026, 11, 1, tzinfo=UTC)
    device = InventoryDevice(
        device_id="sn:hp:CNB1",
        serial="CNB1",
        vendor="HP",
        model="=cmd|' /C calc'!A0",
        mac="00:11:22:33:44:55",
        sys_object_id=None,
        sys_name="lj-2nd-floor",
        location="=Floor 2, copy room",
        firmware=None,
        address="10.0.0.5",
        addresses=["10.0.0.5"],
        credential_profile="v2c#1",
        first_seen=seen,
        last_seen=seen,
        duplicate_serial=False,
        last_read_at=None,
        lifetime_pages=48213,
        start_page_count=41000,
    )
    out = io.StringIO()
    write_csv(out, [device])
    header, row = list(csv.reader(io.StringIO(out.getvalue())))
    assert header[:8] == [
        "device_id", "serial", "vendor", "model", "address", "mac", "first_seen", "last_seen"
    ]  # fmt: skip
    assert header[8:] == [
        "lifetime_pages", "duplicate_serial", "sys_name", "location", "start_page_count"
    ]  # fmt: skip
    record = dict(zip(header, row, strict=True))
    assert record["lifetime_pages"] == "48213"
    assert record["start_page_count"] == "41000"
    assert record["sys_name"] == "lj-2nd-floor"
    assert record["location"] == "'=Floor 2, copy room"
    assert record["model"].startswith("'=")
    assert record["first_seen"].startswith("2026-11-01")


def test_inventory_command_without_an_inventory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inventory", "--state-dir", str(tmp_path)]) == 1  # nothing yet: not usage
    assert "no inventory at" in capsys.readouterr().err


def test_inventory_command_lists_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Inventory(tmp_path / "inventory.db") as inventory:
        inventory.record_discovery(
            "10.0.0.5",
            Identity(vendor="HP", serial="CNB1", is_printer=True),
            device_key="sn:hp:CNB1",
            credential_profile="v2c#1",
        )
    assert main(["inventory", "--state-dir", str(tmp_path), "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert '"device_id":"sn:hp:CNB1"' in out
    assert '"address":"10.0.0.5"' in out


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_and_log_events_off_it() -> None:
    from agent.commands.discover import _progress
    from agent.logging import configure_logging
    from collectors.discovery import SweepStats

    stats = SweepStats(total=400, done=100, printers=7)
    terminal = _Terminal()
    with _progress(lambda: stats, terminal) as tick:
        tick()
    shown = terminal.getvalue()
    assert "100/400" in shown
    assert "7 printers" in shown

    pipe = io.StringIO()
    configure_logging("info", stream=pipe)
    with _progress(lambda: stats, pipe) as tick:
        tick()
    event = json.loads(pipe.getvalue().splitlines()[-1])
    assert event["event"] == "discovery.progress"
    assert (event["done"], event["total"], event["printers"]) == (100, 400, 7)


def test_the_found_table_prints_device_text_literally() -> None:
    from agent.commands.discover import _found_table
    from agent.output import print_table

    record = {
        "address": "10.0.0.5",
        "device_id": "sn:hp:S1",
        "vendor": "[red]HP",
        "model": "[bold]M404[/bold]",
        "serial": "S1",
        "new": True,
        "moved_from": None,
        "duplicate_serial": False,
    }
    out = io.StringIO()
    print_table(out, _found_table([record]))
    assert "[bold]M404[/bold]" in out.getvalue()
    assert "[red]HP" in out.getvalue()
