"""The demo's helper processes (snmpsim, Mosquitto): start, wait until ready, stop.

Shared with the test fixtures that start the same programs
(``tests/support/snmpsim.py``, ``tests/support/mosquitto.py``), so a launch
detail is fixed in one place. Each caller raises its own error when a process
exits early or is not ready in time; these helpers only report which it was.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar


class Stoppable(Protocol):
    def stop(self) -> None: ...


StartedT = TypeVar("StartedT", bound=Stoppable)


def spawn(
    args: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    append: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``args`` with standard output and error written to ``log_path``.

    The log is started afresh unless ``append`` (a restarted broker keeps its history).
    """
    with log_path.open("ab" if append else "wb") as log:
        return subprocess.Popen(  # noqa: S603 - fixed binaries, generated arguments
            list(args), stdout=log, stderr=subprocess.STDOUT, env=env
        )


def wait_until(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    timeout: float,
    *,
    interval: float,
) -> bool:
    """Poll ``ready()`` until it is true (True), or the process exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if ready():
            return True
        time.sleep(interval)
    return False


def accepts_tcp(host: str, port: int) -> bool:
    """True when ``host:port`` accepts a TCP connection within 0.2 s."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def stop(process: subprocess.Popen[bytes] | None, *, grace: float) -> None:
    """SIGTERM, up to ``grace`` seconds to exit, then SIGKILL; nothing if it already ended."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def start_all(
    starters: Sequence[Callable[[], StartedT]], *, failures: tuple[type[Exception], ...]
) -> list[StartedT]:
    """Run the starters on up to 8 threads; results in the starters' order.

    If any starter raises one of ``failures``, every process that did start is
    stopped and the first failure (in starter order) is raised.
    """
    started: list[StartedT] = []
    errors: list[Exception] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(starter) for starter in starters]
        for future in futures:
            try:
                started.append(future.result())
            except failures as exc:
                errors.append(exc)
    if errors:
        for item in started:
            item.stop()
        raise errors[0]
    return started
