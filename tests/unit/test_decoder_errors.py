"""Our decoder bugs are loud: logged with their traceback, counted, and still cost only a field."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import structlog

import mibs.decode
from agent.logging import configure_logging
from mibs import counters, identity, supplies
from mibs.decode import decode_read
from mibs.values import Oid, Value, parse_oid

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PRINTER: dict[Oid, Value] = {
    identity.SYS_OBJECT_ID: parse_oid("1.3.6.1.4.1.11.2.3.9.1"),
    identity.HR_DEVICE_TYPE + (1,): identity.HR_DEVICE_PRINTER,
    identity.PRT_GENERAL_SERIAL + (1,): b"VNCRC48198",
    counters.PRT_MARKER_LIFE_COUNT + (1, 1): 4242,
    supplies.SUPPLY_TYPE + (1, 1): 3,
    supplies.LEVEL + (1, 1): 40,
}


@pytest.fixture
def broken_supplies(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(mibs.decode, "decode_supplies", broken)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.usefixtures("broken_supplies")
def test_a_decoder_bug_is_logged_with_its_traceback_and_marks_only_its_part(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="mibs.decode"):
        read = decode_read("127.0.0.1", AT, PRINTER)
    [record] = [r for r in caplog.records if r.name == "mibs.decode"]
    assert record.getMessage() == "decode.decoder_error"
    assert record.levelno == logging.ERROR
    assert record.part == "supplies"  # type: ignore[attr-defined]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    # ... and the read still carries that part's problem, the rest survives.
    assert [(p.field, p.reason) for p in read.problems] == [("supplies", "decoder_error")]
    assert read.counters.total == 4242
    assert read.identity.serial == "VNCRC48198"


def test_a_sound_read_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="mibs.decode"):
        read = decode_read("127.0.0.1", AT, PRINTER)
    assert not [r for r in caplog.records if r.name == "mibs.decode"]
    assert not [p for p in read.problems if p.reason == "decoder_error"]


@pytest.mark.usefixtures("broken_supplies", "restore_logging")
def test_the_agent_renders_it_as_a_structlog_event_with_the_traceback() -> None:
    out = io.StringIO()
    configure_logging("info", stream=out)
    structlog.contextvars.bind_contextvars(address="127.0.0.9")
    try:
        decode_read("127.0.0.9", AT, PRINTER)
    finally:
        structlog.contextvars.unbind_contextvars("address")
    [line] = [json.loads(text) for text in out.getvalue().splitlines()]
    assert line["event"] == "decode.decoder_error"
    assert line["level"] == "error"
    assert line["part"] == "supplies"
    assert line["address"] == "127.0.0.9"  # the per-device context reaches it too
    assert "Traceback" in line["exception"]
    assert "RuntimeError: decoder bug" in line["exception"]
