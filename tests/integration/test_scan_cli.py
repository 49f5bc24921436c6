"""``fleet-agent scan`` end to end: the console script against snmpsim peers on 127.0.1.x.

Every device serves one real recording (../shared/recordings, from LibreNMS's
test suite) or one of the project's own (tests/data/recordings). The expected
values below were worked out by hand from the recording and the MIB, not taken
from our decoders; each carries its reasoning:

* RFC 3805 (Printer-MIB) prtMarkerSuppliesLevel: "the current level if this
  supply is a container; the remaining space if this supply is a receptacle";
  -1 other, -2 unknown, -3 "at least one unit remaining". MaxCapacity -1 "no
  restriction", -2 unknown. A percentage needs a known maximum: level/max*100
  for a container; for a receptacle the filled share is (max-level)/max*100.
* prtMarkerLifeCount (43.10.2.1.4.<hrDeviceIndex>.<marker>) is the lifetime
  count, in prtMarkerCounterUnit (7 impressions, 8 sheets).
* prtGeneralSerialNumber (43.5.1.1.17.<hrDeviceIndex>) is the serial; vendor
  serial OIDs only when it is absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agent.schema import read_schema
from tests.support.snmpsim import SnmpSim, V3User, copy_recordings, free_udp_port, start_snmpsim
from tests.support.snmpsim_fleet import Fleet, run_scan, start_fleet

pytestmark = pytest.mark.integration

# Short enough for silent addresses, with one retry so a loaded CI machine does not flake.
FAST = ("--timeout", "1", "--retries", "1")
VALIDATOR = jsonschema.Draft202012Validator(
    read_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


@dataclass(frozen=True)
class Expected:
    serial: str | None
    total: int | None
    counters: dict[str, int] = field(default_factory=dict)  # other meters, by JSON name
    # (prtMarkerSuppliesIndex, percent or None, state) for every supply row
    supplies: tuple[tuple[int, float | None, str], ...] = ()
    why: str = ""


SHARED: dict[str, Expected] = {
    "librenms__brother_hl5370dw.snmprec": Expected(
        serial="B9J154306",
        total=7792,
        supplies=(
            (1, None, "ok"),
            (2, None, "some_remaining"),
            (3, 17208 / 25000 * 100, "ok"),
        ),
        why=(
            "No prtGeneralSerialNumber: the Brother serial OID "
            "…2435.2.3.9.4.2.1.5.5.1.0 says B9J154306. LifeCount 7792 impressions. "
            "Toner rows have MaxCapacity -2 (unknown), so no percentage. Row 1 level 0 "
            "would be 'empty' by RFC 3805 alone, but the device's own "
            "hrPrinterDetectedErrorState is 00 (neither lowToner nor noToner, RFC 2790 "
            "bits 2/3): the 0 is Brother's status code 0 'full' (LibreNMS "
            "get_toner_levels), so ok. Row 2 level -3 is 'some remaining'. "
            "Drum (opc) 17208 of 25000."
        ),
    ),
    "librenms__canonprinter_lbp.snmprec": Expected(
        serial="MKRA012345",
        total=None,
        supplies=((1, 70.0, "ok"),),
        why="Trimmed recording: no prtMarkerLifeCount and no Canon counter. Cartridge 70/100.",
    ),
    "librenms__dell-laser_s5830dn.snmprec": Expected(
        serial="7XQ1R92-132-13",
        total=None,
        supplies=(
            (1, 22050 / 45000 * 100, "ok"),
            (2, 72.0, "ok"),
            (3, 83.0, "ok"),
            (4, 89.0, "ok"),
        ),
        why="No LifeCount in the recording. Toner 22050/45000, imaging 72000/100000, "
        "maintenance kit 166000/200000, roller kit 267000/300000.",
    ),
    "librenms__epson.snmprec": Expected(
        serial="X3B8022793",
        total=None,
        supplies=((1, 1.0, "low"), (2, 1.0, "low"), (3, 1.0, "low"), (4, 1.0, "low")),
        why="Four ink units at level 1 of MaxCapacity 100: 1 %, low by any threshold "
        "(and not empty: RFC 3805 reserves 0 for that).",
    ),
    "librenms__jetdirect_m130nw.snmprec": Expected(
        serial="VNCRC48198",
        total=15232,
        counters={"mono": 15232, "duplex": 0},
        supplies=((1, 28.0, "ok"), (5, 71.0, "ok")),
        why="LifeCount 15232 impressions; HP-LASERJET-COMMON-MIB total-mono-page-count "
        "(…4.1.2.6.0) 15232 and duplex-page-count (…4.1.2.22.0) 0. Cartridge 28/100, "
        "drum 71/100 (supply indexes 1 and 5: the index is not a position).",
    ),
    "librenms__konica_c250i.snmprec": Expected(
        serial="AA2M021115700",
        total=33810,
        counters={
            "copy_mono": 3672,
            "print_mono": 22876,
            "copy_color": 544,
            "print_color": 6711,
            "duplex": 7357,
        },
        supplies=(
            (1, 76.0, "ok"),
            (2, 78.0, "ok"),
            (3, 77.0, "ok"),
            (4, 86.0, "ok"),
            (13, None, "some_remaining"),
        ),
        why="LifeCount 33810. KONICAMINOLTA kmSysPrintCounter .2.1.5.<1 black|2 colour>."
        "<1 copy|2 print> and .1.3.0 duplex (GLPI Konica.pm). Toners in percent; the "
        "waste toner box (type 4, index 13) has max -2 and level -3: space remains, "
        "the fill share is unknown.",
    ),
    "librenms__ricoh_mpc3002.snmprec": Expected(
        serial="W492KB03439",
        total=271871,
        supplies=(
            (1, 40.0, "ok"),
            (2, 0.0, "ok"),
            (3, 20.0, "ok"),
            (4, 50.0, "ok"),
            (5, 50.0, "ok"),
        ),
        why="LifeCount 271871 (unit 8: sheets). Waste toner (type 4 wasteToner, a "
        "receptacle) level 100 of 100 is 100 % space remaining, i.e. 0 % full.",
    ),
    "librenms__sharp_mxm266nv.snmprec": Expected(
        serial="0505571100",
        total=90474,
        counters={"mono": 90474, "color": 0, "print_mono": 24677, "copy_mono": 65787},
        supplies=(
            (1, 75.0, "ok"),
            (2, None, "some_remaining"),
            (3, None, "some_remaining"),
            (4, None, "some_remaining"),
            (5, None, "unknown"),
        ),
        why="LifeCount 90474; the Sharp counter table labels itself (column .4): "
        "'Black & White Total Count' 90474, 'Full Color Total Count' 0, B&W print "
        "24677, B&W copy 65787. Supplies 2-4 have MaxCapacity -2 with a positive "
        "level: some left (space, for the waste toner receptacle), percentage unknown; "
        "the fuser says level -2 (unknown).",
    ),
    "librenms__xerox.snmprec": Expected(
        serial=None,
        total=None,
        supplies=(
            (1, 1060 / 5300 * 100, "ok"),
            (2, 66.0, "ok"),
            (3, 72.0, "ok"),
            (4, 1830 / 3050 * 100, "ok"),
            (5, 50.0, "ok"),
            (6, 92.0, "ok"),
            (7, 93.0, "ok"),
            (8, 93.0, "ok"),
            (9, 90.0, "ok"),
            (10, 5.0, "low"),
            (11, 65.0, "ok"),
            (12, 86.0, "ok"),
        ),
        why="Heavily trimmed: no serial, no counters, no supply type/class columns. "
        "Without prtMarkerSuppliesClass/Type the RFC gives no way to tell the waste "
        "container (row 10) is a receptacle, so its 5 of 100 reads as a container: low.",
    ),
}


@pytest.fixture(scope="module")
def shared_fleet(
    shared_recordings: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    recordings = [shared_recordings / name for name in sorted(SHARED)]
    fleet = start_fleet(recordings, tmp_path_factory.mktemp("fleet"), first_host=1)
    yield fleet
    fleet.stop()


@pytest.fixture(scope="module")
def shared_scan(shared_fleet: Fleet) -> tuple[dict[str, dict[str, Any]], str]:
    """One scan of 127.0.1.1-(N+1): every shared recording plus one silent address."""
    last = len(shared_fleet.devices) + 1
    run = run_scan(
        f"127.0.1.1-{last}",
        "--snmp-port",
        str(shared_fleet.port),
        "--format",
        "json",
        *FAST,
    )
    assert run.returncode == 0, run.stderr
    reads = {read["address"]: read for read in run.reads()}
    return reads, run.stderr


def test_every_read_validates_against_the_schema(shared_scan: Any) -> None:
    reads, _ = shared_scan
    assert reads
    for read in reads.values():
        VALIDATOR.validate(read)


def test_summary_counts_printers_and_the_silent_address(shared_scan: Any) -> None:
    reads, stderr = shared_scan
    summary = stderr.strip().splitlines()[-1]
    assert f"{len(SHARED) + 1} addresses scanned" in summary
    assert f"{len(reads)} printers" in summary
    assert "1 silent" in summary


@pytest.mark.parametrize("name", sorted(SHARED))
def test_recording_reads_as_expected(name: str, shared_fleet: Fleet, shared_scan: Any) -> None:
    expected = SHARED[name]
    reads, _ = shared_scan
    address = shared_fleet.address_of(name)
    assert address in reads, f"{name} ({address}) was not reported as a printer"
    _assert_read(reads[address], expected)


OWN: dict[str, Expected] = {
    "colour_mfp_hr2.snmprec": Expected(
        serial="LX7C2A0B1234",
        total=123456,
        counters={
            "mono": 100000,
            "color": 23456,
            "print": 100000,
            "print_mono": 80000,
            "print_color": 20000,
            "copy": 23456,
            "copy_mono": 20000,
            "copy_color": 3456,
        },
        supplies=(
            (1, 10.0, "low"),
            (2, 50.0, "ok"),
            (3, 100.0, "ok"),
            (4, None, "some_remaining"),
            (5, 60.0, "ok"),
            (6, None, "unknown"),
            (7, 20.0, "ok"),
        ),
        why="The printer is hrDeviceIndex 2 (row 1 is the CPU): every Printer-MIB value "
        "comes from .2. Serial 'lx7c2a0b1234 ' trimmed and upper-cased. LifeCount 123456 "
        "wins over the PWG systemTotals (the same number). PWG icImpressionTable "
        "(workTotals 3, lifetime 3) per service key: print (11) 100000 = 80000 mono + "
        "20000 full colour, copy (4) 23456 = 20000 + 3456; systemTotals mono 100000, "
        "colour 23456. Black 850/8500 = 10 %: low (10 % threshold, and the device's own "
        "alert says 'Black Cartridge Low'); yellow -3 some remaining; fuser -2 unknown; "
        "the waste bottle is a receptacle (class 4) in percent with 80 % space left: 20 % "
        "full.",
    ),
    "generic_agent_placeholder.snmprec": Expected(
        serial=None,
        total=5321,
        why="A net-snmp agent (enterprise 8072) in front of a Pantum: no hrDeviceType, "
        "but Printer-MIB tables answer on hrDeviceIndex 3. Serial 'XXXXXXXXXXXX' is a "
        "placeholder (GLPI rejects all-X serials): null, with a problem saying so.",
    ),
}


def _assert_read(read: dict[str, Any], expected: Expected) -> None:
    assert read["identity"]["is_printer"], expected.why
    assert read["identity"]["serial"] == expected.serial, expected.why
    assert read["counters"]["total"] == expected.total, expected.why
    if expected.total is not None:
        assert read["counter_sources"]["total"].startswith("1.3.6.1.2.1.43.10.2.1.4."), (
            "prtMarkerLifeCount is the source of the total when the device has one"
        )
    for counter, value in expected.counters.items():
        assert read["counters"][counter] == value, f"{counter}: {expected.why}"
    for counter, value in read["counters"].items():
        if value is not None and counter != "unit":
            assert counter in read["counter_sources"], f"{counter} has no source OID"
    got = {s["index"]: s for s in read["supplies"]}
    assert sorted(got) == [index for index, _, _ in expected.supplies], expected.why
    for index, percent, state in expected.supplies:
        supply = got[index]
        if percent is None:
            assert supply["percent"] is None, f"supply {index}: {expected.why}"
        else:
            assert supply["percent"] == pytest.approx(percent, abs=0.05), (
                f"supply {index}: {expected.why}"
            )
        assert supply["state"] == state, f"supply {index} {supply}: {expected.why}"


@pytest.fixture(scope="module")
def own_scan(
    own_recordings: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Fleet, dict[str, dict[str, Any]]]:
    recordings = sorted(own_recordings.glob("*.snmprec"))
    if not recordings:
        pytest.skip("tests/data/recordings holds no recording yet")
    fleet = start_fleet(recordings, tmp_path_factory.mktemp("own"), first_host=101)
    try:
        last = 100 + len(recordings)
        run = run_scan(
            f"127.0.1.101-{last}", "--snmp-port", str(fleet.port), "--format", "json", *FAST
        )
    finally:
        fleet.stop()
    assert run.returncode == 0, run.stderr
    return fleet, {read["address"]: read for read in run.reads()}


def test_own_recordings_scan_and_validate(own_scan: Any) -> None:
    """The project's own recordings (always present) read cleanly and match the schema."""
    fleet, reads = own_scan
    assert len(reads) == len(fleet.devices), "every own recording is a printer"
    for read in reads.values():
        VALIDATOR.validate(read)
        assert not [p for p in read["problems"] if p["reason"] in ("timeout", "deadline")]


@pytest.mark.parametrize("name", sorted(OWN))
def test_own_recording_reads_as_expected(name: str, own_scan: Any) -> None:
    fleet, reads = own_scan
    if name not in {path.name for path in fleet.devices.values()}:
        pytest.skip(f"{name} is no longer in tests/data/recordings")
    _assert_read(reads[fleet.address_of(name)], OWN[name])


def test_colour_mfp_status_and_alerts(own_scan: Any) -> None:
    """RFC 2790 hrPrinterDetectedErrorState 0x20 0x04, read MSB first: bit 2 lowToner,
    bit 13 inputTrayEmpty. Alerts of the printer row (hrDeviceIndex 2) only; the CPU's
    alert (row 1.1) is not the printer's."""
    fleet, reads = own_scan
    if "colour_mfp_hr2.snmprec" not in {path.name for path in fleet.devices.values()}:
        pytest.skip("colour_mfp_hr2.snmprec is no longer in tests/data/recordings")
    read = reads[fleet.address_of("colour_mfp_hr2.snmprec")]
    status = read["status"]
    assert status["printer_status"] == "idle"  # hrPrinterStatus 3
    assert status["device_status"] == "warning"  # hrDeviceStatus 3
    assert status["errors"] == ["low_toner", "input_tray_empty"]
    assert [(a["index"], a["severity"]) for a in status["alerts"]] == [
        (1, "warning"),
        (3, "warning"),
        (4, "warningBinaryChangeEvent"),
    ]
    colorants = {s["index"]: s["colorant"] for s in read["supplies"]}
    assert colorants == {
        1: "black",
        2: "cyan",
        3: "magenta",
        4: "yellow",
        5: None,
        6: None,
        7: None,
    }


# --- a non-printer, table output, community order, SNMPv3 ---------------------------------

LINUX_HOST = """\
1.3.6.1.2.1.1.1.0|4|Linux gateway 6.1.0 x86_64
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.8072.3.2.10
1.3.6.1.2.1.1.3.0|67|123456
1.3.6.1.2.1.1.5.0|4|gateway
1.3.6.1.2.1.25.3.2.1.2.196608|6|1.3.6.1.2.1.25.3.1.3
1.3.6.1.2.1.25.3.2.1.3.196608|4|GenuineIntel: Intel(R) Xeon(R)
"""


@pytest.fixture
def mixed_fleet(shared_recordings: Path, tmp_path: Path) -> Iterator[Fleet]:
    """127.0.1.201: HP M130nw; 127.0.1.202: a Linux host (no hrDevicePrinter, no Printer-MIB)."""
    linux = tmp_path / "linux_host.snmprec"
    linux.write_text(LINUX_HOST)
    fleet = start_fleet(
        [shared_recordings / "librenms__jetdirect_m130nw.snmprec", linux],
        tmp_path / "fleet",
        first_host=201,
    )
    yield fleet
    fleet.stop()


def test_table_output_and_a_skipped_non_printer(mixed_fleet: Fleet) -> None:
    run = run_scan(
        "127.0.1.201",
        "127.0.1.202",
        "--snmp-port",
        str(mixed_fleet.port),
        "--format",
        "table",
        *FAST,
    )
    assert run.returncode == 0, run.stderr
    row = next(line for line in run.stdout.splitlines() if "127.0.1.201" in line)
    assert "VNCRC48198" in row
    assert "15,232" in row
    assert "28%" in row  # the black cartridge is the lowest consumable (drum 71 %)
    assert "127.0.1.202" not in run.stdout
    assert "127.0.1.202" in run.stderr
    assert "not a printer" in run.stderr
    assert "1 printer, 1 not a printer, 0 silent" in run.stderr.splitlines()[-1]


def test_json_mode_skips_the_non_printer_quietly(mixed_fleet: Fleet) -> None:
    run = run_scan("127.0.1.201-202", "--snmp-port", str(mixed_fleet.port), *FAST)
    assert run.returncode == 0, run.stderr
    reads = run.reads()  # not a TTY: JSON lines by default
    assert [r["address"] for r in reads] == ["127.0.1.201"]
    assert "127.0.1.202" not in run.stderr
    assert "1 not a printer" in run.stderr


def test_communities_are_tried_in_order_first_answer_wins(
    shared_recordings: Path, tmp_path: Path, snmpsim_factory: Any
) -> None:
    names = ["librenms__ricoh_mpc3002.snmprec", "librenms__sharp_mxm266nv.snmprec"]
    communities = copy_recordings([shared_recordings / n for n in names], tmp_path / "data")
    sim = snmpsim_factory(tmp_path / "data", address="127.0.1.210")
    ricoh, sharp = communities

    def serial(*community_args: str) -> str | None:
        run = run_scan(sim.address, "--snmp-port", str(sim.port), *community_args, *FAST)
        reads = run.reads()
        assert run.returncode == (0 if reads else 1), run.stderr
        return reads[0]["identity"]["serial"] if reads else None

    assert serial("--community", "nobody", "--community", sharp) == "0505571100"
    assert serial("--community", ricoh, "--community", sharp) == "W492KB03439"
    assert serial("--community", sharp, "--community", ricoh) == "0505571100"
    assert serial("--community", "nobody") is None


@pytest.fixture
def v3_printer(shared_recordings: Path, tmp_path: Path) -> Iterator[SnmpSim]:
    copy_recordings([shared_recordings / "librenms__konica_c250i.snmprec"], tmp_path / "data")
    address = "127.0.1.211"
    sim = start_snmpsim(
        tmp_path / "data", tmp_path, address=address, port=free_udp_port(address), v3_user=V3User()
    )
    yield sim
    sim.stop()


def test_snmpv3_auth_priv_with_key_files(v3_printer: SnmpSim, tmp_path: Path) -> None:
    user, sim = V3User(), v3_printer
    auth_file = tmp_path / "auth.key"
    auth_file.write_text(user.auth_key + "\n")
    priv_file = tmp_path / "priv.key"
    priv_file.write_text(user.priv_key + "\n")
    base = [sim.address, "--snmp-port", str(sim.port), "--v3-user", user.user, *FAST]
    base += ["--v3-context", "librenms__konica_c250i"]
    run = run_scan(
        *base,
        "--v3-auth-protocol",
        "SHA256",
        "--v3-auth-key-file",
        str(auth_file),
        "--v3-priv-protocol",
        "AES",
        "--v3-priv-key-file",
        str(priv_file),
    )
    assert run.returncode == 0, run.stderr
    (read,) = run.reads()
    assert read["identity"]["serial"] == "AA2M021115700"
    assert user.auth_key not in run.stderr + run.stdout
    assert user.priv_key not in run.stderr + run.stdout
    wrong = run_scan(
        *base,
        "--v3-auth-protocol",
        "SHA256",
        "--v3-auth-key",
        "not-the-key-1",
        "--v3-priv-protocol",
        "AES",
        "--v3-priv-key-file",
        str(priv_file),
    )
    assert wrong.returncode == 1, wrong.stderr  # no printer read, as snmpget exits 1
    assert wrong.reads() == []
    assert "not-the-key-1" not in wrong.stderr


# --- exit status and argument errors -------------------------------------------------------


def test_a_sweep_that_finds_nothing_is_exit_1_without_the_named_host_hint() -> None:
    run = run_scan("127.0.1.250-251", "--snmp-port", "9", *FAST)
    assert run.returncode == 1, run.stderr  # nothing found: 1, as grep; 2 is usage only
    assert run.stdout == ""
    assert "2 addresses scanned, 0 printers, 0 not a printer, 2 silent" in run.stderr
    assert "no answer from" not in run.stderr


def test_a_silent_named_host_is_exit_1_with_a_hint() -> None:
    run = run_scan("127.0.1.250", "--snmp-port", "9", "--community", "x", *FAST)
    assert run.returncode == 1, run.stderr
    assert run.stdout == ""
    assert "1 address scanned, 0 printers, 0 not a printer, 1 silent" in run.stderr
    assert (
        "no answer from 127.0.1.250 with v2c community 'x': wrong community, SNMP off, "
        "or a firewall?" in run.stderr
    )


def test_a_silent_v3_host_names_the_user_never_the_key(tmp_path: Path) -> None:
    key = tmp_path / "auth.key"
    key.write_text("s3cret-auth-key\n")
    run = run_scan(
        "127.0.1.250",
        "--snmp-port",
        "9",
        "--v3-user",
        "ops",
        "--v3-auth-key-file",
        str(key),
        *FAST,
    )
    assert run.returncode == 1, run.stderr
    assert "no answer from 127.0.1.250 with v3 user 'ops': wrong user or keys" in run.stderr
    assert "s3cret" not in run.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["127.0.0.1", "--timeout", "soon"], "--timeout"),
        (["127.0.0.1", "--snmp-port", "70000"], "--snmp-port"),
        (["127.0.0.1", "--format", "xml"], "--format"),
        (["127.0.0.1", "--concurrency", "0"], "--concurrency"),
        (["300.1.2.3"], "300.1.2.3"),
        (["127.0.0.1", "--exclude", "10.0.0.0/33"], "--exclude"),
        (["127.0.0.1", "--v3-auth-key", "abcdefgh12"], "--v3-user"),
        (["127.0.0.1", "--v3-user", "u", "--v3-auth-key", "short"], "--v3-user"),
        (["127.0.0.1", "--v3-user", "u", "--v3-auth-key-file", "/nonexistent/key"], "--v3-auth"),
        ([], "TARGET"),
    ],
)
def test_bad_arguments_exit_2_and_name_the_argument(args: list[str], named: str) -> None:
    run = run_scan(*args)
    assert run.returncode == 2, run.stderr
    assert named in run.stderr
    assert "Traceback" not in run.stderr


def test_an_unwritable_stdout_is_exit_1(mixed_fleet: Fleet, tmp_path: Path) -> None:
    read_only = tmp_path / "out"
    read_only.write_text("")
    with read_only.open("rb") as handle:  # a descriptor open for reading only
        run = run_scan(
            "127.0.1.201",
            "--snmp-port",
            str(mixed_fleet.port),
            "--format",
            "json",
            *FAST,
            stdout=handle,
        )
    assert run.returncode == 1, run.stderr
    assert "cannot write to standard output" in run.stderr
    assert "Traceback" not in run.stderr
