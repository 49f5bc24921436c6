"""Issue #11: manual meter reads entered while the daemon runs (and holds the outbox).

The real daemon (``fleet-agent run``, upload off so its outbox keeps what it queues)
runs; ``fleet-agent meter add`` and ``meter import`` run as separate processes and
cannot open the outbox, so they hand their reads to the daemon through its inbox and
wait for it. After the daemon stops, the outbox must hold the signed manual reads; a
file the daemon cannot use is set aside with its reason.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from agent.manual_inbox import inbox_dir
from agent.state import load_or_create_key, outbox_path
from mibs.messages import ReadMessage, parse_body
from tests.support.daemon import FLEET_AGENT, DaemonProcess, DaemonRunner, agent_config
from tests.support.snmpsim_fleet import common_free_port
from uploader.envelope import Signer, Verifier
from uploader.queue import Outbox

pytestmark = pytest.mark.integration


def meter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEET_AGENT), "meter", *args], capture_output=True, text=True, timeout=180
    )


def queued_reads(state_dir: Path) -> list[ReadMessage]:
    key = load_or_create_key(state_dir)
    verifier = Verifier({key.key_id: key.jose_key})
    with Outbox(outbox_path(state_dir), Signer(key, "test-agent")) as outbox:
        pending = outbox.pending(1000)
    messages = [
        parse_body(e.kind, e.body) for e in map(verifier.verify, (m.token for m in pending))
    ]
    return [m for m in messages if isinstance(m, ReadMessage) and m.source == "manual"]


def start_daemon(
    tmp_path: Path, state: Path, daemon_runner: DaemonRunner
) -> tuple[Path, DaemonProcess]:
    """A daemon with no broker and hourly reads (none during the test), started."""
    config = agent_config(
        tmp_path / "agent.yaml",
        state_dir=state,
        snmp_port=common_free_port(["127.0.0.1"]),
        targets=["127.0.0.1"],
        broker_port=None,
        schedule={"meters": "1h", "supplies": "1h"},
    )
    daemon = daemon_runner(config)
    daemon.wait_for("daemon.started")
    return config, daemon


def test_meter_add_and_import_while_the_daemon_holds_the_outbox(
    tmp_path: Path, daemon_runner: DaemonRunner
) -> None:
    state = tmp_path / "state"
    config, daemon = start_daemon(tmp_path, state, daemon_runner)

    added = meter(
        "add", "CNB7000001", "--at", "2026-11-25T17:00Z", "--set", "mono=10234",
        "--set", "color=880", "--by", "Tom Berg", "--reason", "USB printer",
        "--config", str(config), "--wait", "120",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "the running daemon holds the outbox: 1 manual read handed to it" in added.stdout
    assert "queued by the running daemon: manual read of CNB7000001" in added.stdout
    csv_file = tmp_path / "m.csv"
    csv_file.write_text(
        "device,read_at,entered_by,reason,mono\n"
        "CNB7000002,2026-11-25T17:05Z,Tom Berg,no SNMP,5000\n"
        "CNB7000003,2026-11-25T17:06Z,Tom Berg,no SNMP,6000\n"
    )
    imported = meter("import", str(csv_file), "--config", str(config), "--wait", "120")
    assert imported.returncode == 0, imported.stderr
    assert "2 manual reads handed to it" in imported.stdout
    assert imported.stdout.count("queued by the running daemon") == 2
    assert len(daemon.named("manual.queued")) == 2

    # A file the daemon cannot use is set aside with its reason, never deleted.
    broken = inbox_dir(state) / "20261125T170000000000Z-broken.json"
    broken.write_text('{"handed_at": "2026-11-25T17:00:00Z", "entries": [{"device": ""}]}')
    event = daemon.wait_for("manual.rejected")
    assert event["file"].endswith("broken.json.rejected")
    reason = (inbox_dir(state) / "20261125T170000000000Z-broken.json.rejected.txt").read_text()
    assert "entries.0.device" in reason
    assert not broken.exists()

    daemon.signal(signal.SIGTERM)
    assert daemon.wait(60) == 0
    reads = queued_reads(state)
    assert sorted((r.identity.serial, r.counters.mono) for r in reads) == [
        ("CNB7000001", 10234),
        ("CNB7000002", 5000),
        ("CNB7000003", 6000),
    ]
    assert all(r.manual is not None and r.manual.entered_by == "Tom Berg" for r in reads)
    assert [p.name for p in inbox_dir(state).glob("*.json")] == []


def test_reads_a_stopped_daemon_never_took_are_queued_by_the_next_command(
    tmp_path: Path, daemon_runner: DaemonRunner
) -> None:
    state = tmp_path / "state"
    config, daemon = start_daemon(tmp_path, state, daemon_runner)
    daemon.signal(signal.SIGSTOP)  # holds the outbox, takes nothing
    args = ["add", "CNB7000004", "--at", "2026-11-25T17:00Z", "--set", "mono=1"]
    handed = meter(*args, "--by", "Tom", "--reason", "x", "--config", str(config), "--wait", "1")
    assert handed.returncode == 0, handed.stderr
    assert "the daemon has not taken them within 1 s" in handed.stdout
    daemon.kill()  # it never took the file: the read waits in the inbox
    assert len(list(inbox_dir(state).glob("*.json"))) == 1
    later = meter(
        "add", "CNB7000005", "--at", "2026-11-25T17:01Z", "--set", "mono=2", "--by", "Tom",
        "--reason", "x", "--config", str(config),
    )  # fmt: skip
    assert later.returncode == 0, later.stderr
    assert "queued the reads a stopped daemon had not taken" in later.stdout
    serials = sorted(r.identity.serial or "" for r in queued_reads(state))
    assert serials == ["CNB7000004", "CNB7000005"]
    assert list(inbox_dir(state).glob("*.json")) == []
