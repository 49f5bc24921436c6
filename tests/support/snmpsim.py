"""snmpsim as a real SNMP peer for integration tests.

``snmpsim_factory(data_dir, address=..., v3_user=...)`` starts one
``snmpsim-command-responder`` process on a free UDP port of a loopback address,
waits until it answers, and stops it at the end of the test. The community
selects the recording (its file name without ``.snmprec``); for SNMPv3 the
context name must equal that file name.

snmpsim 1.2.2 with pysnmp 7 does not select data per endpoint, so a test that
needs distinct devices on distinct addresses starts one process per address.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

_RESPONDER = Path(sys.executable).with_name("snmpsim-command-responder")


@dataclass(frozen=True)
class V3User:
    user: str = "fleetuser"
    auth_key: str = "authpass123"
    auth_proto: str = "SHA256"  # snmpsim names: MD5, SHA, SHA224, SHA256, SHA384, SHA512
    priv_key: str = "privpass123"
    priv_proto: str = "AES"  # snmpsim names: DES, AES, AES192, AES256


@dataclass
class SnmpSim:
    address: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    communities: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"{self.address}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def free_udp_port(address: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def copy_recordings(sources: list[Path], data_dir: Path) -> list[str]:
    """Copy .snmprec files into ``data_dir``; returns their communities."""
    data_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for source in sources:
        shutil.copy(source, data_dir / source.name)
        names.append(source.stem)
    return names


def _answers(address: str, port: int, community: str) -> bool:
    """One SNMPv2c GET of sysObjectID, hand-encoded, so readiness needs no SNMP library."""
    oid = bytes([0x2B, 6, 1, 2, 1, 1, 2, 0])  # 1.3.6.1.2.1.1.2.0
    varbind = b"\x30" + bytes([len(oid) + 4]) + b"\x06" + bytes([len(oid)]) + oid + b"\x05\x00"
    varbinds = b"\x30" + bytes([len(varbind)]) + varbind
    pdu_body = b"\x02\x01\x01" + b"\x02\x01\x00" + b"\x02\x01\x00" + varbinds
    pdu = b"\xa0" + bytes([len(pdu_body)]) + pdu_body
    comm = community.encode()
    body = b"\x02\x01\x01" + b"\x04" + bytes([len(comm)]) + comm + pdu
    packet = b"\x30" + bytes([len(body)]) + body
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        try:
            sock.sendto(packet, (address, port))
            sock.recvfrom(65535)
        except OSError:
            return False
    return True


def start_snmpsim(
    data_dir: Path,
    log_dir: Path,
    *,
    address: str = "127.0.0.1",
    port: int | None = None,
    v3_user: V3User | None = None,
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 20.0,
) -> SnmpSim:
    port = port or free_udp_port(address)
    communities = sorted(p.stem for p in data_dir.glob("*.snmprec"))
    log_path = log_dir / f"snmpsim-{address}-{port}.log"
    args = [str(_RESPONDER), f"--data-dir={data_dir}"]
    if v3_user is not None:
        # No --v3-engine-id: snmpsim would attach the options after it to a second engine
        # that has no endpoint; the default engine's id is already auto-generated.
        args += [
            f"--v3-user={v3_user.user}",
            f"--v3-auth-key={v3_user.auth_key}",
            f"--v3-auth-proto={v3_user.auth_proto}",
            f"--v3-priv-key={v3_user.priv_key}",
            f"--v3-priv-proto={v3_user.priv_proto}",
        ]
    args += [
        f"--agent-udpv4-endpoint={address}:{port}",
        "--logging-method=stdout",
        "--log-level=error",
        f"--cache-dir={log_dir / 'snmpsim-cache'}",
    ]
    args += list(extra_args)
    env = dict(os.environ, SNMPSIM_ALLOW_ROOT="true")
    with log_path.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    sim = SnmpSim(address, port, data_dir, process, log_path, communities)
    deadline = time.monotonic() + ready_timeout
    probe = communities[0] if communities else "public"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"snmpsim exited early ({process.returncode}):\n{sim.log()}")
        if _answers(address, port, probe):
            return sim
        time.sleep(0.1)
    sim.stop()
    raise RuntimeError(
        f"snmpsim on {address}:{port} did not answer in {ready_timeout}s:\n{sim.log()}"
    )


class SnmpSimFactory(Protocol):
    def __call__(
        self,
        data_dir: Path,
        *,
        address: str = "127.0.0.1",
        port: int | None = None,
        v3_user: V3User | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> SnmpSim: ...


@pytest.fixture
def snmpsim_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpSimFactory]:
    """Start snmpsim processes for one test; all are stopped afterwards."""
    if not _RESPONDER.exists():
        pytest.fail(f"snmpsim is not installed beside {sys.executable}: pip install -e '.[test]'")
    started: list[SnmpSim] = []
    log_dir = tmp_path_factory.mktemp("snmpsim")

    def factory(
        data_dir: Path,
        *,
        address: str = "127.0.0.1",
        port: int | None = None,
        v3_user: V3User | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> SnmpSim:
        sim = start_snmpsim(
            data_dir, log_dir, address=address, port=port, v3_user=v3_user, extra_args=extra_args
        )
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        sim.stop()
