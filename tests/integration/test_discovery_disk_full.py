"""``fleet-agent discover`` on a full disk: one clear error, nothing recorded lost.

A real 1 MiB tmpfs holds the state directory and real snmpsim printers answer on
127.0.76.x. A first sweep records one printer; then the volume is filled to the
last byte and the whole range is swept again: the command exits 1 with one line
naming the inventory file and the printer it could not record, no traceback,
and the inventory still lists the printer recorded before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.demo.fleet import DEMO_FLEET
from agent.inventory import Inventory
from agent.state import inventory_path
from tests.support.daemon import start_printers
from tests.support.snmpsim import SnmpSimFactory
from tests.support.tmpfs import TmpfsFactory, fill

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def discover(state: Path, port: int, *targets: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "agent.cli", "discover", *targets, "--format", "json"]
    command += ["--state-dir", str(state), "--snmp-port", str(port), "--timeout", "1"]
    command += ["--retries", "1", "--community", "public"]
    return subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_discover_on_a_full_disk_names_the_file_and_keeps_what_it_recorded(
    tmpfs: TmpfsFactory, snmpsim_factory: SnmpSimFactory, tmp_path: Path
) -> None:
    printers = start_printers(snmpsim_factory, tmp_path, "127.0.76", DEMO_FLEET[:3])
    state = tmpfs("1m") / "state"
    first = discover(state, printers.port, printers.addresses[0])
    assert first.returncode == 0, first.stderr
    recorded = [json.loads(line) for line in first.stdout.splitlines()]
    assert [r["address"] for r in recorded] == [printers.addresses[0]]

    fill(state.parent)
    full = discover(state, printers.port, printers.target_range)
    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr
    errors = [line for line in full.stderr.splitlines() if line.startswith("fleet-agent ")]
    assert len(errors) == 1, full.stderr
    assert str(inventory_path(state)) in errors[0]
    assert "the disk is full" in errors[0]
    assert any(address in errors[0] for address in printers.addresses)

    with Inventory(inventory_path(state)) as inventory:
        kept = inventory.devices()
    assert [device.address for device in kept] == [printers.addresses[0]]
    assert kept[0].device_id == recorded[0]["device_id"]
