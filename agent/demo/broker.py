"""A local plain-TCP Mosquitto for the demo, started from a generated configuration.

Listens on 127.0.0.1 only, anonymous, with the queue limits raised (Mosquitto's
default ``max_queued_messages 1000`` silently drops QoS 1 messages for a slow
subscriber). Running as root, Mosquitto drops to user ``mosquitto``: its
directory is handed to that user. The test fixture (``tests/support/mosquitto.py``)
writes its configuration and starts and waits for its broker with these same parts.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from agent.demo import process as processes
from agent.demo.sim import DemoError

HOST = "127.0.0.1"
INSTALL_HINT = (
    "the demo needs a local MQTT broker: install Mosquitto "
    "(Debian/Ubuntu: sudo apt-get install mosquitto; or run scripts/demo.sh as root)"
)


def mosquitto_path() -> Path | None:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


def free_tcp_port(address: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def config_text(
    port: int,
    directory: Path,
    *,
    persistence: bool = False,
    anonymous: bool = True,
    verbose: bool = False,
    extra: Sequence[str] = (),
) -> str:
    """A listener on ``127.0.0.1:port`` with raised queue limits, logging to stdout.

    ``persistence`` keeps sessions and queued messages in ``directory`` across a
    restart; ``verbose`` also logs information and connections; ``extra`` lines
    (password file, TLS) are appended as given.
    """
    lines = [
        f"listener {port} {HOST}",
        f"allow_anonymous {'true' if anonymous else 'false'}",
        "max_queued_messages 1000000",
        "max_inflight_messages 100",
    ]
    if persistence:
        lines += ["persistence true", f"persistence_location {directory}/", "autosave_interval 0"]
    else:
        lines.append("persistence false")
    lines += ["log_dest stdout", "log_type error", "log_type warning", "log_type notice"]
    if verbose:
        lines += ["log_type information", "connection_messages true"]
    lines += extra
    return "\n".join(lines) + "\n"


def hand_to_mosquitto_user(directory: Path) -> None:
    """Mosquitto drops root to user ``mosquitto``: let it read keys and write persistence."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for path in [directory, *directory.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)


def spawn_mosquitto(binary: Path, config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start Mosquitto on ``config``, appending to ``log_path`` (a restart keeps the log)."""
    return processes.spawn([str(binary), "-c", str(config)], log_path, append=True)


def wait_for_broker(process: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    """True once ``127.0.0.1:port`` accepts; False if Mosquitto exited or ``timeout`` passed."""
    return processes.wait_until(
        process, partial(processes.accepts_tcp, HOST, port), timeout, interval=0.05
    )


@dataclass
class LocalBroker:
    """One Mosquitto process on ``127.0.0.1:port``."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    host: str = HOST

    @property
    def log_path(self) -> Path:
        return self.directory / "mosquitto.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        processes.stop(self.process, grace=10)


def start_broker(directory: Path, *, port: int = 0, ready_timeout: float = 10.0) -> LocalBroker:
    """Start Mosquitto on ``127.0.0.1:port`` (0: a free port) and wait until it accepts."""
    binary = mosquitto_path()
    if binary is None:
        raise DemoError(INSTALL_HINT)
    port = port or free_tcp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise DemoError(
                f"--port {port}: {HOST}:{port} is already in use ({exc.strerror}); "
                "pick another port or leave --port out"
            ) from exc
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    config = directory / "mosquitto.conf"
    config.write_text(config_text(port, directory), encoding="utf-8")
    hand_to_mosquitto_user(directory)
    broker = LocalBroker(port=port, directory=directory)
    broker.process = spawn_mosquitto(binary, config, broker.log_path)
    if wait_for_broker(broker.process, port, ready_timeout):
        return broker
    if broker.process.poll() is not None:
        raise DemoError(f"mosquitto exited ({broker.process.returncode}):\n{broker.log()[-2000:]}")
    broker.stop()
    raise DemoError(
        f"mosquitto on {HOST}:{port} did not accept connections within {ready_timeout} s"
    )
