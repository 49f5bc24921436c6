"""Real peers for the locked-down-site transports: a TLS WebSocket broker and an HTTP proxy.

* ``wss_broker``: aedes (an MQTT 3.1.1 broker from npm, ``tests/support/node``,
  installed by ``scripts/test.sh``) behind a Node TLS WebSocket listener at
  ``wss://127.0.0.1:PORT/mqtt``, with a certificate from the test PKI
  (:func:`tests.support.mosquitto.make_test_pki`) and, if asked, user names and
  passwords. Debian's Mosquitto 2.0.11 cannot start a websockets listener here.
  Its log records the peer address of every TCP connection it accepts.
* ``tinyproxy_factory``: Debian's tinyproxy on ``127.0.0.1`` with basic auth; its
  log (``LogLevel Connect``) records every client and every CONNECT tunnel.
* ``socks_proxy``: Debian's microsocks, a SOCKS5 proxy with username/password
  authentication (RFC 1929) on ``127.0.0.1``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from agent.demo import process as processes
from tests.support.mosquitto import TestPki, free_tcp_port, make_test_pki

NODE_DIR = Path(__file__).parent / "node"
TINYPROXY = Path("/usr/bin/tinyproxy")
MICROSOCKS = Path("/usr/bin/microsocks")
SOCKS_USER, SOCKS_PASSWORD = "fleet", "socks-pass"


@dataclass
class WssBroker:
    port: int
    directory: Path
    pki: TestPki
    process: subprocess.Popen[bytes]
    path: str = "/mqtt"
    host = "127.0.0.1"

    @property
    def log_path(self) -> Path:
        return self.directory / "broker.log"

    def events(self, kind: str) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        out = []
        for line in lines:
            if line.startswith("{"):
                event = json.loads(line)
                if event.get("event") == kind:
                    out.append(event)
        return out

    def stop(self) -> None:
        processes.stop(self.process, grace=5)


class WssBrokerFactory(Protocol):
    def __call__(self, *, users: dict[str, str] | None = None) -> WssBroker: ...


@pytest.fixture
def wss_broker_factory() -> Iterator[WssBrokerFactory]:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "aedes").is_dir():
        pytest.fail(
            "the WebSocket broker needs node and aedes: run scripts/test.sh, or "
            f"npm install --prefix {NODE_DIR}"
        )
    started: list[WssBroker] = []
    directories: list[Path] = []

    def factory(*, users: dict[str, str] | None = None) -> WssBroker:
        directory = Path(tempfile.mkdtemp(prefix="fleet-wss-"))
        directories.append(directory)
        pki = make_test_pki(directory / "pki")
        port = free_tcp_port()
        config = directory / "broker.json"
        config.write_text(
            json.dumps(
                {
                    "host": "127.0.0.1",
                    "port": port,
                    "path": "/mqtt",
                    "cert": str(pki.server.cert),
                    "key": str(pki.server.key),
                    "users": users,
                }
            )
        )
        log_path = directory / "broker.log"
        process = processes.spawn([node, str(NODE_DIR / "wss_broker.js"), str(config)], log_path)
        broker = WssBroker(port=port, directory=directory, pki=pki, process=process)
        started.append(broker)
        if not processes.wait_until(
            process, lambda: bool(broker.events("ready")), 60, interval=0.05
        ):
            raise RuntimeError(f"WebSocket broker not ready:\n{log_path.read_text()}")
        return broker

    yield factory
    for broker in started:
        broker.stop()
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Tinyproxy:
    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    username: str | None
    password: str | None
    host = "127.0.0.1"

    @property
    def log_path(self) -> Path:
        return self.directory / "tinyproxy.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        processes.stop(self.process, grace=5)


class TinyproxyFactory(Protocol):
    def __call__(
        self, *, username: str | None = None, password: str | None = None
    ) -> Tinyproxy: ...


@pytest.fixture
def tinyproxy_factory() -> Iterator[TinyproxyFactory]:
    started: list[Tinyproxy] = []

    def factory(*, username: str | None = None, password: str | None = None) -> Tinyproxy:
        # tinyproxy drops root to nobody: its directory lives outside pytest's 0700 tree.
        directory = Path(tempfile.mkdtemp(prefix="fleet-tinyproxy-"))
        directory.chmod(0o777)
        port = free_tcp_port()
        lines = [
            f"Port {port}",
            "Listen 127.0.0.1",
            "Timeout 60",
            f'LogFile "{directory / "tinyproxy.log"}"',
            "LogLevel Connect",
            "MaxClients 50",
            "Allow 127.0.0.1",
            "User nobody",
            "Group nogroup",
        ]
        if username is not None and password is not None:
            lines.append(f"BasicAuth {username} {password}")
        config = directory / "tinyproxy.conf"
        config.write_text("\n".join(lines) + "\n")
        process = processes.spawn(
            [str(TINYPROXY), "-d", "-c", str(config)], directory / "stdout.log"
        )
        proxy = Tinyproxy(port, directory, process, username, password)
        started.append(proxy)
        if not processes.wait_until(
            process, lambda: processes.accepts_tcp("127.0.0.1", port), 10, interval=0.05
        ):
            raise RuntimeError(f"tinyproxy not ready:\n{proxy.log()}")
        return proxy

    yield factory
    for proxy in started:
        proxy.stop()
        shutil.rmtree(proxy.directory, ignore_errors=True)


@dataclass
class SocksProxy:
    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    host = "127.0.0.1"

    def stop(self) -> None:
        processes.stop(self.process, grace=5)


@pytest.fixture
def socks_proxy() -> Iterator[SocksProxy]:
    """microsocks on 127.0.0.1 requiring ``SOCKS_USER`` / ``SOCKS_PASSWORD``."""
    directory = Path(tempfile.mkdtemp(prefix="fleet-socks-"))
    port = free_tcp_port()
    args = [str(MICROSOCKS), "-i", "127.0.0.1", "-p", str(port)]
    args += ["-u", SOCKS_USER, "-P", SOCKS_PASSWORD]
    process = processes.spawn(args, directory / "microsocks.log")
    proxy = SocksProxy(port, directory, process)
    try:
        if not processes.wait_until(
            process, lambda: processes.accepts_tcp("127.0.0.1", port), 10, interval=0.05
        ):
            raise RuntimeError("microsocks not ready")
        yield proxy
    finally:
        proxy.stop()
        shutil.rmtree(directory, ignore_errors=True)
