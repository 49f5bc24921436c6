"""A local plain-TCP Mosquitto for the demo, started from a generated configuration.

Listens on 127.0.0.1 only, anonymous, with the queue limits raised (Mosquitto's
default ``max_queued_messages 1000`` silently drops QoS 1 messages for a slow
subscriber). Running as root, Mosquitto drops to user ``mosquitto``: its
directory is handed to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

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


def config_text(port: int, directory: Path) -> str:
    return (
        "\n".join(
            [
                f"listener {port} {HOST}",
                "allow_anonymous true",
                "max_queued_messages 1000000",
                "max_inflight_messages 100",
                "persistence false",
                "log_dest stdout",
                "log_type error",
                "log_type warning",
                "log_type notice",
            ]
        )
        + "\n"
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
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _hand_to_mosquitto_user(directory: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for path in [directory, *directory.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)


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
    _hand_to_mosquitto_user(directory)
    broker = LocalBroker(port=port, directory=directory)
    with broker.log_path.open("ab") as log:
        broker.process = subprocess.Popen(  # noqa: S603 - fixed binary, generated config
            [str(binary), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if broker.process.poll() is not None:
            raise DemoError(
                f"mosquitto exited ({broker.process.returncode}):\n{broker.log()[-2000:]}"
            )
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return broker
        except OSError:
            time.sleep(0.05)
    broker.stop()
    raise DemoError(
        f"mosquitto on {HOST}:{port} did not accept connections within {ready_timeout} s"
    )
