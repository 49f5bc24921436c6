from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.snmpsim import SnmpSimFactory, copy_recordings


def test_snmpsim_serves_a_recording_by_community(
    tmp_path: Path, snmpsim_factory: SnmpSimFactory
) -> None:
    recording = tmp_path / "src" / "tiny.snmprec"
    recording.parent.mkdir()
    recording.write_text("1.3.6.1.2.1.1.1.0|4|Tiny printer\n1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.11.1\n")
    copy_recordings([recording], tmp_path / "data")
    sim = snmpsim_factory(tmp_path / "data", address="127.0.0.1")
    out = subprocess.run(
        ["snmpget", "-v2c", "-c", "tiny", "-Oqv", sim.endpoint, "1.3.6.1.2.1.1.1.0"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    assert out.stdout.strip() == '"Tiny printer"'
