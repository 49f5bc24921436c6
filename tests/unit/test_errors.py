"""The one error tree: whose fault each error is, groups unwrapped in one place, one sentence."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from agent.cli import main
from agent.daemon import Daemon
from agent.errors import ConfigError, UsageError
from agent.inventory import InventoryError
from agent.output import OutputError
from backend.store import StoreError
from collectors.errors import SnmpAuthError, SnmpError, SnmpProtocolError, SnmpTimeout
from collectors.targets import TargetError
from fleet_errors import (
    FleetAgentError,
    LocalError,
    RemoteError,
    describe,
    exit_code,
    known_error,
    leaves,
    translate,
)
from mibs.snmprec import SnmprecError
from uploader.broker_probe import BrokerUnavailable, MqttConfigError
from uploader.errors import EnvelopeRejected, KeyFileError, QueueError, QueueFull


@pytest.mark.parametrize(
    ("error", "side"),
    [
        (UsageError("--timeout: not a number"), LocalError),
        (ConfigError("agent.yaml:3: snmp.timeout: too big", path="agent.yaml", line=3), LocalError),
        (OutputError("standard output is closed"), LocalError),
        (InventoryError("inventory.db: not an inventory"), LocalError),
        (TargetError("not a valid CIDR block", spec="10.0.0.0/33"), LocalError),
        (SnmprecError("bad hex value", line=7), LocalError),
        (KeyFileError("missing", path=Path("agent.key")), LocalError),
        (MqttConfigError("ca.pem: missing", field="ca_file", path=Path("ca.pem")), LocalError),
        (QueueError("locked", path=Path("outbox.db")), LocalError),
        (StoreError("consumer.db: cannot open"), LocalError),
        (SnmpTimeout("no answer", address="192.0.2.7"), RemoteError),
        (SnmpAuthError("wrong community", address="192.0.2.7"), RemoteError),
        (SnmpProtocolError("tooBig", address="192.0.2.7", oid="1.3.6.1"), RemoteError),
        (BrokerUnavailable(host="127.0.0.1", port=1883, reason="refused"), RemoteError),
        (EnvelopeRejected("bad_signature", "kid k1"), RemoteError),
    ],
    ids=lambda value: type(value).__name__,
)
def test_every_error_is_ours_and_says_whose_fault_it_is(
    error: FleetAgentError, side: type[FleetAgentError]
) -> None:
    assert isinstance(error, side)
    other = RemoteError if side is LocalError else LocalError
    assert not isinstance(error, other)
    assert not isinstance(error, ValueError)  # no second tree of ValueError subclasses


def test_errors_carry_their_context_as_attributes() -> None:
    snmp = SnmpProtocolError("tooBig", address="192.0.2.7", oid="1.3.6.1.2.1.43")
    assert (snmp.address, snmp.oid) == ("192.0.2.7", "1.3.6.1.2.1.43")
    config = ConfigError("agent.yaml:3: snmp.timeout: too big", path="agent.yaml", line=3)
    assert (config.path, config.line, config.exit_code) == ("agent.yaml", 3, 2)
    assert SnmprecError("bad hex value", line=7).line == 7
    full = QueueFull("full", path=Path("outbox.db"), depth=10, max_messages=10)
    assert (full.path, full.depth) == (Path("outbox.db"), 10)
    rejected = EnvelopeRejected("bad_signature", "kid k1")
    assert rejected.reason == "bad_signature"
    broker = BrokerUnavailable(host="127.0.0.1", port=1883, reason="connection refused")
    assert (broker.address, broker.reason) == ("127.0.0.1:1883", "connection refused")
    assert isinstance(SnmpTimeout("x", address="a"), SnmpError)


async def _task_group_failure(*errors: BaseException) -> BaseException:
    async def fail(error: BaseException) -> None:
        raise error

    try:
        async with asyncio.TaskGroup() as group:
            for error in errors:
                group.create_task(fail(error))
    except BaseExceptionGroup as failure:
        return failure
    raise AssertionError("the task group did not fail")


async def test_a_task_group_failure_reads_as_one_sentence_naming_the_device() -> None:
    timeout = SnmpTimeout("192.0.2.7: no answer within 2 s", address="192.0.2.7")
    failure = await _task_group_failure(timeout)
    assert isinstance(failure, ExceptionGroup)
    assert leaves(failure) == [timeout]
    assert known_error(failure) is timeout
    assert describe(failure) == "192.0.2.7: no answer within 2 s"
    assert "TaskGroup" not in describe(failure, types=True)
    assert describe(failure, types=True) == "SnmpTimeout: 192.0.2.7: no answer within 2 s"
    assert exit_code(failure) == 1


async def test_nested_groups_are_unwrapped_and_a_bug_among_them_is_not_ours() -> None:
    usage = UsageError("--format: not one of table, json")
    inner = ExceptionGroup("inner", [usage, SnmpTimeout("192.0.2.8: silent", address="x")])
    failure = ExceptionGroup("outer", [inner, KeyError("oops")])
    assert [type(leaf) for leaf in leaves(failure)] == [UsageError, SnmpTimeout, KeyError]
    assert known_error(failure) is None  # a bug is in there: it must propagate
    assert (
        describe(failure) == "--format: not one of table, json; 192.0.2.8: silent; KeyError: 'oops'"
    )
    assert exit_code(failure) == 2
    many = ExceptionGroup(
        "many", [SnmpTimeout(f"192.0.2.{n}: silent", address="x") for n in range(5)]
    )
    assert describe(many).endswith("; and 2 more")


def test_translate_turns_a_third_party_error_into_ours_chained_with_from() -> None:
    to_ours = {OSError: lambda exc: KeyFileError(exc.strerror or "?", path=Path("k"))}
    with pytest.raises(KeyFileError) as caught, translate(to_ours):
        raise PermissionError(errno.EACCES, "Permission denied")
    assert str(caught.value) == "k: Permission denied"
    assert isinstance(caught.value.__cause__, PermissionError)
    with pytest.raises(KeyError), translate({OSError: lambda exc: LocalError(str(exc))}):
        raise KeyError("a bug passes through untouched")


def test_the_cli_reports_one_line_for_a_group_of_our_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import agent.commands.config as config_command

    def handler(_args: object) -> int:
        raise ExceptionGroup(
            "unhandled errors in a TaskGroup",
            [ConfigError(f"{tmp_path}/agent.yaml:3: snmp.timeout: too big")],
        )

    monkeypatch.setattr(config_command, "_example", handler)  # registered when main runs
    assert main(["config", "example"]) == 2
    err = capsys.readouterr().err
    assert err == f"fleet-agent config: {tmp_path}/agent.yaml:3: snmp.timeout: too big\n"


async def test_a_daemon_job_failure_reads_as_one_sentence_in_status(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(f"state_dir: {tmp_path}\nupload:\n  enabled: false\n", encoding="utf-8")
    daemon = Daemon(config)

    async def job() -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(_raise(SnmpTimeout("192.0.2.7: no answer within 2 s", address="x")))

    await daemon._job("meters", job)
    error = daemon.health()["jobs"]["meters"]["last_error"]
    assert error == "SnmpTimeout: 192.0.2.7: no answer within 2 s"


async def _raise(error: BaseException) -> None:
    raise error


def test_a_database_error_at_the_store_edge_becomes_ours_chained(tmp_path: Path) -> None:
    from backend.store import open_store

    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(StoreError) as caught:
        open_store(f"sqlite:///{tmp_path}/file/consumer.db")
    assert str(caught.value).startswith(f"store sqlite:///{tmp_path}/file/consumer.db: cannot open")
    assert isinstance(caught.value.__cause__, OSError)
    assert isinstance(caught.value, LocalError)
