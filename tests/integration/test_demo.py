"""`fleet-agent demo` end to end: simulated printers, Mosquitto, consumer, one agent cycle."""

from __future__ import annotations

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.demo.sim import snmp_probe

pytestmark = pytest.mark.integration

FLEET_AGENT = Path(sys.executable).with_name("fleet-agent")


@pytest.fixture
def demo_tmp() -> Iterator[Path]:
    """TMPDIR for the demo: outside pytest's 0700 tree, so the mosquitto user can enter it."""
    directory = Path(tempfile.mkdtemp(prefix="fa-demo-test-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def demo(tmpdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_AGENT_")}
    env["TMPDIR"] = str(tmpdir)
    return subprocess.run(
        [str(FLEET_AGENT), "demo", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def row(output: str, first_cell: str) -> str:
    """The table line whose first cell is ``first_cell``."""
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if cells and cells[0] == first_cell:
            return line
    raise AssertionError(f"no row {first_cell!r} in:\n{output}")


def test_demo_runs_the_pipeline_and_removes_everything(demo_tmp: Path) -> None:
    result = demo(demo_tmp)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for n, serial in enumerate(
        ["PHBQA12345", "PHBQA12346", "50061234ABCD", "XRX3TB012345", "E78123K9N456"], start=1
    ):
        assert serial in row(out, f"127.0.50.{n}")
    assert "Black Toner Cartridge 7%" in row(out, "127.0.50.2")  # the printer low on toner
    assert "1,480,112" in row(out, "127.0.50.4")
    # the eligibility verdicts of agent/demo/demo-policy.yaml
    for device in ("sn:hp:PHBQA12345", "sn:hp:PHBQA12346", "sn:lexmark:50061234ABCD"):
        assert "│ eligible" in row(out, device)
    xerox = row(out, "sn:xerox:XRX3TB012345")
    assert "not eligible" in xerox
    assert "maximum of 1,000,000" in xerox
    brother = row(out, "sn:brother:E78123K9N456")
    assert "not eligible" in brother
    assert "not a supported model" in brother
    assert re.search(r"│ eligible\s+│ 3\s+│", out)
    assert re.search(r"│ not eligible\s+│ 2\s+│", out)
    assert "The consumer verified and stored 5 signed reads" in out
    assert "0 rejected" in out
    # torn down: the work directory is gone; the broker and the printers are stopped
    assert list(demo_tmp.iterdir()) == []
    broker_port = int(re.search(r"Started Mosquitto on 127\.0\.0\.1:(\d+)", out).group(1))  # type: ignore[union-attr]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", broker_port), timeout=1).close()
    snmp_port = int(re.search(r"on UDP port (\d+)", out).group(1))  # type: ignore[union-attr]
    assert not any(snmp_probe(f"127.0.50.{n}", snmp_port) for n in range(1, 6))


def test_demo_keep_leaves_config_state_and_consumer_database(demo_tmp: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = demo(demo_tmp, "--keep", "--port", str(port))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Started Mosquitto on 127.0.0.1:{port}" in result.stdout
    kept = Path(re.search(r"Kept (\S+) ", result.stdout).group(1))  # type: ignore[union-attr]
    assert kept.parent == demo_tmp
    assert (kept / "agent.yaml").is_file()
    assert (kept / "state" / "agent.key").is_file()
    with sqlite3.connect(kept / "consumer.db") as db:
        kinds = dict(db.execute("SELECT kind, count(*) FROM messages GROUP BY kind").fetchall())
    assert kinds == {"read": 5, "event": 6}  # 5 device_found + 1 supply_low


def test_demo_port_in_use_fails_fast_with_a_clear_message(demo_tmp: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = demo(demo_tmp, "--port", str(port))
    assert result.returncode == 1
    assert f"--port {port}: 127.0.0.1:{port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(demo_tmp.iterdir()) == []


def test_demo_rejects_a_bad_port_and_a_missing_policy(demo_tmp: Path) -> None:
    bad_port = demo(demo_tmp, "--port", "70000")
    assert bad_port.returncode == 2
    assert "--port: 70000 is not a TCP port" in bad_port.stderr
    missing = demo(demo_tmp, "--policy", str(demo_tmp / "nope.yaml"))
    assert missing.returncode == 2
    assert "nope.yaml: file not found" in missing.stderr


def test_demo_with_the_embedded_broker(demo_tmp: Path) -> None:
    """Without Mosquitto the demo falls back to amqtt in-process (MQTT 3.1.1, plain topics)."""
    result = demo(demo_tmp, "--broker", "embedded")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Started the embedded MQTT broker (amqtt) on 127.0.0.1:" in result.stdout
    assert "The consumer verified and stored 5 signed reads (and 6 events; 0 rejected)" in (
        result.stdout
    )
    assert "not eligible" in row(result.stdout, "sn:xerox:XRX3TB012345")
    assert list(demo_tmp.iterdir()) == []
