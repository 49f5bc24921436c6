"""The systemd unit, the .deb and the container file, checked with the real tools."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent import __version__

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "packaging" / "systemd" / "fleet-agent.service"


def _unit_with_real_binary(tmp_path: Path) -> Path:
    """systemd-analyze checks that ExecStart exists: point it at this checkout's console script."""
    binary = Path(sys.executable).with_name("fleet-agent")
    text = UNIT.read_text().replace("/opt/fleet-agent/bin/fleet-agent", str(binary))
    path = tmp_path / "fleet-agent.service"
    path.write_text(text)
    return path


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    unit = _unit_with_real_binary(tmp_path)
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert verify.returncode == 0, verify.stderr
    assert "fleet-agent.service" not in verify.stderr, verify.stderr  # no warnings about our unit
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for fleet-agent.service: ([0-9.]+)", security.stdout)
    assert match, security.stdout + security.stderr
    assert float(match.group(1)) <= 2.5, security.stdout
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "User=fleet-agent",
        "ProtectSystem=strict",
        "StateDirectory=fleet-agent",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "WatchdogSec=",
    ):
        assert line in text


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb missing")
def test_deb_builds_installs_into_a_scratch_root_and_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        ["bash", str(REPO / "packaging" / "deb" / "build.sh"), str(tmp_path / "dist")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    deb = Path(out.stdout.strip().splitlines()[-1])
    assert deb.name.startswith(f"fleet-agent_{__version__}_")
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    for expected in (
        "./opt/fleet-agent/bin/fleet-agent",
        "./lib/systemd/system/fleet-agent.service",
        "./etc/fleet-agent/config.yaml",
        "./var/lib/fleet-agent/",
        "./usr/bin/fleet-agent -> /opt/fleet-agent/bin/fleet-agent",
    ):
        assert expected in listing, expected
    info = subprocess.run(
        ["dpkg-deb", "-I", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    assert "Package: fleet-agent" in info
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    venv = root / "opt" / "fleet-agent"
    script = venv / "bin" / "fleet-agent"
    assert script.read_text().startswith("#!/opt/fleet-agent/bin/python")
    assert str(tmp_path) not in script.read_text()
    version = subprocess.run(
        [str(venv / "bin" / "python"), str(script), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"fleet-agent {__version__}"


def test_container_file_runs_the_daemon_as_an_unprivileged_user() -> None:
    text = (REPO / "packaging" / "Containerfile").read_text()
    assert "USER fleet-agent" in text
    assert 'CMD ["run", "--config", "/etc/fleet-agent/config.yaml"]' in text
    for copied in re.findall(r"^COPY (?!--from)(\S+)", text, flags=re.M):
        assert (REPO / copied).exists(), copied
