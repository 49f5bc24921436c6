"""The systemd unit, the .deb and the container file, checked with the real tools."""

from __future__ import annotations

import os
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
    # The manual pages named by Documentation= exist once the .deb is installed: checked with
    # --man=yes in the scratch root by packaging/deb/try-install.sh.
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
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


_DEB_TOOLS = ("dpkg-deb", "dpkg-shlibdeps", "help2man", "strip", "lintian")
_OVERRIDES = REPO / "packaging" / "deb" / "lintian-overrides"


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    missing = [tool for tool in _DEB_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (scripts/test.sh installs them)")
    out_dir = tmp_path_factory.mktemp("dist")
    out = subprocess.run(
        ["bash", str(REPO / "packaging" / "deb" / "build.sh"), str(out_dir)],
        capture_output=True,
        text=True,
        timeout=1800,  # about 2 minutes on an idle 2-core machine; generous for a busy one
    )
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip().splitlines()[-1])


def test_deb_contents_and_relocated_venv(deb: Path, tmp_path: Path) -> None:
    assert deb.name.startswith(f"fleet-agent_{__version__}-")
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    for expected in (
        "./opt/fleet-agent/bin/fleet-agent",
        "./lib/systemd/system/fleet-agent.service",
        "./etc/fleet-agent/config.yaml",
        "./var/lib/fleet-agent/",
        "./usr/bin/fleet-agent -> /opt/fleet-agent/bin/fleet-agent",
        "./usr/share/doc/fleet-agent/copyright",
        "./usr/share/doc/fleet-agent/changelog.Debian.gz",
        "./usr/share/doc/fleet-agent/operations.md",
        "./usr/share/man/man1/fleet-agent.1.gz",
        "./usr/share/man/man1/fleet-agent-run.1.gz",
        "./usr/share/man/man1/fleet-agent-scan.1.gz",
        "./usr/share/man/man1/fleet-agent-config-check.1.gz",
        "./usr/share/lintian/overrides/fleet-agent",
    ):
        assert expected in listing, expected
    for absent in (
        "/bin/pip",
        "/site-packages/pip/",
        "/site-packages/setuptools/",
        "/bin/activate",
        "/bin/Activate.ps1",
        "/bin/pygmentize",
        ".DS_Store",
        "/yaml/_yaml.",
        "__pycache__",
    ):
        assert absent not in listing, absent
    info = subprocess.run(
        ["dpkg-deb", "-I", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    assert "Package: fleet-agent" in info
    depends = re.search(r"^ Depends: (.*)$", info, flags=re.M)
    assert depends, info
    # dpkg-shlibdeps computed the C libraries of the bundled compiled modules.
    assert "libc6 (>=" in depends.group(1)
    assert "libgcc-s1" in depends.group(1)
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
    for elf in venv.rglob("*.so"):
        symbols = subprocess.run(["file", "-b", str(elf)], capture_output=True, text=True)
        assert "not stripped" not in symbols.stdout, elf
    copyright_text = (root / "usr/share/doc/fleet-agent/copyright").read_text()
    assert copyright_text.startswith("Format: https://www.debian.org/doc/packaging-manuals/")
    for bundled in ("pysnmp", "pydantic-core", "cryptography", "joserfc", "pyyaml"):
        assert re.search(rf"^ {re.escape(bundled)} [0-9]", copyright_text, flags=re.M), bundled


def test_lintian_reports_no_error_and_only_explained_overrides(deb: Path) -> None:
    result = subprocess.run(
        ["lintian", "--tag-display-limit", "0", "--allow-root", str(deb)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    tags = [line for line in result.stdout.splitlines() if re.match(r"^[EW]: ", line)]
    assert tags == [], "\n".join(tags)
    # Every override carries its reason on the comment lines just above it.
    lines = _OVERRIDES.read_text().splitlines()
    for number, line in enumerate(lines):
        if line.strip() and not line.startswith("#"):
            assert number > 0, line
            assert lines[number - 1].startswith("#"), line


@pytest.mark.skipif(os.geteuid() != 0, reason="the scratch root needs root (mount namespaces)")
def test_deb_installs_enables_starts_and_purges_in_a_scratch_root(deb: Path) -> None:
    result = subprocess.run(
        ["bash", str(REPO / "packaging" / "deb" / "try-install.sh"), str(deb)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for check in (
        "ok: dpkg -i installs the package",
        "ok: the unit is enabled",
        "ok: the shipped configuration passes its own check, as the service user",
        "ok: systemd-analyze verify accepts the installed unit",
        "ok: the daemon starts as the unit starts it, reports READY=1 and stops on SIGTERM",
        "ok: remove keeps the state the daemon wrote and the configuration",
        "ok: purge removes state, configuration and enablement",
    ):
        assert check in result.stdout, result.stdout


def test_container_file_runs_the_daemon_as_an_unprivileged_user() -> None:
    text = (REPO / "packaging" / "Containerfile").read_text()
    assert "USER fleet-agent" in text
    assert 'CMD ["run", "--config", "/etc/fleet-agent/config.yaml"]' in text
    for copied in re.findall(r"^COPY (?!--from)(\S+)", text, flags=re.M):
        assert (REPO / copied).exists(), copied
