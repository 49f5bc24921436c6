"""Discovery against real peers: snmpsim printers and a router, silent sinks, SQLite inventory.

Every device is its own snmpsim process on its own 127.0.x.y address (snmpsim
selects data by community, not endpoint), all on one UDP port. Addresses with
nothing bound answer ICMP port-unreachable; the counting sinks of
``udp_counter`` stay silent and prove from the peer's side what was sent.
"""

from __future__ import annotations

import csv
import io
import json
import socket
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import structlog

from agent.cli import main
from agent.inventory import Inventory
from tests.support.snmpsim import SnmpSim, SnmpSimFactory
from tests.support.udp_counter import UdpCounterFactory

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """CLI runs point structlog at pytest's capture streams, which close after the test."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


PRINTER_TYPE = "1.3.6.1.2.1.25.3.1.5"


def printer_snmprec(
    *, serial: str, mac: str, model: str, sys_name: str, location: str | None = None
) -> str:
    """A minimal RFC 3805 / RFC 2790 printer (HP sysObjectID), lines in OID order."""
    rows = [
        ("1.3.6.1.2.1.1.1.0", "4", f"HP {model}"),
        ("1.3.6.1.2.1.1.2.0", "6", "1.3.6.1.4.1.11.2.3.9.1"),
        ("1.3.6.1.2.1.1.3.0", "67", "123456"),
        ("1.3.6.1.2.1.1.5.0", "4", sys_name),
        *([("1.3.6.1.2.1.1.6.0", "4", location)] if location is not None else []),
        ("1.3.6.1.2.1.2.2.1.3.1", "2", "6"),
        ("1.3.6.1.2.1.2.2.1.6.1", "4x", mac.replace(":", "")),
        ("1.3.6.1.2.1.25.3.2.1.2.1", "6", PRINTER_TYPE),
        ("1.3.6.1.2.1.25.3.2.1.3.1", "4", f"HP {model}"),
        ("1.3.6.1.2.1.43.5.1.1.17.1", "4", serial),
        ("1.3.6.1.2.1.43.10.2.1.4.1.1", "65", "48213"),
    ]
    return "".join(f"{oid}|{tag}|{value}\n" for oid, tag, value in rows)


ROUTER = (
    "1.3.6.1.2.1.1.1.0|4|Linux edge-router 6.1.0\n"
    "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.8072.3.2.10\n"
    "1.3.6.1.2.1.1.5.0|4|edge-router\n"
    "1.3.6.1.2.1.25.3.2.1.2.196608|6|1.3.6.1.2.1.25.3.1.3\n"
)


def common_port(addresses: Sequence[str]) -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((addresses[0], 0))
            port = int(probe.getsockname()[1])
        try:
            for address in addresses:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.bind((address, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no common free UDP port")


def start_devices(
    factory: SnmpSimFactory, root: Path, devices: dict[str, str], port: int, **kwargs: object
) -> dict[str, SnmpSim]:
    """One snmpsim per address serving its recording as community ``public``, in parallel."""

    def start(item: tuple[str, str]) -> tuple[str, SnmpSim]:
        address, recording = item
        data = root / address
        data.mkdir(parents=True, exist_ok=True)
        (data / "public.snmprec").write_text(recording)
        return address, factory(data, address=address, port=port, **kwargs)  # type: ignore[arg-type]

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(start, devices.items()))


def discover(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[list[dict[str, object]], str]:
    code = main(["discover", "--format", "json", *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = [json.loads(line) for line in captured.out.splitlines() if line.strip()]
    summary = [
        line for line in captured.err.splitlines() if line.startswith("fleet-agent discover:")
    ]
    return lines, summary[-1] if summary else ""


def test_finds_printers_counts_others_and_never_touches_exclusions(
    tmp_path: Path,
    snmpsim_factory: SnmpSimFactory,
    udp_counter_factory: UdpCounterFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    devices = {
        "127.0.4.2": printer_snmprec(
            serial="PHB0000001", mac="00:11:22:00:00:01", model="LaserJet M404", sys_name="lj-1"
        ),
        "127.0.4.3": printer_snmprec(
            serial="PHB0000002", mac="00:11:22:00:00:02", model="LaserJet M404", sys_name="lj-2"
        ),
        "127.0.4.9": printer_snmprec(
            serial="PHB0000003", mac="00:11:22:00:00:03", model="LaserJet M507", sys_name="lj-3"
        ),
        "127.0.4.4": ROUTER,
    }
    sinks = ["127.0.4.6", "127.0.4.7", "127.0.4.21"]
    port = common_port([*devices, *sinks])
    start_devices(snmpsim_factory, tmp_path / "sims", devices, port)
    counter = udp_counter_factory(sinks, port)

    found, summary = discover(
        capsys,
        "127.0.4.0/27",
        "--exclude", "127.0.4.7",
        "--exclude", "127.0.4.20-127.0.4.25",
        "--snmp-port", str(port),
        "--timeout", "5",
        "--retries", "0",
        "--state-dir", str(tmp_path / "state"),
    )  # fmt: skip

    by_address = {str(record["address"]): record for record in found}
    assert set(by_address) == {"127.0.4.2", "127.0.4.3", "127.0.4.9"}
    assert by_address["127.0.4.9"]["device_id"] == "sn:hp:PHB0000003"
    assert by_address["127.0.4.9"]["model"] == "LaserJet M507"
    assert by_address["127.0.4.2"]["vendor"] == "HP"
    assert by_address["127.0.4.2"]["serial"] == "PHB0000001"
    assert all(record["new"] for record in found)
    # 30 usable addresses in the /27, minus 127.0.4.7 and 127.0.4.20-25.
    assert summary.startswith(
        "fleet-agent discover: 23 addresses tried, 3 printers, 1 other SNMP device, 19 silent"
    )
    # The peers' side: the excluded sinks never got a packet; the swept one did.
    assert counter.count("127.0.4.7") == 0
    assert counter.count("127.0.4.21") == 0
    assert counter.count("127.0.4.6") == 1
    with Inventory(tmp_path / "state" / "inventory.db") as inventory:
        known = {d.device_id: d for d in inventory.devices()}
    assert set(known) == {"sn:hp:PHB0000001", "sn:hp:PHB0000002", "sn:hp:PHB0000003"}
    assert known["sn:hp:PHB0000001"].mac == "00:11:22:00:00:01"
    assert known["sn:hp:PHB0000001"].credential_profile == "v2c#1"


def test_moved_printer_duplicate_serial_and_two_addresses(
    tmp_path: Path, snmpsim_factory: SnmpSimFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    mover = printer_snmprec(
        serial="MOV0000001", mac="00:11:22:00:01:01", model="LaserJet M404", sys_name="mover"
    )
    twice = printer_snmprec(
        serial="TWO0000001", mac="00:11:22:00:01:02", model="LaserJet M404", sys_name="dual"
    )
    devices = {
        "127.0.6.10": mover,
        "127.0.6.11": printer_snmprec(
            serial="DUP0000001", mac="00:11:22:00:01:03", model="LaserJet M404", sys_name="a"
        ),
        "127.0.6.12": printer_snmprec(
            serial="DUP0000001", mac="00:11:22:00:01:04", model="LaserJet M404", sys_name="b"
        ),
        "127.0.6.13": twice,
        "127.0.6.14": twice,
    }
    port = common_port([*devices, "127.0.6.20"])
    sims = start_devices(snmpsim_factory, tmp_path / "sims", devices, port)
    state = tmp_path / "state"
    common = [
        "--snmp-port",
        str(port),
        "--timeout",
        "5",
        "--retries",
        "0",
        "--state-dir",
        str(state),
    ]

    first, summary = discover(capsys, "127.0.6.10-20", *common)
    assert "5 printers" in summary
    ids = {str(r["address"]): str(r["device_id"]) for r in first}
    assert ids["127.0.6.13"] == ids["127.0.6.14"] == "sn:hp:TWO0000001"
    assert {ids["127.0.6.11"], ids["127.0.6.12"]} == {
        "sn:hp:DUP0000001",
        "sn:hp:DUP0000001~001122000104"
        if ids["127.0.6.11"] == "sn:hp:DUP0000001"
        else "sn:hp:DUP0000001~001122000103",
    }
    with Inventory(state / "inventory.db") as inventory:
        known = {d.device_id: d for d in inventory.devices()}
    assert len(known) == 4
    assert sorted(known["sn:hp:TWO0000001"].addresses) == ["127.0.6.13", "127.0.6.14"]
    duplicates = {d for d, device in known.items() if device.duplicate_serial}
    assert duplicates == {ids["127.0.6.11"], ids["127.0.6.12"]}

    # The printer gets a new DHCP lease: same device, new address.
    sims["127.0.6.10"].stop()
    start_devices(snmpsim_factory, tmp_path / "sims2", {"127.0.6.20": mover}, port)
    second, summary = discover(capsys, "127.0.6.10-20", *common)
    moved = next(r for r in second if r["address"] == "127.0.6.20")
    assert moved["device_id"] == "sn:hp:MOV0000001"
    assert moved["new"] is False
    assert moved["moved_from"] == "127.0.6.10"
    with Inventory(state / "inventory.db") as inventory:
        after = {d.device_id: d for d in inventory.devices()}
    assert len(after) == 4
    assert after["sn:hp:MOV0000001"].addresses == ["127.0.6.20"]
    assert after["sn:hp:MOV0000001"].first_seen == known["sn:hp:MOV0000001"].first_seen


def test_inventory_command_lists_what_discovery_found(
    tmp_path: Path, snmpsim_factory: SnmpSimFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    devices = {
        "127.0.5.2": printer_snmprec(
            serial="=HACK0001",
            mac="00:11:22:00:02:01",
            model="LaserJet M404",
            sys_name="x",
            location="Floor 2, copy room",
        )
    }
    port = common_port(list(devices))
    start_devices(snmpsim_factory, tmp_path / "sims", devices, port)
    state = str(tmp_path / "state")
    base = ["127.0.5.2", "--snmp-port", str(port), "--timeout", "5", "--state-dir", state]
    (found,), _ = discover(capsys, *base)
    assert found["lifetime_pages"] is None  # identification alone reads no meters
    assert main(["inventory", "--state-dir", state, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("device_id,serial,vendor,model,address,mac,first_seen")
    assert "'=HACK0001" in lines[1]  # device text cannot become a spreadsheet formula
    assert ",127.0.5.2,00:11:22:00:02:01," in lines[1]
    assert not lines[1].split(",")[8]  # lifetime_pages still unknown

    (found,), _ = discover(capsys, *base, "--read")
    assert found["lifetime_pages"] == 48213
    assert main(["inventory", "--state-dir", state, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # the same device, not a second one
    assert lines[1].split(",")[8] == "48213"
    (row,) = csv.DictReader(io.StringIO("\n".join(lines)))
    assert (row["sys_name"], row["location"]) == ("x", "Floor 2, copy room")
    assert row["start_page_count"] == "48213"  # the first read kept: where billing starts


def test_a_sweep_that_finds_no_printer_exits_1(
    tmp_path: Path, snmpsim_factory: SnmpSimFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    port = common_port(["127.0.5.40", "127.0.5.41"])
    start_devices(snmpsim_factory, tmp_path / "sims", {"127.0.5.40": ROUTER}, port)
    state = tmp_path / "state"
    argv = ["127.0.5.40-41", "--snmp-port", str(port), "--timeout", "5", "--retries", "0"]
    code = main(["discover", "--format", "json", *argv, "--state-dir", str(state)])
    captured = capsys.readouterr()
    assert code == 1, captured.err  # nothing found: 1, as grep; 2 is for usage errors only
    assert captured.out == ""
    assert "0 printers, 1 other SNMP device, 1 silent" in captured.err
    assert main(["inventory", "--state-dir", str(state), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == []  # an inventory, still empty


def test_net_snmp_and_nmap_forms(
    tmp_path: Path, snmpsim_factory: SnmpSimFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """discover takes scan's habits: -v 2c -c, octet ranges, comma lists, HOST:PORT, -iL and
    --exclude-file; the recordings answer only the community 'site7'."""
    devices = {
        "127.0.9.2": printer_snmprec(
            serial="FRM0000001", mac="00:11:22:00:09:02", model="LaserJet M404", sys_name="f-1"
        ),
        "127.0.9.3": printer_snmprec(
            serial="FRM0000002", mac="00:11:22:00:09:03", model="LaserJet M404", sys_name="f-2"
        ),
        "127.0.9.12": printer_snmprec(
            serial="FRM0000003", mac="00:11:22:00:09:12", model="LaserJet M507", sys_name="f-3"
        ),
    }
    port = common_port(list(devices))
    for address, recording in devices.items():
        data = tmp_path / "sims" / address
        data.mkdir(parents=True)
        (data / "site7.snmprec").write_text(recording)
        snmpsim_factory(data, address=address, port=port)
    listed = tmp_path / "printers.txt"
    listed.write_text(f"# second floor\n127.0.9.12:{port}  # the M507\n")
    skipped = tmp_path / "skip.txt"
    skipped.write_text("127.0.9.3\n")
    found, summary = discover(
        capsys,
        "-v", "2c", "-c", "site7",
        "127.0.9-10.2-3,127.0.9.40",
        "-iL", str(listed),
        "--exclude-file", str(skipped),
        "--snmp-port", str(port),
        "--timeout", "5",
        "--retries", "0",
        "--state-dir", str(tmp_path / "state"),
    )  # fmt: skip
    assert sorted((str(r["address"]), str(r["serial"])) for r in found) == [
        (f"127.0.9.12:{port}", "FRM0000003"),
        ("127.0.9.2", "FRM0000001"),
    ]
    assert summary.startswith("fleet-agent discover: 5 addresses tried, 2 printers, ")
    # Refused forms: exit 2, the place named, nothing swept.
    listed.write_text("127.0.9.12\n127.0.9.300\n")
    assert main(["discover", "-iL", str(listed), "-c", "site7"]) == 2
    assert f"{listed}:2: target '127.0.9.300': not a valid IPv4 address" in capsys.readouterr().err
    assert main(["discover", "-v", "3", "127.0.9.2"]) == 2
    assert "-v 3 needs a user" in capsys.readouterr().err
    assert main(["discover", "127.0.9-300.2"]) == 2
    assert "127.0.9-300.2" in capsys.readouterr().err
