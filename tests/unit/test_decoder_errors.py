"""Our decoder bugs are loud: logged with their traceback, counted, and still cost only a field."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

import mibs.decode
from agent.collect import Collector
from agent.config import AgentConfig, UploadConfig
from agent.inventory import Inventory
from agent.logging import configure_logging
from agent.metrics import Metrics
from collectors.credentials import Credential, SnmpSettings
from collectors.udp import Pace
from collectors.walk import WalkResult
from mibs import counters, identity, supplies
from mibs.decode import decode_read
from mibs.messages import AgentMessage, ReadMessage
from mibs.models import Identity
from mibs.values import Oid, Value, is_under, parse_oid

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


class _Session:
    """One printer answering from PRINTER (stands in for an SNMP session)."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
        return {oid: PRINTER[oid] for oid in oids if oid in PRINTER}

    async def walk(self, columns: Sequence[Oid]) -> WalkResult:
        result = WalkResult()
        for prefix in columns:
            result.rows[prefix] = [
                (o, v) for o, v in sorted(PRINTER.items()) if is_under(o, prefix)
            ]
        return result


class _Transport:
    requests_sent = 0
    timeouts = 0
    retries = 0

    def session(
        self,
        address: str,
        credential: Credential,
        *,
        settings: SnmpSettings | None = None,
        pace: Pace | None = None,
    ) -> _Session:
        return _Session(address)


class _Sink:
    def __init__(self) -> None:
        self.messages: list[AgentMessage] = []

    async def submit(self, message: AgentMessage) -> None:
        self.messages.append(message)


@pytest.mark.usefixtures("broken_supplies")
async def test_the_daemon_counts_decoder_bugs_per_part_and_still_uploads_the_read(
    tmp_path: Path,
) -> None:
    config = AgentConfig(state_dir=tmp_path, upload=UploadConfig(enabled=False))
    metrics, sink = Metrics(), _Sink()
    with Inventory(tmp_path / "inventory.db") as inventory:
        inventory.record_discovery(
            "127.0.0.1",
            Identity(serial="VNCRC48198", vendor="HP", is_printer=True),
            device_key="serial:VNCRC48198",
            credential_profile="public",
            sweep_started=datetime.now(UTC),
        )
        collector = Collector(
            config,
            transport=_Transport(),  # type: ignore[arg-type]
            inventory=inventory,
            sink=sink,
            metrics=metrics,
        )
        await collector.read_all("meters")
    [read] = [m for m in sink.messages if isinstance(m, ReadMessage)]
    assert [p.field for p in read.problems if p.reason == "decoder_error"] == ["supplies"]
    assert read.counters.total == 4242
    assert metrics.value("fleet_agent_decoder_errors_total", {"part": "supplies"}) == 1
    assert metrics.value("fleet_agent_decoder_errors_total", {"part": "counters"}) == 0
