"""``fleet-agent scan`` against agents that misbehave: the scan finishes, says what went wrong
on the affected fields, keeps the rest of each read, and the process survives.

The hostile responder (tests/support/hostile.py) runs in this test's event loop; the
scan runs as a subprocess of the installed console script, so a crash would show as a
non-zero exit or a traceback on stderr.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agent.schema import read_schema
from mibs.values import Oid, parse_oid
from tests.support.hostile import (
    COUNTER32,
    HostileFactory,
    HostileResponder,
    HostileValue,
    Special,
    Typed,
)
from tests.support.snmpsim_fleet import FLEET_AGENT, ScanRun

pytestmark = pytest.mark.integration

VALIDATOR = jsonschema.Draft202012Validator(
    read_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
LIFE_COUNT = parse_oid("1.3.6.1.2.1.43.10.2.1.4.1.1")
SERIAL = parse_oid("1.3.6.1.2.1.43.5.1.1.17.1")
SUPPLY_LEVEL = parse_oid("1.3.6.1.2.1.43.11.1.1.9")


def printer() -> dict[Oid, HostileValue]:
    """A sane one-toner printer (RFC 3805 / RFC 2790); tests spoil parts of it."""
    return {
        parse_oid("1.3.6.1.2.1.1.1.0"): b"Hostile LaserJet",
        parse_oid("1.3.6.1.2.1.1.2.0"): parse_oid("1.3.6.1.4.1.11.2.3.9.1"),
        parse_oid("1.3.6.1.2.1.1.3.0"): Typed(0x43, 4242),
        parse_oid("1.3.6.1.2.1.25.3.2.1.2.1"): parse_oid("1.3.6.1.2.1.25.3.1.5"),
        parse_oid("1.3.6.1.2.1.25.3.2.1.3.1"): b"Hostile LaserJet",
        SERIAL: b"HOST1LE001",
        LIFE_COUNT: Typed(COUNTER32, 48213),
        parse_oid("1.3.6.1.2.1.43.10.2.1.3.1.1"): 7,
        parse_oid("1.3.6.1.2.1.43.11.1.1.4.1.1"): 3,
        parse_oid("1.3.6.1.2.1.43.11.1.1.5.1.1"): 3,
        parse_oid("1.3.6.1.2.1.43.11.1.1.6.1.1"): b"Black Toner",
        parse_oid("1.3.6.1.2.1.43.11.1.1.7.1.1"): 19,
        parse_oid("1.3.6.1.2.1.43.11.1.1.8.1.1"): 100,
        parse_oid("1.3.6.1.2.1.43.11.1.1.9.1.1"): 40,
    }


async def scan(*args: str, limit: float = 90) -> ScanRun:
    process = await asyncio.create_subprocess_exec(
        str(FLEET_AGENT),
        "scan",
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


async def scan_one(responder: HostileResponder, *extra: str) -> tuple[ScanRun, dict[str, Any]]:
    # One attempt of 1 s: long enough on a loaded machine, and a mute agent is not
    # asked twice (answer_limit counts every request it sees, retransmissions too).
    run = await scan(
        responder.address,
        "--snmp-port",
        str(responder.port),
        "--format",
        "json",
        "--timeout",
        "1",
        "--retries",
        "0",
        *extra,
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    reads = run.reads()
    assert len(reads) == 1, run.stderr
    VALIDATOR.validate(reads[0])
    return run, reads[0]


def reasons(read: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for problem in read["problems"]:
        found.setdefault(problem["field"], set()).add(problem["reason"])
    return found


async def test_a_sane_printer_costs_few_requests(hostile_factory: HostileFactory) -> None:
    responder = await hostile_factory(printer(), address="127.0.2.1")
    _, read = await scan_one(responder)
    assert read["identity"]["serial"] == "HOST1LE001"
    assert read["counters"]["total"] == 48213
    assert read["supplies"][0]["percent"] == 40.0
    # Counted on the responder's side: the probe GET, the side-by-side GETBULK walk,
    # the vendor GET (HP private OIDs); see docs/benchmarks.md for the budget of 8.
    assert responder.requests <= 8, responder.counts


async def test_garbage_values_become_problems_and_the_rest_survives(
    hostile_factory: HostileFactory,
) -> None:
    varbinds = printer()
    varbinds[LIFE_COUNT] = b"lots"  # an OCTET STRING where a Counter32 belongs
    varbinds[SERIAL] = Typed(0x44, b"\xff\xfe\x00garbage")  # Opaque with junk
    varbinds[parse_oid("1.3.6.1.2.1.43.11.1.1.9.1.1")] = Typed(0x02, -61)  # glpi-agent #904
    varbinds[parse_oid("1.3.6.1.2.1.43.11.1.1.8.1.1")] = Typed(0x02, 2**31 - 1)
    varbinds[parse_oid("1.3.6.1.2.1.1.3.0")] = Typed(0x43, -5)  # negative TimeTicks
    responder = await hostile_factory(varbinds, address="127.0.2.2")
    _, read = await scan_one(responder)
    found = reasons(read)
    assert read["counters"]["total"] is None
    assert "counters.total" in found, read["problems"]
    assert read["supplies"][0]["state"] == "unknown"
    assert read["supplies"][0]["percent"] is None
    assert any(field.startswith("supplies") for field in found), read["problems"]
    assert read["identity"]["sys_descr"] == "Hostile LaserJet"  # the rest survives
    assert read["identity"]["is_printer"]


async def test_silence_after_the_first_walk_step_keeps_a_partial_read(
    hostile_factory: HostileFactory,
) -> None:
    # Answers the probe GET and the first GETBULK (one row of every column), then nothing.
    responder = await hostile_factory(
        printer(), address="127.0.2.3", answer_limit=2, max_varbinds=None
    )
    _, read = await scan_one(responder)
    assert read["identity"]["sys_descr"] == "Hostile LaserJet"
    assert read["identity"]["is_printer"]
    timed_out = [p for p in read["problems"] if p["reason"] == "timeout"]
    assert timed_out, read["problems"]


async def test_silence_before_identification_is_reported_not_hidden(
    hostile_factory: HostileFactory,
) -> None:
    responder = await hostile_factory(printer(), address="127.0.2.7", answer_limit=1)
    run = await scan(
        responder.address,
        "--snmp-port",
        str(responder.port),
        "--format",
        "table",
        "--timeout",
        "1",
        "--retries",
        "0",
    )
    assert run.returncode == 1, run.stderr  # no printer read: 1 (the exit status table)
    assert "Traceback" not in run.stderr
    assert "127.0.2.7" in run.stderr
    assert "fell silent" in run.stderr
    assert "1 incomplete" in run.stderr.splitlines()[-1]
    assert "not a printer" not in run.stderr.splitlines()[0]


async def test_an_agent_without_getbulk_is_walked_with_getnext(
    hostile_factory: HostileFactory,
) -> None:
    responder = await hostile_factory(printer(), address="127.0.2.4", no_bulk=True)
    _, read = await scan_one(responder)
    assert read["counters"]["total"] == 48213
    assert read["supplies"][0]["percent"] == 40.0
    assert responder.counts["getnext"] > 0


async def test_a_walk_that_goes_backwards_is_cut_and_reported(
    hostile_factory: HostileFactory,
) -> None:
    level = parse_oid("1.3.6.1.2.1.43.11.1.1.9.1.1")
    responder = await hostile_factory(
        printer(), address="127.0.2.5", rewind={level: level[:-1] + (0,)}
    )
    _, read = await scan_one(responder)
    assert read["counters"]["total"] == 48213
    assert any(p["oid"] == "1.3.6.1.2.1.43.11.1.1.9" for p in read["problems"]), read["problems"]


async def test_error_status_on_everything_is_not_a_crash(hostile_factory: HostileFactory) -> None:
    responder = await hostile_factory(printer(), address="127.0.2.6", error_status=5)  # genErr
    run = await scan(
        responder.address, "--snmp-port", str(responder.port), "--timeout", "1", "--retries", "0"
    )
    assert run.returncode == 1, run.stderr  # no printer found: 1, and no crash
    assert "Traceback" not in run.stderr
    assert run.reads() == []  # genErr to every PDU: nothing identifies it as a printer
    assert "1 address scanned" in run.stderr


async def test_a_mixed_hostile_fleet_scanned_side_by_side(hostile_factory: HostileFactory) -> None:
    """Sane, garbage, mute-after-one, bulk-deaf and exception-only agents side by side."""
    base = printer()
    garbage = dict(base)
    garbage[LIFE_COUNT] = Typed(COUNTER32, -1)
    exceptions = dict.fromkeys(base, Special.NO_SUCH_OBJECT)
    port_of: dict[str, int] = {}
    specs: list[tuple[dict[Oid, HostileValue], dict[str, Any]]] = [
        (base, {}),
        (garbage, {}),
        (base, {"answer_limit": 1}),
        (base, {"no_bulk": True}),
        (exceptions, {}),
    ]
    responders = []
    for number, (varbinds, behaviour) in enumerate(specs, start=1):
        address = f"127.0.2.{20 + number}"
        responder = await hostile_factory(varbinds, address=address, **behaviour)
        responders.append(responder)
        port_of[address] = responder.port
    # The responders have different ports; scan each address with its port concurrently.
    runs = await asyncio.gather(
        *(
            scan(address, "--snmp-port", str(port), "--format", "json", "--timeout", "1")
            for address, port in port_of.items()
        )
    )
    for run in runs:
        # The exit status table: 0 when the named host gave a printer read, 1 when none.
        assert run.returncode == (0 if run.reads() else 1), run.stderr
        assert "Traceback" not in run.stderr
        for read in run.reads():
            VALIDATOR.validate(read)
    assert runs[-1].returncode == 1  # 127.0.2.25 answers exceptions only: no printer read
    printers = [json.loads(line) for run in runs for line in run.stdout.splitlines()]
    assert {p["address"] for p in printers} >= {"127.0.2.21", "127.0.2.22", "127.0.2.24"}
    assert "127.0.2.25" not in {p["address"] for p in printers}  # answers nothing useful


async def test_discover_lists_printers_in_address_order_whatever_order_they_answer(
    hostile_factory: HostileFactory, tmp_path: Path
) -> None:
    """The first address answers 1.5 s late: discover's JSON still lists it first."""
    late = dict(printer())
    late[SERIAL] = b"HOST1LE041"
    prompt = dict(printer())
    prompt[SERIAL] = b"HOST1LE042"
    first = await hostile_factory(late, address="127.0.2.41", delay=1.5)
    await hostile_factory(prompt, address="127.0.2.42", port=first.port)
    process = await asyncio.create_subprocess_exec(
        str(FLEET_AGENT),
        "discover",
        "127.0.2.41-127.0.2.42",
        "--snmp-port", str(first.port),
        "--format", "json",
        "--timeout", "5",
        "--retries", "0",
        "--state-dir", str(tmp_path / "state"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    found = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert [record["address"] for record in found] == ["127.0.2.41", "127.0.2.42"]
    assert [record["serial"] for record in found] == ["HOST1LE041", "HOST1LE042"]
