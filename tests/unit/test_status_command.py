"""``fleet-agent status`` says how many reads wait in memory only while the disk is full."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.commands import run as run_command


def _health(memory_only: int, dropped: int = 0) -> dict[str, Any]:
    problems = [f"disk full: {memory_only} messages held in memory"] if memory_only else []
    return {
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "version": "0",
        "agent_id": "a",
        "site": "s",
        "devices_known": 2,
        "queue": {
            "depth": 5,
            "oldest_age_s": 12.0,
            "memory_only": memory_only,
            "memory_limit": 20_000,
            "memory_dropped": dropped,
        },
        "broker": {},
        "reads": {"ok": 1},
        "snmp": {},
        "jobs": {},
    }


@pytest.fixture(autouse=True)
def _no_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLEET_AGENT_CONFIG", str(tmp_path / "absent.yaml"))


def test_status_counts_reads_held_in_memory_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run_command, "fetch_health", lambda host, port: _health(7, dropped=2))
    assert main(["status", "--port", "9464"]) == 1
    out = capsys.readouterr().out
    assert "upload queue: 5 waiting, oldest 12s; 7 in memory only" in out
    assert "7 messages held in memory only (at most 20000" in out
    assert "lost if the daemon stops before space returns" in out
    assert "2 dropped past that bound" in out


def test_status_says_none_in_memory_when_the_disk_has_room(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run_command, "fetch_health", lambda host, port: _health(0))
    assert main(["status", "--port", "9464"]) == 0
    out = capsys.readouterr().out
    assert "; 0 in memory only" in out
    assert "held in memory only" not in out
