"""Vendor page-counter tables, as data, keyed by IANA enterprise number.

Used only when the standard sources (Printer-MIB ``prtMarkerLifeCount``, then
the PWG Imaging System Counter MIB) do not give a counter: see
:mod:`mibs.counters` for the precedence. Every entry names where it comes
from. "GLPI" is ``glpi-project/glpi-agent`` ``lib/GLPI/Agent/SNMP/MibSupport``;
"notes" is ``PRINTER_SNMP_NOTES.md`` (itself from GLPI and PrintMaster). An
entry is here only when at least one public source documents it; entries
whose meaning two sources disagree on were left out (Kyocera's
``…1347.42.3.1.1.1.1.<n>`` per-function totals: one source reads ``.2`` as
copies, another as colour prints).

Three shapes:

* :class:`VendorScalar`: one counter from fixed OIDs. ``how="first"`` takes
  the first OID the device answered (models of one vendor disagree on the
  OID); ``how="sum"`` adds the OIDs and is used only where the parts are
  disjoint meters of the same unit and the same media class that together
  make the whole (Canon black large + colour large = large). Large and small
  pages are never added together (they are billed at different prices). A sum
  is reported only when every part answered. Several entries may fill one
  counter: the first that answers wins (Canon ``large``: counter 103, else
  112 + 122).
* :class:`VendorRecords`: a counter blob of 7-byte records (Brother).
* :class:`VendorTypedTable`: a table whose rows say what they count in a type
  column (Ricoh, Lexmark). Rows of the same counter are added.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from mibs.models import CounterName
from mibs.values import Oid, parse_oid


@dataclass(frozen=True)
class VendorScalar:
    counter: CounterName
    oids: tuple[Oid, ...]
    source: str
    how: Literal["first", "sum"] = "first"


@dataclass(frozen=True)
class VendorRecords:
    """One OCTET STRING of 7-byte records (code, 0x01, 0x04, 4-byte value): Brother."""

    oid: Oid
    codes: Mapping[int, CounterName]
    source: str


@dataclass(frozen=True)
class VendorTypedTable:
    type_column: Oid
    value_column: Oid
    types: Mapping[int, CounterName]
    source: str


def _s(
    counter: CounterName, *oids: str, source: str, how: Literal["first", "sum"] = "first"
) -> VendorScalar:
    return VendorScalar(counter, tuple(parse_oid(o) for o in oids), source, how)


HP = 11
KONICA_MINOLTA = 18334
RICOH = 367
KYOCERA = 1347
CANON = 1602
XEROX = 253
SHARP = 2385
LEXMARK = 641
BROTHER = 2435
EPSON = 1248

_HP_ENGINE = "1.3.6.1.4.1.11.2.3.9.4.2.1.4.1.2"  # HP-LASERJET-COMMON-MIB status-prt-eng
_HP_SRC = "HP-LASERJET-COMMON-MIB status-prt-eng; GLPI HPNetPeripheral.pm"
# HP FutureSmart billing meters: letter/A4-equivalent ("8x11") impressions, mono .1
# and colour .2 (HP Inc.'s JetAdvantage field script, "designed for billing").
_HP_EQUIV = "1.3.6.1.4.1.11.2.3.9.4.2.1.1.16.1.20"
_HP_EQUIV_SRC = "HP FutureSmart 8x11 (A4/Letter-equivalent) impressions; HP JetAdvantage script"
_KM = "1.3.6.1.4.1.18334.1.1.1.5.7.2"  # KONICAMINOLTA-MIB kmSysPrintCounter
_KM_SRC = "GLPI Konica.pm (konicaPrinterCounters)"
_KY = "1.3.6.1.4.1.1347.42.3.1.2.1.1"  # KYOCERA-MIB function counter: .<fn>.<colour mode>
_KY_SRC = (
    "KYOCERA-MIB function counters (fn 1 print, 2 copy, 4 fax; mode 1 B/W, 3 full colour); notes"
)
_CANON = "1.3.6.1.4.1.1602.1.11.1.3.1.4"  # CANON-MIB counter value by counter id
_CANON_SRC = (
    "CANON-MIB counter value by counter id; ids from Canon's PRISMAsync billing-counter "
    "table (101 Total 1 = A4 + A3, 103 Total Large = A3, 104 Total Small = A4, 112 B/W "
    "A3, 113 B/W A4, 122 Colour A3, 123 Colour A4) and the imagePRESS C800 service "
    "guide (108 Total (Black 1)); 301 Print Total 1, 501 Scan Total 1 from notes"
)
_XEROX = "1.3.6.1.4.1.253.8.53.13.2.1"  # XEROX-HOST-RESOURCES-EXT-MIB xcmHrDevDetailEntry
_XEROX_SRC = "XEROX-HOST-RESOURCES-EXT-MIB xcmHrDevDetail; GLPI Xerox.pm"
_SHARP = "1.3.6.1.4.1.2385.1.1.19.2.1.3"  # Sharp counter values; labels in sibling column .4
_SHARP_SRC = (
    "Sharp private counter table; meaning from the device's own labels in column "
    "…2385.1.1.19.2.1.4 (LibreNMS sharp_mxm266nv recording); notes"
)
_EPSON = "1.3.6.1.4.1.1248.1.2.2.27.1.1"
_EPSON_SRC = "EPSON private page counters; PrintMaster VENDOR_METER_ANALYSIS (varies by generation)"

VENDOR_SCALARS: Mapping[int, tuple[VendorScalar, ...]] = {
    HP: (
        _s("total", f"{_HP_ENGINE}.5.0", source=f"{_HP_SRC} total-engine-page-count"),
        _s("mono", f"{_HP_ENGINE}.6.0", source=f"{_HP_SRC} total-mono-page-count"),
        _s("color", f"{_HP_ENGINE}.7.0", source=f"{_HP_SRC} total-color-page-count"),
        _s("duplex", f"{_HP_ENGINE}.22.0", source=f"{_HP_SRC} duplex-page-count"),
        _s("a4_equivalent_mono", f"{_HP_EQUIV}.1.2.0", source=f"{_HP_EQUIV_SRC} mono"),
        _s("a4_equivalent_color", f"{_HP_EQUIV}.2.2.0", source=f"{_HP_EQUIV_SRC} colour"),
        _s(
            "a4_equivalent",
            f"{_HP_EQUIV}.1.2.0",
            f"{_HP_EQUIV}.2.2.0",
            source=f"{_HP_EQUIV_SRC} mono + colour",
            how="sum",
        ),
    ),
    KONICA_MINOLTA: (
        _s("total", f"{_KM}.1.1.0", source=f"{_KM_SRC} konicaTotal"),
        _s("duplex", f"{_KM}.1.3.0", source=f"{_KM_SRC} konicaRectoVerso"),
        _s("copy_mono", f"{_KM}.2.1.5.1.1", source=f"{_KM_SRC} konicaBlackCopy"),
        _s("print_mono", f"{_KM}.2.1.5.1.2", source=f"{_KM_SRC} konicaBlackPrint"),
        _s("copy_color", f"{_KM}.2.1.5.2.1", source=f"{_KM_SRC} konicaColorCopy"),
        _s("print_color", f"{_KM}.2.1.5.2.2", source=f"{_KM_SRC} konicaColorPrint"),
        _s("scan", f"{_KM}.3.1.5.1", source=f"{_KM_SRC} konicaScans"),
    ),
    KYOCERA: (
        _s("total", "1.3.6.1.4.1.1347.43.10.1.1.12.1.1", source="KYOCERA-MIB total; notes"),
        _s("print_mono", f"{_KY}.1.1", source=_KY_SRC),
        _s("print_color", f"{_KY}.1.3", source=_KY_SRC),
        _s("copy_mono", f"{_KY}.2.1", source=_KY_SRC),
        _s("copy_color", f"{_KY}.2.3", source=_KY_SRC),
        _s("fax", f"{_KY}.4.1", source=f"{_KY_SRC}; fax prints are B/W only"),
        _s("scan", "1.3.6.1.4.1.1347.46.10.1.1.5.3", source="notes (GLPI); not vendor-documented"),
    ),
    CANON: (
        # Large (A3/11x17) and small (A4/Letter) pages are billed apart: they are
        # kept apart, never added into one mono or colour figure. A large sum
        # adds only large meters (black large + colour large), each part an
        # impression on large media.
        _s("total", f"{_CANON}.101", source=_CANON_SRC),
        _s("mono", f"{_CANON}.108", source=_CANON_SRC),
        _s("large", f"{_CANON}.103", source=_CANON_SRC),
        _s("large", f"{_CANON}.112", f"{_CANON}.122", source=_CANON_SRC, how="sum"),
        _s("small", f"{_CANON}.104", source=_CANON_SRC),
        _s("small", f"{_CANON}.113", f"{_CANON}.123", source=_CANON_SRC, how="sum"),
        _s("large_mono", f"{_CANON}.112", source=_CANON_SRC),
        _s("large_color", f"{_CANON}.122", source=_CANON_SRC),
        _s("print", f"{_CANON}.301", source=_CANON_SRC),
        _s("scan", f"{_CANON}.501", source=_CANON_SRC),
    ),
    XEROX: (
        # glpi-agent #1155: on a C315 this is 4 below the true count; the
        # Printer-MIB total wins whenever the device has one.
        _s("total", f"{_XEROX}.6.1.20.1", source=f"{_XEROX_SRC} xeroxTotalPrint"),
        _s("color", f"{_XEROX}.6.1.20.33", source=f"{_XEROX_SRC} xeroxColorPrint"),
        _s("mono", f"{_XEROX}.6.1.20.34", source=f"{_XEROX_SRC} xeroxBlackPrint"),
        _s("copy_mono", f"{_XEROX}.6.11.20.3", source=f"{_XEROX_SRC} xeroxBlackCopy"),
        _s("copy_color", f"{_XEROX}.6.11.20.25", source=f"{_XEROX_SRC} xeroxColorCopy"),
        _s(
            "scan",
            f"{_XEROX}.6.10.20.11",
            f"{_XEROX}.6.10.20.12",
            source=f"{_XEROX_SRC} scans sent by e-mail + saved on network",
            how="sum",
        ),
    ),
    SHARP: (
        _s("print", f"{_SHARP}.1.4.60", source=f"{_SHARP_SRC} 'Prints'"),
        _s("print_mono", f"{_SHARP}.1.4.61", source=f"{_SHARP_SRC} 'Black & White Print Count'"),
        _s("copy", f"{_SHARP}.4.4.60", source=f"{_SHARP_SRC} 'Copies'"),
        _s("copy_mono", f"{_SHARP}.4.4.61", source=f"{_SHARP_SRC} 'Black & White Copy Count'"),
        _s("mono", f"{_SHARP}.5.4.61", source=f"{_SHARP_SRC} 'Black & White Total Count'"),
        _s("color", f"{_SHARP}.5.4.63", source=f"{_SHARP_SRC} 'Full Color Total Count'"),
        _s("scan", f"{_SHARP}.8.4.50", source=f"{_SHARP_SRC} 'Scan to E-mail/FTP'"),
    ),
    BROTHER: (
        _s(
            "scan",
            "1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.54.2.2.1.3.3",
            source="BROTHER-MIB scan counter; notes (GLPI)",
        ),
    ),
    EPSON: (
        _s("total", f"{_EPSON}.30.1.1", f"{_EPSON}.33.1.1", source=_EPSON_SRC),
        _s("mono", f"{_EPSON}.3.1.1", f"{_EPSON}.6.1.1", source=_EPSON_SRC),
        _s("color", f"{_EPSON}.4.1.1", source=_EPSON_SRC),
    ),
}

_RICOH_COUNTER = "1.3.6.1.4.1.367.3.2.1.2.19.5.1"  # RICOH-PRIVATE-MIB ricohEngCounterEntry
_LEXMARK_COUNT = "1.3.6.1.4.1.641.6.4.2.1.1"  # LEXMARK-MPS-MIB paperGeneralCountEntry

VENDOR_TABLES: Mapping[int, tuple[VendorTypedTable, ...]] = {
    RICOH: (
        VendorTypedTable(
            type_column=parse_oid(f"{_RICOH_COUNTER}.2"),
            value_column=parse_oid(f"{_RICOH_COUNTER}.9"),
            # 202/203 and 402/403 are full-colour and single/two-colour; GLPI adds them.
            types={
                10: "total",
                200: "copy",
                201: "copy_mono",
                202: "copy_color",
                203: "copy_color",
                300: "fax",
                400: "print",
                401: "print_mono",
                402: "print_color",
                403: "print_color",
                870: "scan",
                871: "scan",
            },
            source="RICOH-PRIVATE-MIB ricohEngCounterType/Value; GLPI Ricoh.pm",
        ),
    ),
    LEXMARK: (
        VendorTypedTable(
            type_column=parse_oid(f"{_LEXMARK_COUNT}.2"),
            value_column=parse_oid(f"{_LEXMARK_COUNT}.4"),
            types={
                16: "print",
                17: "print_mono",
                18: "print_color",
                32: "copy",
                33: "copy_mono",
                34: "copy_color",
                48: "fax",
            },
            source="LEXMARK-MPS-MIB paperGeneralCountType (printTotal 16 ... faxTotal 48)",
        ),
    ),
}


VENDOR_RECORDS: Mapping[int, tuple[VendorRecords, ...]] = {
    BROTHER: (
        VendorRecords(
            oid=parse_oid("1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.10.0"),
            # 0x00 printed pages, 0x01 black-and-white, 0x02 colour. Codes 0x06-0x08
            # are seen (0x06 = 0x07 + 0x08 on a DCP-L3550CDW) but undocumented: not read.
            codes={0x00: "total", 0x01: "mono", 0x02: "color"},
            source="Brother private counter data; codes as read by bieniu/brother (const.py)",
        ),
    ),
}
