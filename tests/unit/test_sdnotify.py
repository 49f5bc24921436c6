from __future__ import annotations

import os
import socket
from pathlib import Path

from agent.sdnotify import SystemdNotifier


def test_outside_systemd_everything_is_a_no_op() -> None:
    notifier = SystemdNotifier(environ={})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog_interval is None


def test_sends_ready_and_watchdog_datagrams(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(2)
        notifier = SystemdNotifier(
            environ={
                "NOTIFY_SOCKET": path,
                "WATCHDOG_USEC": "20000000",
                "WATCHDOG_PID": str(os.getpid()),
            }
        )
        assert notifier.watchdog_interval == 10.0
        assert notifier.ready("polling 3 devices")
        assert server.recv(1024) == b"READY=1\nSTATUS=polling 3 devices"
        assert notifier.watchdog()
        assert server.recv(1024) == b"WATCHDOG=1"


def test_watchdog_for_another_pid_is_ignored() -> None:
    notifier = SystemdNotifier(
        environ={"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}
    )
    assert notifier.watchdog_interval is None


def test_abstract_socket_name(tmp_path: Path) -> None:
    name = f"fleet-agent-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        server.settimeout(2)
        assert SystemdNotifier(environ={"NOTIFY_SOCKET": "@" + name}).stopping()
        assert server.recv(1024) == b"STOPPING=1"
