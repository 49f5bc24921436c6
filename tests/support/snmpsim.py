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

import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from agent.demo import process as processes
from agent.demo.sim import snmpsim_args, spawn_snmpsim, wait_for_snmp

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
        processes.stop(self.process, grace=5)


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


def start_snmpsim(
    data_dir: Path,
    log_dir: Path,
    *,
    address: str = "127.0.0.1",
    port: int | None = None,
    v3_user: V3User | None = None,
    extra_args: tuple[str, ...] = (),
    ready_timeout: float = 60.0,  # snmpsim takes over 20 s to answer on a loaded machine
) -> SnmpSim:
    port = port or free_udp_port(address)
    communities = sorted(p.stem for p in data_dir.glob("*.snmprec"))
    log_path = log_dir / f"snmpsim-{address}-{port}.log"
    v3_options: list[str] = []
    if v3_user is not None:
        # No --v3-engine-id: snmpsim would attach the options after it to a second engine
        # that has no endpoint; the default engine's id is already auto-generated.
        v3_options = [
            f"--v3-user={v3_user.user}",
            f"--v3-auth-key={v3_user.auth_key}",
            f"--v3-auth-proto={v3_user.auth_proto}",
            f"--v3-priv-key={v3_user.priv_key}",
            f"--v3-priv-proto={v3_user.priv_proto}",
        ]
    args = snmpsim_args(
        _RESPONDER,
        data_dir,
        address,
        port,
        log_dir / f"snmpsim-cache-{address}-{port}",  # one each: snmpsim races on mkdir
        engine_options=v3_options,
    )
    process = spawn_snmpsim([*args, *extra_args], log_path)
    sim = SnmpSim(address, port, data_dir, process, log_path, communities)
    probe = communities[0] if communities else "public"
    if wait_for_snmp(process, address, port, probe, ready_timeout):
        return sim
    if process.poll() is not None:
        raise RuntimeError(f"snmpsim exited early ({process.returncode}):\n{sim.log()}")
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
