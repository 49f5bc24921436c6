"""One device reader behind scan, discover and the daemon, proved end to end on loopback.

* Every vendor plan (identity, meters, supplies) is requested from a real snmpsim
  peer: a plan item nobody asks for fails here (the Ricoh private toner table once did).
* The three callers try every credential profile in order against a device that
  answers only the last one (the fake agent records the communities it was asked with).
* The same device read through ``scan`` and through the daemon is the same read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agent.collect import Collector
from agent.config import AgentConfig, SnmpConfig, UploadConfig
from agent.inventory import Inventory
from agent.metrics import Metrics
from collectors.credentials import Credential, SnmpSettings
from collectors.fake_agent import FakeAgent, load_snmprec, start_fake_agent
from collectors.reader import read_device
from collectors.transport import SnmpTransport
from mibs.messages import AgentMessage
from mibs.models import Identity
from mibs.plan import full_read_plan, vendor_plan
from mibs.reasons import REASONS
from mibs.snmprec import parse_snmprec
from mibs.supplies import RICOH_TONER_LEVEL, RICOH_TONER_NAME
from mibs.values import format_oid, parse_oid
from mibs.vendor_counters import VENDOR_SCALARS, VENDOR_TABLES
from mibs.vendors_ids import VENDOR_SERIALS
from tests.support.snmpsim import SnmpSimFactory
from tests.support.snmpsim_fleet import FLEET_AGENT, ScanRun

pytestmark = pytest.mark.integration

PROFILES = ("first", "second", "third")
FAST = ("--timeout", "1.5", "--retries", "0")  # slow enough for snmpsim on a busy machine
SUPPLY_LEVEL = "1.3.6.1.2.1.43.11.1.1.9.1"


async def fleet_agent(*args: str, limit: float = 90) -> ScanRun:
    process = await asyncio.create_subprocess_exec(
        str(FLEET_AGENT),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return ScanRun(process.returncode, out.decode(), err.decode())


def write_config(path: Path, state_dir: Path, port: int) -> Path:
    """A daemon config with three v2c profiles, tried in the order written."""
    profiles = "\n".join(
        f"    - name: {name}\n      version: v2c\n      community: {name}" for name in PROFILES
    )
    path.write_text(
        f"state_dir: {state_dir}\n"
        "upload:\n  enabled: false\n"
        f"snmp:\n  port: {port}\n  timeout: 1.0\n  retries: 1\n  read_deadline: 30\n"
        f"  credentials:\n{profiles}\n"
    )
    return path


def asked_in_order(agent: FakeAgent) -> list[str]:
    """The communities the agent was asked with, each run of repeats collapsed."""
    order: list[str] = []
    for community in agent.communities_seen:
        name = community.decode()
        if not order or order[-1] != name:
            order.append(name)
    return order


# -- the Ricoh private toner table, through scan ------------------------------------


async def test_scan_reports_the_ricoh_private_level_with_its_quirk(
    shared_recordings: Path, tmp_path: Path, snmpsim_factory: SnmpSimFactory
) -> None:
    """Standard levels -3 (some remaining); the private table holds the percent."""
    source = (shared_recordings / "librenms__ricoh_mpc3002.snmprec").read_text()
    lines = [
        f"{line.split('|')[0]}|2|-3" if line.startswith(SUPPLY_LEVEL + ".") else line
        for line in source.splitlines()
    ]
    descriptions = {
        format_oid(record.oid).rsplit(".", 1)[1]: record.value
        for record in parse_snmprec(source)
        if format_oid(record.oid).startswith("1.3.6.1.2.1.43.11.1.1.6.1.")
    }
    private = {"1": 35, "3": -100}  # black toner at 35 %, cyan near empty (-100)
    for row, level in private.items():
        name = descriptions[row]
        assert isinstance(name, bytes)
        lines.append(f"{format_oid(RICOH_TONER_NAME)}.{row}|4|{name.decode()}")
        lines.append(f"{format_oid(RICOH_TONER_LEVEL)}.{row}|2|{level}")
    data = tmp_path / "data"
    data.mkdir()
    (data / "ricoh.snmprec").write_text("\n".join(sorted(lines, key=_oid_key)) + "\n")
    sim = snmpsim_factory(data, address="127.0.6.10")
    run = await fleet_agent(
        "scan",
        sim.address,
        "--snmp-port",
        str(sim.port),
        "--community",
        "ricoh",
        "--format",
        "json",
    )
    assert run.returncode == 0, run.stderr
    (read,) = run.reads()
    supplies = {supply["index"]: supply for supply in read["supplies"]}
    assert (supplies[1]["level"], supplies[1]["percent"], supplies[1]["quirk"]) == (
        -3,
        35.0,
        "ricoh_private_level",
    )
    assert (supplies[3]["state"], supplies[3]["quirk"]) == ("low", "ricoh_near_empty")
    assert (supplies[4]["state"], supplies[4]["quirk"]) == (
        "some_remaining",
        None,
    )  # no private row


def _oid_key(line: str) -> tuple[int, ...]:
    return parse_oid(line.split("|", 1)[0])


# -- every vendor plan is requested ----------------------------------------------------

PRINTER_TYPE = "1.3.6.1.2.1.25.3.1.5"


def _vendor_recording(enterprise: int) -> tuple[str, dict[str, Any]]:
    """A printer of ``enterprise`` whose identity and meters only its private MIB has.

    Returns the recording and what the read must then show: the serial, and for
    every vendor meter the OID the read names as its source.
    """
    lines = [
        f"1.3.6.1.2.1.1.1.0|4|Test printer of enterprise {enterprise}",
        f"1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.{enterprise}.1.1",
        f"1.3.6.1.2.1.25.3.2.1.2.1|6|{PRINTER_TYPE}",
    ]
    expected: dict[str, Any] = {"sources": {}}
    serials = [item for item in VENDOR_SERIALS if item.enterprise == enterprise]
    if serials:
        expected["serial"] = f"VND{enterprise}X01"
        lines.append(f"{format_oid(serials[0].oid)}|4|{expected['serial']}")
    value = 1000
    for scalar in VENDOR_SCALARS.get(enterprise, ()):
        oids = scalar.oids if scalar.how == "sum" else scalar.oids[:1]
        for oid in oids:
            value += 7919  # distinct, and no four of them add up to another
            lines.append(f"{format_oid(oid)}|65|{value}")
        # The first source listed for a counter wins when the device has it.
        expected["sources"].setdefault(scalar.counter, "+".join(format_oid(oid) for oid in oids))
    for table in VENDOR_TABLES.get(enterprise, ()):
        seen: set[str] = set()
        for row, (code, counter) in enumerate(sorted(table.types.items()), start=1):
            if counter in seen or counter in expected["sources"]:
                continue
            seen.add(counter)
            value += 7919
            lines.append(f"{format_oid(table.type_column)}.{row}|2|{code}")
            lines.append(f"{format_oid(table.value_column)}.{row}|65|{value}")
            expected["sources"][counter] = f"{format_oid(table.value_column)}.{row}"
    return "\n".join(sorted(lines, key=_oid_key)) + "\n", expected


VENDORS = sorted(
    {item.enterprise for item in VENDOR_SERIALS} | set(VENDOR_SCALARS) | set(VENDOR_TABLES)
)


async def test_every_vendor_plan_is_requested_end_to_end(
    tmp_path: Path, snmpsim_factory: SnmpSimFactory
) -> None:
    """One snmpsim peer, one community per maker: identity and meters from private MIBs."""
    data = tmp_path / "data"
    data.mkdir()
    expectations: dict[int, dict[str, Any]] = {}
    for enterprise in VENDORS:
        recording, expected = _vendor_recording(enterprise)
        (data / f"vendor{enterprise}.snmprec").write_text(recording)
        expectations[enterprise] = expected
        plan = vendor_plan(parse_oid(f"1.3.6.1.4.1.{enterprise}.1.1"))
        assert plan.scalars or plan.columns, enterprise
    sim = snmpsim_factory(data, address="127.0.6.11")
    settings = SnmpSettings(port=sim.port, timeout=1.0, retries=1)
    async with SnmpTransport(settings) as transport:
        for enterprise, expected in expectations.items():
            community = Credential(name="c", community=SecretStr(f"vendor{enterprise}"))
            outcome = await read_device(
                sim.address, [community], full_read_plan(), 20, sessions=transport
            )
            read = outcome.read
            assert read is not None, (enterprise, outcome)
            if "serial" in expected:
                assert read.identity.serial == expected["serial"], enterprise
            for counter, source in expected["sources"].items():
                assert read.counter_sources.get(counter) == source, (enterprise, counter, read)


# -- every credential profile, in order, from all three callers -------------------------


async def _only_the_last(shared_recordings: Path, address: str) -> FakeAgent:
    printer = load_snmprec(shared_recordings / "librenms__jetdirect_m130nw.snmprec")
    return await start_fake_agent(printer, address=address, community="third")


async def test_scan_tries_every_profile_in_order(shared_recordings: Path, tmp_path: Path) -> None:
    agent = await _only_the_last(shared_recordings, "127.0.6.20")
    try:
        config = write_config(tmp_path / "agent.yaml", tmp_path / "state", agent.port)
        run = await fleet_agent("scan", agent.address, "--config", str(config), "--format", "json")
    finally:
        agent.close()
    assert run.returncode == 0, run.stderr
    (read,) = run.reads()
    assert read["identity"]["serial"] == "VNCRC48198"
    assert asked_in_order(agent) == ["first", "second", "third"]


async def test_scan_profile_option_picks_one_profile(
    shared_recordings: Path, tmp_path: Path
) -> None:
    agent = await _only_the_last(shared_recordings, "127.0.6.21")
    try:
        config = write_config(tmp_path / "agent.yaml", tmp_path / "state", agent.port)
        base = ("scan", agent.address, "--config", str(config), "--format", "json")
        run = await fleet_agent(*base, "--profile", "third")
        wrong = await fleet_agent(*base, "--profile", "nope")
    finally:
        agent.close()
    assert run.returncode == 0, run.stderr
    assert len(run.reads()) == 1
    assert asked_in_order(agent) == ["third"]
    assert wrong.returncode == 2
    assert "--profile nope" in wrong.stderr


async def test_discover_tries_every_profile_in_order(
    shared_recordings: Path, tmp_path: Path
) -> None:
    agent = await _only_the_last(shared_recordings, "127.0.6.22")
    try:
        config = write_config(tmp_path / "agent.yaml", tmp_path / "state", agent.port)
        run = await fleet_agent(
            "discover", agent.address, "--config", str(config), "--format", "json"
        )
    finally:
        agent.close()
    assert run.returncode == 0, run.stderr
    (found,) = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert found["credential"] == "third"
    assert found["serial"] == "VNCRC48198"
    assert asked_in_order(agent) == ["first", "second", "third"]


class _Sink:
    def __init__(self) -> None:
        self.reads: list[Mapping[str, Any]] = []

    async def submit(self, message: AgentMessage) -> None:
        if message.kind == "read":
            self.reads.append(message.to_body())


def _daemon_config(tmp_path: Path, port: int) -> AgentConfig:
    return AgentConfig(
        state_dir=tmp_path,
        upload=UploadConfig(enabled=False),
        snmp=SnmpConfig(
            port=port,
            timeout=0.3,
            retries=0,
            credentials=[Credential(name=n, community=SecretStr(n)) for n in PROFILES],
        ),
    )


async def _daemon_reads(config: AgentConfig, address: str, rounds: int) -> list[Mapping[str, Any]]:
    sink = _Sink()
    with Inventory(config.state_dir / "inventory.db") as inventory:
        inventory.record_discovery(
            address,
            Identity(serial="VNCRC48198", vendor="HP", is_printer=True),
            device_key="sn:hp:VNCRC48198",
            credential_profile=None,
            sweep_started=datetime.now(UTC),
        )
        async with SnmpTransport(config.snmp.transport_settings()) as transport:
            collector = Collector(
                config, transport=transport, inventory=inventory, sink=sink, metrics=Metrics()
            )
            for _ in range(rounds):
                await collector.read_all("meters")
    return sink.reads


async def test_the_daemon_tries_every_profile_in_order_and_remembers_the_one_that_answered(
    shared_recordings: Path, tmp_path: Path
) -> None:
    agent = await _only_the_last(shared_recordings, "127.0.6.23")
    try:
        reads = await _daemon_reads(_daemon_config(tmp_path, agent.port), agent.address, 2)
    finally:
        agent.close()
    assert [read["identity"]["serial"] for read in reads] == ["VNCRC48198"] * 2
    # the second read starts from the profile that worked: no more tries of the others
    assert asked_in_order(agent) == ["first", "second", "third"]


# -- the same device through scan and through the daemon --------------------------------


async def test_scan_and_the_daemon_read_a_device_the_same(
    shared_recordings: Path, tmp_path: Path
) -> None:
    agent = await _only_the_last(shared_recordings, "127.0.6.24")
    try:
        config = write_config(tmp_path / "agent.yaml", tmp_path / "scan-state", agent.port)
        run = await fleet_agent("scan", agent.address, "--config", str(config), "--format", "json")
        (daemon,) = await _daemon_reads(_daemon_config(tmp_path, agent.port), agent.address, 1)
    finally:
        agent.close()
    assert run.returncode == 0, run.stderr
    (scanned,) = run.reads()
    daemon_read = {k: v for k, v in daemon.items() if k not in ("device_id", "purpose")}
    for read in (scanned, daemon_read):
        read.pop("collected_at")
    assert daemon_read == scanned
    assert {p["reason"] for p in scanned["problems"]} <= set(REASONS)
