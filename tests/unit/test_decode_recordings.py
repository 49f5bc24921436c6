"""Whole-read decode of real recordings (../shared/recordings) and our own synthetic ones.

Expected values come from reading each recording against the RFCs (RFC 2790
Host Resources, RFC 3805 Printer-MIB, RFC 2863 IF-MIB) and the vendor MIBs
named in mibs/identity.py, not from running the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mibs.decode import decode_read
from mibs.identity import classify_device, stable_device_id
from mibs.models import PrinterRead
from mibs.snmprec import load_varbinds

AT = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Expected:
    vendor: str
    model: str
    serial: str | None
    mac: str | None
    firmware: str | None
    device_status: str | None
    errors: tuple[str, ...] = ()
    hr_index: int = 1


SHARED: dict[str, Expected] = {
    # sysObjectID 2435 = Brother. Serial only in the Brother private MIB
    # (2435.2.3.9.4.2.1.5.5.1.0; the recording has no prtGeneralSerialNumber).
    # Model from the 1284 MDL in Brother's net-peripheral device id. ifType 7
    # (iso88023Csmacd) at ifIndex 1 is the first Ethernet-like interface; the
    # device's own "[001ba90ba752]" model string confirms it. Firmware from
    # Brother's firmware OID "Firmware Ver.1.01 (08.12.12)".
    "librenms__brother_hl5370dw": Expected(
        "Brother", "HL-5370DW series", "B9J154306", "00:1b:a9:0b:a7:52",
        "1.01 (08.12.12)", "running",
    ),
    # Canon 1602; model from hrDeviceDescr "Canon LBP6670" minus the maker;
    # firmware from the Canon private OID 1602.1.1.1.4.0 ("R7.21").
    "librenms__canonprinter_lbp": Expected(
        "Canon", "LBP6670", "MKRA012345", "88:87:17:00:00:00", "R7.21", "running",
    ),
    # Dell 674: the brand on the box, whoever built the engine. Model from the
    # Dell 1284 id "COMMAND SET:;MODEL:Dell S5830dn" (long key forms). The
    # Ethernet MAC is ifIndex 2 (ifType 6); ifIndex 1 is loopback (24) with
    # an empty address.
    "librenms__dell-laser_s5830dn": Expected(
        "Dell", "S5830dn", "7XQ1R92-132-13", "00:21:b7:43:f5:81", "NH62.YS.N636", "running",
    ),
    # Epson: hrPrinterDetectedErrorState is a zero-length OCTET STRING, i.e. no
    # bit set (RFC 2790 allows any length); hrDeviceStatus warning(3) stands.
    "librenms__epson": Expected(
        "Epson", "WF-C5790BA", "X3B8022793", "9c:ae:d3:aa:d6:c5", None, "warning",
    ),
    # HP: 1284 MDL is the driver family "HP LaserJet MFP M129-M134"; DES names
    # the device. ifIndex 2 is the first ethernetCsmacd with an address.
    "librenms__jetdirect_m130nw": Expected(
        "HP", "LaserJet MFP M130nw", "VNCRC48198", "14:cb:19:95:2e:a0", None, "running",
    ),
    # Konica Minolta: error state 0x0100. RFC 2790 numbers bits from the MSB of
    # the first octet, so 0x01 in octet 0 is bit 7 serviceRequested (an LSB-first
    # reading would claim lowPaper). hrDeviceStatus warning(3) agrees.
    "librenms__konica_c250i": Expected(
        "Konica Minolta", "bizhub C250i", "AA2M021115700", "00:20:6b:4a:f3:25", None,
        "warning", ("service_requested",),
    ),
    # Ricoh: serial in both prtGeneralSerialNumber and ricohEngSerialNumber
    # (equal); firmware from ricohSysVers "2.20". Status warning(3) with no
    # error bit: RFC 2790 lets a warning come from an alert, not only a bit.
    "librenms__ricoh_mpc3002": Expected(
        "Ricoh", "Aficio MP C3002", "W492KB03439", "00:26:73:54:e2:6a", "2.20", "warning",
    ),
    # Sharp: serial from prtGeneralSerialNumber (RFC 3805), not the Sharp
    # private 2385.2.1.1.2.1.3.1 value "0505250000Z" which no MIB we hold names.
    "librenms__sharp_mxm266nv": Expected(
        "Sharp", "MX-M266NV", "0505571100", "ac:a8:8e:25:69:6c", None, "running",
    ),
    # Xerox: the trimmed recording has no hrDeviceTable and no ifTable; the
    # printer row (1) comes from prtMarkerSuppliesTable's index (RFC 3805
    # indexes it by hrDeviceIndex). No serial anywhere: reported missing.
    # Firmware: Xerox's sysDescr "SS" (system software) version.
    "librenms__xerox": Expected(
        "Xerox", "AltaLink C8045", None, None, "100.002.057.09608", None,
    ),
}  # fmt: skip


def _read(path: Path) -> PrinterRead:
    return decode_read("127.0.0.1", AT, load_varbinds(path.read_text()))


def test_every_shared_recording_has_an_expectation(shared_recordings: Path) -> None:
    assert {p.stem for p in shared_recordings.glob("*.snmprec")} == set(SHARED)


@pytest.mark.parametrize("name", sorted(SHARED))
def test_shared_recording_identity_and_status(shared_recordings: Path, name: str) -> None:
    expected = SHARED[name]
    path = shared_recordings / f"{name}.snmprec"
    read = _read(path)
    ident = read.identity
    assert ident.vendor == expected.vendor
    assert ident.model == expected.model
    assert ident.serial == expected.serial
    assert ident.mac == expected.mac
    assert ident.firmware == expected.firmware
    assert ident.hr_device_index == expected.hr_index
    assert ident.is_printer
    assert read.status.device_status == expected.device_status
    assert tuple(read.status.errors) == expected.errors
    assert read.status.alerts == []  # none of these recordings carries prtAlertTable rows
    assert classify_device(load_varbinds(path.read_text())) == "printer"
    assert not [p for p in read.problems if p.reason == "decoder_error"]
    identity_problems = [
        (p.field, p.reason) for p in read.problems if p.field.startswith("identity")
    ]
    if expected.serial is None:
        assert identity_problems == [("identity.serial", "missing")]
    else:
        assert identity_problems == []
        assert (
            stable_device_id(ident)
            == f"sn:{expected.vendor.lower().replace(' ', '-')}:{expected.serial}"
        )
    # the read survives a JSON round trip (what the uploader signs)
    assert PrinterRead.model_validate_json(read.model_dump_json()) == read


def test_own_colour_mfp_on_hr_device_index_2(own_recordings: Path) -> None:
    """tests/data/recordings/colour_mfp_hr2.snmprec, written from RFC 2790/3805 and PWG 5106.1.

    hrDeviceIndex 1 is a processor whose hrDeviceStatus is down(5) and which
    has a decoy alert (jam): none of it belongs to the printer on index 2.
    """
    read = _read(own_recordings / "colour_mfp_hr2.snmprec")
    ident = read.identity
    assert (ident.vendor, ident.model, ident.serial) == ("Lexmark", "CX725", "LX7C2A0B1234")
    assert ident.hr_device_index == 2
    assert ident.hr_device_descr == "Lexmark CX725"
    # Ethernet ifIndex 3 beats Wi-Fi ifIndex 2 and loopback ifIndex 1
    assert ident.mac == "00:21:b7:12:34:56"
    assert ident.firmware == "CXTPC.081.234"
    assert ident.uptime_seconds == 86400.0
    assert (ident.sys_name, ident.location, ident.contact) == (
        "prn-floor2-east",
        "Building 1, floor 2",
        "Facilities desk",
    )
    assert stable_device_id(ident) == "sn:lexmark:LX7C2A0B1234"

    status = read.status
    assert (status.printer_status, status.device_status) == ("idle", "warning")
    # 0x20 0x04: bit 2 lowToner, bit 13 inputTrayEmpty (RFC 3805 second octet)
    assert status.errors == ["low_toner", "input_tray_empty"]
    assert [(a.index, a.severity, a.group, a.code) for a in status.alerts] == [
        (1, "warning", "markerSupplies", "markerTonerAlmostEmpty"),
        (3, "warning", "input", "inputMediaSupplyEmpty"),
        (4, "warningBinaryChangeEvent", "cover", "coverClosed"),
    ]
    assert status.alerts[1].description == "Tray 2 Empty"

    assert read.counters.total == 123456
    assert read.counters.unit == "impressions"
    assert (read.counters.mono, read.counters.color) == (100000, 23456)
    assert read.counter_sources["total"] == "1.3.6.1.2.1.43.10.2.1.4.2.1"
    kinds = [(s.type, s.colorant) for s in read.supplies]
    assert kinds == [
        ("toner_cartridge", "black"),
        ("toner_cartridge", "cyan"),
        ("toner_cartridge", "magenta"),
        ("toner_cartridge", "yellow"),
        ("opc", None),
        ("fuser", None),
        ("waste_toner", None),
    ]
    assert read.problems == []


def test_own_generic_agent_with_placeholder_serial(own_recordings: Path) -> None:
    """A net-snmp agent (enterprise 8072) in front of a Pantum: the 1284 MFG names
    the maker; the only serial is a placeholder; no hrDeviceTable, so the
    printer row (3) comes from the Printer-MIB tables; the error state comes
    as an INTEGER 64 = octet 0x40 = bit 1 noPaper."""
    read = _read(own_recordings / "generic_agent_placeholder.snmprec")
    ident = read.identity
    assert (ident.vendor, ident.model, ident.serial) == ("Pantum", "P3300DW Series", None)
    assert ident.enterprise == 8072
    assert ident.hr_device_index == 3
    assert stable_device_id(ident) == "mac:5c:fb:3a:0d:7d:f0"
    assert read.status.printer_status == "other"
    assert read.status.errors == ["no_paper"]
    assert read.counters.total == 5321
    assert [(p.field, p.oid, p.reason) for p in read.problems] == [
        ("identity.serial", "1.3.6.1.2.1.43.5.1.1.17.3", "placeholder")
    ]


def test_every_own_recording_decodes_without_decoder_errors(own_recordings: Path) -> None:
    paths = sorted(own_recordings.glob("*.snmprec"))
    assert len(paths) >= 2
    for path in paths:
        read = _read(path)
        assert read.identity.is_printer, path.name
        assert not [p for p in read.problems if p.reason == "decoder_error"], path.name


def test_own_recordings_are_in_oid_order(own_recordings: Path) -> None:
    # snmpsim answers GETNEXT/GETBULK by the file's line order: an unsorted
    # recording silently hides rows from a walk (found the hard way).
    for path in sorted(own_recordings.glob("*.snmprec")):
        oids = [
            tuple(int(arc) for arc in line.split("|", 1)[0].split("."))
            for line in path.read_text().splitlines()
            if line.strip()
        ]
        assert oids == sorted(oids), path.name
