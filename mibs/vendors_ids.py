"""Identity data in makers' private MIBs, and IEEE 1284 device ids.

Each private OID names where we know it from: the vendor MIB, the open
project that reads it (CUPS snmp backend, GLPI agent ``Tools/Hardware.pm`` and
``MibSupport/*.pm``, LibreNMS os polling), and "recording" where one of the
real recordings in ../shared/recordings answers it with the expected kind of
value. A private OID is only trusted for the enterprise it belongs to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mibs.values import Oid


@dataclass(frozen=True)
class VendorOid:
    """A vendor-private scalar: what it holds, and where we know it from."""

    enterprise: int
    oid: Oid
    source: str


ENTERPRISES: Oid = (1, 3, 6, 1, 4, 1)
_E = ENTERPRISES

# IEEE 1284 device id strings in private MIBs.
VENDOR_1284_IDS: tuple[VendorOid, ...] = (
    VendorOid(11, _E + (11, 2, 3, 9, 1, 1, 7, 0), "HP JetDirect npSysDeviceId (CUPS snmp backend)"),
    VendorOid(641, _E + (641, 2, 1, 2, 1, 3, 1), "LEXMARK-ROM-MIB (CUPS snmp backend)"),
    VendorOid(367, _E + (367, 3, 2, 1, 1, 1, 11, 0), "RICOH-MIB ricohSysDeviceID (CUPS)"),
    VendorOid(253, _E + (253, 8, 51, 1, 2, 1, 20, 1), "XEROX-HOST-RESOURCES-EXT-MIB (recording)"),
    VendorOid(128, _E + (128, 2, 1, 3, 1, 2, 0), "Xerox/Tektronix device id (CUPS snmp backend)"),
    # Brother mirrors HP's JetDirect layout under its own enterprise (recording).
    VendorOid(2435, _E + (2435, 2, 3, 9, 1, 1, 7, 0), "Brother net-peripheral device id"),
    VendorOid(674, _E + (674, 10898, 100, 2, 1, 2, 1, 3, 1), "Dell printer MIB (recording)"),
)

# Serial numbers in private MIBs (GLPI agent Tools/Hardware.pm _getSerial and
# MibSupport/*.pm, LibreNMS os polling; confirmed by recordings where marked).
VENDOR_SERIALS: tuple[VendorOid, ...] = (
    VendorOid(11, _E + (11, 2, 3, 9, 4, 2, 1, 1, 3, 3, 0), "HP serial number (recording)"),
    VendorOid(253, _E + (253, 8, 53, 3, 2, 1, 3, 1), "XEROX-GENERAL-MIB (GLPI)"),
    VendorOid(367, _E + (367, 3, 2, 1, 2, 1, 4, 0), "RICOH-MIB ricohEngSerialNumber (recording)"),
    VendorOid(641, _E + (641, 2, 1, 2, 1, 6, 1), "LEXMARK-ROM-MIB (GLPI)"),
    VendorOid(1602, _E + (1602, 1, 2, 1, 4, 0), "CANON-MIB (GLPI)"),
    VendorOid(1602, _E + (1602, 1, 2, 1, 8, 1, 3, 1, 1), "CANON-MIB (GLPI MibSupport/Canon)"),
    VendorOid(2435, _E + (2435, 2, 3, 9, 4, 2, 1, 5, 5, 1, 0), "BROTHER-MIB (recording)"),
    VendorOid(1248, _E + (1248, 1, 2, 2, 1, 1, 1, 5, 1), "EPSON private MIB (GLPI)"),
    VendorOid(2001, _E + (2001, 1, 1, 1, 1, 11, 1, 10, 45, 0), "OKI private MIB (GLPI)"),
    VendorOid(1347, _E + (1347, 43, 5, 1, 1, 28, 1), "KYOCERA-MIB (LibreNMS kyocera)"),
)

# Firmware versions in private MIBs.
VENDOR_FIRMWARE: tuple[VendorOid, ...] = (
    VendorOid(367, _E + (367, 3, 2, 1, 1, 1, 2, 0), "RICOH-MIB ricohSysVers (recording)"),
    VendorOid(1602, _E + (1602, 1, 1, 1, 4, 0), "CANON-MIB firmware version (recording)"),
    VendorOid(674, _E + (674, 10898, 100, 1, 1, 1, 0), "Dell printer firmware (recording)"),
    VendorOid(2435, _E + (2435, 2, 4, 3, 1240, 6, 5, 0), "Brother firmware (recording)"),
    VendorOid(1347, _E + (1347, 43, 5, 4, 1, 5, 1, 1), "KYOCERA-MIB (LibreNMS kyocera)"),
)

# Model names in private MIBs, the last resort for the model.
VENDOR_MODELS: tuple[VendorOid, ...] = (
    VendorOid(367, _E + (367, 3, 2, 1, 1, 1, 1, 0), "RICOH-MIB ricohSysName (recording)"),
    VendorOid(1602, _E + (1602, 1, 1, 1, 1, 0), "CANON-MIB model (recording)"),
    VendorOid(1347, _E + (1347, 43, 5, 1, 1, 1, 1), "KYOCERA-MIB (LibreNMS kyocera)"),
    VendorOid(18334, _E + (18334, 1, 1, 1, 1, 6, 2, 1, 0), "Konica Minolta model (recording)"),
)


def vendor_identity_oids(enterprise: int | None) -> tuple[VendorOid, ...]:
    """Every private identity OID worth asking a device of this enterprise."""
    tables = (VENDOR_1284_IDS, VENDOR_SERIALS, VENDOR_FIRMWARE, VENDOR_MODELS)
    return tuple(item for table in tables for item in table if item.enterprise == enterprise)


# --- IEEE 1284 device ids ----------------------------------------------------

_1284_KEYS = {
    "MFG": "MFG",
    "MANUFACTURER": "MFG",
    "MDL": "MDL",
    "MODEL": "MDL",
    "CMD": "CMD",
    "COMMAND SET": "CMD",
    "COMMANDSET": "CMD",
    "CLS": "CLS",
    "CLASS": "CLS",
    "DES": "DES",
    "DESCRIPTION": "DES",
    "SN": "SN",
    "SERN": "SN",
    "SERIALNUMBER": "SN",
    "SERIAL NUMBER": "SN",
}


def parse_1284(device_id: str | None) -> dict[str, str]:
    """``"MFG:HP;MDL:LaserJet;"`` to ``{"MFG": "HP", "MDL": "LaserJet"}``.

    IEEE 1284-2000 section 7.6: ``key:value;`` pairs, keys case-sensitive in
    the standard but sent in every case in practice, long forms
    (``MANUFACTURER``, ``MODEL``, ``COMMAND SET``) equal to the short ones.
    Keys are upper-cased and long forms mapped to the short ones; unknown
    keys are kept upper-cased; the first occurrence of a key wins; empty
    values are dropped.
    """
    fields: dict[str, str] = {}
    if not device_id:
        return fields
    for part in device_id.split(";"):
        key, sep, value = part.partition(":")
        if not sep:
            continue
        name = " ".join(key.split()).upper()
        name = _1284_KEYS.get(name, name)
        value = value.strip()
        if name and value and name not in fields:
            fields[name] = value
    return fields


# Versions spelled out in sysDescr (recordings): Brother "Firmware Ver.1.01
# (08.12.12)", Dell "version NH62.YS.N636", others "FW:x", "Firmware: x".
_SYSDESCR_FIRMWARE = (
    re.compile(r"\bfirmware\s*ver(?:sion)?\.?\s*:?\s*([^,;]+)", re.IGNORECASE),
    re.compile(r"\b(?:FW|FWVER|firmware)\s*:\s*([^,;\s]+)", re.IGNORECASE),
    re.compile(r"\bversion\s+([^\s,;]+)", re.IGNORECASE),
    # Xerox: "Xerox AltaLink C8045; SS 100.002.057.09608, NC ..." (System Software)
    re.compile(r";\s*SS\s+([\d.]+)"),
)


def firmware_from_sys_descr(sys_descr: str | None) -> str | None:
    if not sys_descr:
        return None
    for pattern in _SYSDESCR_FIRMWARE:
        match = pattern.search(sys_descr)
        if match:
            version = " ".join(match.group(1).split())
            if version:
                return version
    return None
