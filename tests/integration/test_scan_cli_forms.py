"""``scan`` with the habits admins bring from net-snmp and nmap, against real snmpsim peers.

127.0.14.1 and 127.0.15.1 each serve, on one port, the project's own recordings
(community = recording name, as snmpsim selects data). Every form is tried both
accepted (the printer is read) and refused (exit 2, the message names the form).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.snmpsim import SnmpSim, V3User, start_snmpsim
from tests.support.snmpsim_fleet import FLEET_AGENT, ScanRun, common_free_port, run_scan

pytestmark = pytest.mark.integration

MFP = "colour_mfp_hr2"  # serial LX7C2A0B1234, tests/data/recordings
PANTUM = "generic_agent_placeholder"
FAST = ("-t", "1", "-r", "1")
WALKS = Path(__file__).resolve().parents[1] / "data" / "walks"


@pytest.fixture(scope="module")
def sims(own_recordings: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[SnmpSim]]:
    data = tmp_path_factory.mktemp("forms-data")
    for name in (MFP, PANTUM):
        shutil.copy(own_recordings / f"{name}.snmprec", data / f"{name}.snmprec")
    addresses = ["127.0.14.1", "127.0.15.1"]
    port = common_free_port(addresses)
    logs = tmp_path_factory.mktemp("forms-logs")
    started = [start_snmpsim(data, logs, address=a, port=port, v3_user=V3User()) for a in addresses]
    yield started
    for sim in started:
        sim.stop()


def _serials(run: ScanRun) -> dict[str, str | None]:
    return {read["address"]: read["identity"]["serial"] for read in run.reads()}


def test_host_port_comma_lists_and_net_snmp_options(sims: list[SnmpSim]) -> None:
    first, second = sims
    run = run_scan(
        "-v", "2c", "-c", MFP, *FAST, f"{first.endpoint},{second.endpoint}", "--format", "json"
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert _serials(run) == {first.endpoint: "LX7C2A0B1234", second.endpoint: "LX7C2A0B1234"}
    v1 = run_scan("-v1", "-c", PANTUM, *FAST, f"udp:{first.endpoint}", "--format", "json")
    assert v1.returncode == 0, v1.stderr
    assert [read["counters"]["total"] for read in v1.reads()] == [5321]


def test_nmap_octet_range_in_address_order(sims: list[SnmpSim]) -> None:
    port = sims[0].port
    run = run_scan("127.0.14-15.1-2", "-c", MFP, "--snmp-port", str(port), *FAST)
    assert run.returncode == 0, run.stderr
    assert [read["address"] for read in run.reads()] == ["127.0.14.1", "127.0.15.1"]
    assert "4 addresses scanned, 2 printers, 0 not a printer, 2 silent" in run.stderr


def test_target_files_and_exclusions(sims: list[SnmpSim], tmp_path: Path) -> None:
    first, second = sims
    listed = tmp_path / "printers.txt"
    listed.write_text(f"# site A\n{first.endpoint}\n{second.endpoint}  # room 2\n")
    skipped = tmp_path / "skip.txt"
    skipped.write_text(f"{second.address}\n")
    run = run_scan("-iL", str(listed), "--exclude-file", str(skipped), "-c", MFP, *FAST)
    assert run.returncode == 0, run.stderr
    assert list(_serials(run)) == [first.endpoint]
    listed.write_text(f"{first.endpoint}\n\n127.0.14.300\n")
    bad = run_scan("-iL", str(listed), "-c", MFP, *FAST)
    assert bad.returncode == 2
    assert f"{listed}:3: target '127.0.14.300': not a valid IPv4 address" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_snmpv3_with_net_snmp_short_options(sims: list[SnmpSim], tmp_path: Path) -> None:
    user, sim = V3User(), sims[0]
    key = tmp_path / "auth.key"
    key.write_text(user.auth_key + "\n")
    base = ["-v3", "-u", user.user, "-n", MFP, *FAST, sim.endpoint, "--format", "json"]
    run = run_scan(
        *base, "-l", "authPriv", "-a", "SHA-256", "--v3-auth-key-file", str(key),
        "-x", "AES", "-X", user.priv_key,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert list(_serials(run).values()) == ["LX7C2A0B1234"]
    refused = run_scan(*base, "-l", "authPriv", "-a", "SHA-256", "--v3-auth-key-file", str(key))
    assert refused.returncode == 2
    assert "-l authPriv needs a privacy key" in refused.stderr
    assert user.auth_key not in refused.stderr


def test_verbose_shows_every_exchange(sims: list[SnmpSim]) -> None:
    sim = sims[0]
    run = run_scan("-v", sim.endpoint, "-c", MFP, *FAST, "--format", "json")
    assert run.returncode == 0, run.stderr
    exchanges = [line for line in run.stderr.splitlines() if line.startswith("snmp: ")]
    assert exchanges[0].startswith(f"snmp: {sim.endpoint} v2c GET [1.3.6.1.2.1.1.1.0, ")
    assert re.search(r"-> \d+ varbinds, [\d.]+ ms$", exchanges[0])
    assert any(" GETBULK max-repetitions " in line for line in exchanges)
    assert MFP not in run.stderr  # the community is never shown
    silent = run_scan("-v", f"{sim.address}:9", "-c", MFP, "-t", "0.2", "-r", "0")
    assert silent.returncode == 1
    assert f"snmp: {sim.address}:9 v2c GET [" in silent.stderr
    assert "-> no answer (" in silent.stderr


def test_rate_caps_packets_per_second(sims: list[SnmpSim]) -> None:
    """A lower bound only: n packets at r per second (burst 1) cannot take less than (n-1)/r."""
    sim = sims[0]
    started = time.monotonic()
    run = run_scan("--rate", "5", "-v", sim.endpoint, "-c", MFP, *FAST, "--format", "json")
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    packets = sum(1 for line in run.stderr.splitlines() if line.startswith("snmp: "))
    assert packets >= 5
    assert elapsed >= (packets - 1) / 5
    for refused in ("-1", "fast"):
        bad = run_scan("--rate", refused, sim.endpoint)
        assert bad.returncode == 2
        assert "--rate" in bad.stderr


def test_table_rows_come_while_the_scan_still_runs(sims: list[SnmpSim]) -> None:
    """The printer's row is out long before the silent address after it gives up."""
    sim = sims[0]
    process = subprocess.Popen(
        [str(FLEET_AGENT), "scan", sim.endpoint, f"{sim.address}:9", "--format", "table"]
        + ["-c", MFP, "-t", "8", "-r", "1", "--rate", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        header = process.stdout.readline()
        row = process.stdout.readline()
        still_running = process.poll() is None
    finally:
        process.kill()
        process.wait(timeout=30)
    assert header.split()[:2] == ["Address", "Vendor"]
    assert row.split()[0] == sim.endpoint
    assert "LX7C2A0B1234" in row
    assert still_running


def test_progress_on_a_terminal_only(sims: list[SnmpSim]) -> None:
    sim = sims[0]
    argv = [str(FLEET_AGENT), "scan", sim.endpoint, "-c", MFP, *FAST, "--format", "json"]
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=terminal, env={**os.environ, "COLUMNS": "120"}
    )
    os.close(terminal)
    seen = b""
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(controller, 4096)
            except OSError:
                break  # the terminal closed: the scan is over
            if not chunk:
                break
            seen += chunk
    finally:
        process.wait(timeout=60)
        os.close(controller)
    text = seen.decode(errors="replace")
    assert "scan" in text
    assert "1/1" in text  # the bar's "done/total"
    assert "1 printers" in text or "1 printer" in text
    piped = run_scan(sim.endpoint, "-c", MFP, *FAST, "--format", "json")
    assert piped.stderr.strip().splitlines() == [
        "fleet-agent scan: 1 address scanned, 1 printer, 0 not a printer, 0 silent"
    ]


def _without_time(read: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in read.items() if key != "collected_at"}


def _net_snmp_walk(sim: SnmpSim, community: str, path: Path) -> Path:
    done = subprocess.run(
        ["snmpwalk", "-v2c", "-On", "-c", community, sim.endpoint, ".1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    path.write_text(done.stdout)
    return path


@pytest.mark.skipif(shutil.which("snmpwalk") is None, reason="Debian's snmp package is absent")
def test_file_decodes_a_net_snmp_walk_to_the_live_read(sims: list[SnmpSim], tmp_path: Path) -> None:
    sim = sims[0]
    walk = _net_snmp_walk(sim, MFP, tmp_path / "mfp.walk")
    live = run_scan(sim.endpoint, "-c", MFP, *FAST, "--format", "json")
    offline = run_scan("--file", str(walk), sim.endpoint, "--format", "json")
    committed = run_scan("--file", str(WALKS / "colour_mfp_hr2.walk"), sim.endpoint)
    assert live.returncode == offline.returncode == committed.returncode == 0, offline.stderr
    (live_read,) = live.reads()
    assert _without_time(offline.reads()[0]) == _without_time(live_read)
    assert _without_time(committed.reads()[0]) == _without_time(live_read)


def test_file_refuses_what_is_not_a_walk(tmp_path: Path) -> None:
    broken = tmp_path / "customer.walk"
    broken.write_text('.1.3.6.1.2.1.1.1.0 = STRING: "HP"\nSNMPv2-MIB::sysName.0 = STRING: x\n')
    run = run_scan("--file", str(broken))
    assert run.returncode == 1
    assert f"{broken}:2: OID 'SNMPv2-MIB::sysName.0' is a MIB name: walk with -On" in run.stderr
    assert "Traceback" not in run.stderr
    missing = run_scan("--file", str(tmp_path / "nope.walk"))
    assert missing.returncode == 2
    assert "--file" in missing.stderr
    not_printer = tmp_path / "router.walk"
    not_printer.write_text('.1.3.6.1.2.1.1.1.0 = STRING: "Linux router"\n')
    run = run_scan("--file", str(not_printer), "--format", "table")
    assert run.returncode == 1
    assert "not a printer's walk" in run.stderr


def test_an_unknown_option_prints_the_sub_command_usage() -> None:
    run = run_scan("127.0.14.1", "--bogus")
    assert run.returncode == 2
    assert run.stderr.startswith("usage: fleet-agent scan ")
    assert "fleet-agent scan: error: unrecognized arguments: --bogus" in run.stderr


def test_json_lines_are_in_address_order(sims: list[SnmpSim]) -> None:
    first, second = sims
    run = run_scan(second.endpoint, first.endpoint, "-c", MFP, *FAST)
    assert [json.loads(line)["address"] for line in run.stdout.splitlines()] == [
        first.endpoint,
        second.endpoint,
    ]


@pytest.mark.skipif(shutil.which("snmpwalk") is None, reason="Debian's snmp package is absent")
@pytest.mark.parametrize("name", ["librenms__brother_hl5370dw", "librenms__konica_c250i"])
def test_file_decodes_a_net_snmp_walk_of_a_shared_recording_to_the_live_read(
    name: str, shared_recordings: Path, tmp_path: Path
) -> None:
    """A real printer's recording, served live and walked by net-snmp as a customer would."""
    data, logs = tmp_path / "data", tmp_path / "logs"
    data.mkdir()
    logs.mkdir()
    shutil.copy(shared_recordings / f"{name}.snmprec", data / f"{name}.snmprec")
    sim = start_snmpsim(data, logs, address="127.0.16.1")
    try:
        walk = _net_snmp_walk(sim, name, tmp_path / f"{name}.walk")
        # A big recording under a loaded CI: a generous timeout, as a busy printer needs.
        live = run_scan(sim.endpoint, "-c", name, "-t", "5", "-r", "1", "--format", "json")
    finally:
        sim.stop()
    offline = run_scan("--file", str(walk), sim.endpoint, "--format", "json")
    assert live.returncode == offline.returncode == 0, live.stderr + offline.stderr
    (live_read,) = live.reads()
    assert live_read["identity"]["serial"]
    assert _without_time(offline.reads()[0]) == _without_time(live_read)
