"""The helper-process parts the demo and the test fixtures share (no sockets).

Child processes here are short Python scripts; nothing listens on the network.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

import pytest

from agent.demo import process as processes
from agent.demo.broker import config_text

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


def _wait_for_log(path: Path, text: str) -> None:
    deadline = time.monotonic() + 10
    while text not in path.read_text():
        assert time.monotonic() < deadline, f"{text!r} never reached {path}"
        time.sleep(0.02)


def test_spawn_writes_the_log_afresh_unless_appending(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    log.write_text("old run\n")
    processes.spawn([sys.executable, "-c", "print('first')"], log).wait(timeout=10)
    assert log.read_text() == "first\n"
    processes.spawn([sys.executable, "-c", "print('second')"], log, append=True).wait(timeout=10)
    assert log.read_text() == "first\nsecond\n"


def test_stop_escalates_to_kill_after_the_grace_period(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    child = processes.spawn([sys.executable, "-c", IGNORES_SIGTERM], log)
    _wait_for_log(log, "ready")
    started = time.monotonic()
    processes.stop(child, grace=0.3)
    assert child.returncode == -9  # SIGKILL: SIGTERM was ignored
    assert time.monotonic() - started < 5
    processes.stop(child, grace=0.3)  # already ended: nothing to do
    processes.stop(None, grace=0.3)


def test_stop_is_a_plain_sigterm_for_a_willing_process(tmp_path: Path) -> None:
    child = processes.spawn([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "l")
    processes.stop(child, grace=10)
    assert child.returncode == -15


def test_wait_until_reports_ready_exit_and_timeout(tmp_path: Path) -> None:
    sleeper = processes.spawn([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "a")
    try:
        calls: list[int] = []

        def third_call() -> bool:
            calls.append(1)
            return len(calls) >= 3

        assert processes.wait_until(sleeper, third_call, 10, interval=0.01)
        assert len(calls) == 3
        started = time.monotonic()
        assert not processes.wait_until(sleeper, lambda: False, 0.2, interval=0.01)
        assert time.monotonic() - started >= 0.2
    finally:
        processes.stop(sleeper, grace=5)
    quitter = processes.spawn([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "b")
    quitter.wait(timeout=10)
    assert not processes.wait_until(quitter, lambda: True, 10, interval=0.01)


class _Started:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")


def test_start_all_keeps_order_and_stops_the_started_on_failure() -> None:
    log: list[str] = []

    def ok(name: str) -> _Started:
        return _Started(name, log)

    def fails(message: str) -> _Started:
        raise RuntimeError(message)

    started = processes.start_all([partial(ok, n) for n in "abc"], failures=(RuntimeError,))
    assert [s.name for s in started] == ["a", "b", "c"]
    assert log == []

    starters = [lambda: ok("a"), lambda: fails("first"), lambda: ok("c"), lambda: fails("second")]
    with pytest.raises(RuntimeError, match="first"):
        processes.start_all(starters, failures=(RuntimeError,))
    assert sorted(log) == ["stop a", "stop c"]


def test_start_all_lets_unexpected_errors_through() -> None:
    def broken() -> _Started:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        processes.start_all([broken], failures=(RuntimeError,))


def test_mosquitto_config_options_for_the_test_broker(tmp_path: Path) -> None:
    text = config_text(
        1883,
        tmp_path,
        persistence=True,
        anonymous=False,
        verbose=True,
        extra=["password_file /x/passwords"],
    )
    lines = text.splitlines()
    assert lines[:2] == ["listener 1883 127.0.0.1", "allow_anonymous false"]
    assert f"persistence_location {tmp_path}/" in lines
    assert "persistence false" not in lines
    assert lines[-3:] == [
        "log_type information",
        "connection_messages true",
        "password_file /x/passwords",
    ]
    plain = config_text(1883, tmp_path).splitlines()
    assert "persistence false" in plain
    assert "connection_messages true" not in plain
