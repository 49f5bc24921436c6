"""Who the device is: vendor, model, serial, firmware, MAC, and its printer row.

Sources, in the order they are trusted, are tables of data below; every OID
names the MIB it comes from. The decisions:

* **Printer row** (``hr_device_index``): the first ``hrDeviceIndex`` whose
  ``hrDeviceType`` is ``hrDevicePrinter`` (RFC 2790), preferring a row the
  Printer-MIB tables actually use; failing that, the first index of a
  Printer-MIB table (RFC 3805 indexes them by ``hrDeviceIndex``). Never ``.1``
  by assumption.
* **Vendor**: the brand on the box is the sysObjectID enterprise (a Dell laser
  made by another firm still says Dell there), unless that enterprise is a
  generic agent or print server (:data:`mibs.enterprises.GENERIC_AGENTS`) or
  unknown; then the IEEE 1284 ``MFG`` field, then the first word of
  hrDeviceDescr / sysDescr.
* **Model**: 1284 ``MDL``, unless it names a model range (HP sends
  ``MDL:HP LaserJet MFP M129-M134`` for an M130nw), then 1284 ``DES``; else
  hrDeviceDescr of the printer row; else sysDescr; then vendor-private model
  OIDs. A leading vendor name is stripped (vendor is its own field).
* **Serial**: prtGeneralSerialNumber of the printer row, then the vendor's own
  serial OID, then ENTITY-MIB entPhysicalSerialNum, then a 1284 ``SN``/``SERN``
  key. Normalised by :func:`mibs.text.normalise_serial`.
* **Firmware**: ENTITY-MIB entPhysicalFirmwareRev / SoftwareRev, then the
  vendor's firmware OID, then (printers only: a Windows or Linux host's
  sysDescr "Version 6.3" is not printer firmware) a version the sysDescr
  spells out.
* **MAC**: the first valid 6-octet ifPhysAddress of an Ethernet-like
  interface (by ifIndex), then of Wi-Fi, then of any non-loopback interface.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Literal

from mibs.enterprises import (
    BY_ENTERPRISE,
    GENERIC_AGENTS,
    Maker,
    enterprise_of,
    maker_by_alias,
    strip_maker_prefix,
)
from mibs.models import Identity, Problem
from mibs.reasons import Reason
from mibs.text import decode_text_detail, format_mac, normalise_serial
from mibs.values import Oid, Value, Varbinds, column, format_oid
from mibs.vendors_ids import (
    ENTERPRISES,
    VENDOR_1284_IDS,
    VENDOR_FIRMWARE,
    VENDOR_MODELS,
    VENDOR_SERIALS,
    VendorOid,
    firmware_from_sys_descr,
    parse_1284,
    vendor_identity_oids,
)

__all__ = [
    "classify_device",
    "decode_identity",
    "firmware_from_sys_descr",
    "parse_1284",
    "printer_index",
    "stable_device_id",
    "vendor_identity_oids",
]

# --- SNMPv2-MIB (RFC 3418) system group scalars ---------------------------
SYS_DESCR: Oid = (1, 3, 6, 1, 2, 1, 1, 1, 0)
SYS_OBJECT_ID: Oid = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_CONTACT: Oid = (1, 3, 6, 1, 2, 1, 1, 4, 0)
SYS_NAME: Oid = (1, 3, 6, 1, 2, 1, 1, 5, 0)
SYS_LOCATION: Oid = (1, 3, 6, 1, 2, 1, 1, 6, 0)
SYSTEM_SCALARS: tuple[tuple[str, Oid], ...] = (
    ("identity.sys_descr", SYS_DESCR),
    ("identity.sys_object_id", SYS_OBJECT_ID),
    ("identity.uptime_seconds", SYS_UPTIME),
    ("identity.contact", SYS_CONTACT),
    ("identity.sys_name", SYS_NAME),
    ("identity.location", SYS_LOCATION),
)

# --- HOST-RESOURCES-MIB (RFC 2790) ----------------------------------------
HR_SYSTEM_UPTIME: Oid = (1, 3, 6, 1, 2, 1, 25, 1, 1, 0)
HR_DEVICE_TYPE: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 2)
HR_DEVICE_DESCR: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 3)
HR_DEVICE_STATUS: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 5)
HR_DEVICE_PRINTER: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 1, 5)  # hrDeviceTypes.5
HR_PRINTER_STATUS: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 5, 1, 1)

# --- IF-MIB (RFC 2863) ----------------------------------------------------
IF_TYPE: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 3)
IF_PHYS_ADDRESS: Oid = (1, 3, 6, 1, 2, 1, 2, 2, 1, 6)
# IANAifType: ethernetCsmacd 6, iso88023Csmacd 7, fastEther 62, fastEtherFX 69,
# gigabitEthernet 117; ieee80211 71 (Wi-Fi); softwareLoopback 24.
_ETHERNET_IFTYPES = frozenset({6, 7, 62, 69, 117})
_WIFI_IFTYPE = 71
_LOOPBACK_IFTYPE = 24

# --- Printer-MIB (RFC 3805) -----------------------------------------------
PRT_GENERAL_SERIAL: Oid = (1, 3, 6, 1, 2, 1, 43, 5, 1, 1, 17)
PRT_MARKER_LIFE_COUNT: Oid = (1, 3, 6, 1, 2, 1, 43, 10, 2, 1, 4)
PRT_SUPPLIES_LEVEL: Oid = (1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 9)
PRT_SUPPLIES_DESCR: Oid = (1, 3, 6, 1, 2, 1, 43, 11, 1, 1, 6)
PRT_ALERT_SEVERITY: Oid = (1, 3, 6, 1, 2, 1, 43, 18, 1, 1, 2)
# Columns indexed by hrDeviceIndex first: any row proves a printer and its index.
PRINTER_MIB_INDEXED: tuple[Oid, ...] = (
    PRT_GENERAL_SERIAL,
    PRT_MARKER_LIFE_COUNT,
    PRT_SUPPLIES_LEVEL,
    PRT_SUPPLIES_DESCR,
    PRT_ALERT_SEVERITY,
    HR_PRINTER_STATUS,
)

# --- PWG Printer Port Monitor MIB (PWG 5107.1), ppmPrinterTable -----------
PPM_PRINTER_1284_ID: Oid = (1, 3, 6, 1, 4, 1, 2699, 1, 2, 1, 2, 1, 1, 3)

# --- ENTITY-MIB (RFC 6933) entPhysicalTable -------------------------------
ENT_PHYSICAL_FIRMWARE_REV: Oid = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1, 9)
ENT_PHYSICAL_SOFTWARE_REV: Oid = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1, 10)
ENT_PHYSICAL_SERIAL: Oid = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1, 11)


# Model ranges: "M129-M134", "M477 - M479" (a driver family, not one model).
_MODEL_RANGE = re.compile(r"\b([A-Z]+)\d+[A-Z]*\s*-\s*\1\d+", re.IGNORECASE)

# --- decoding ------------------------------------------------------------------


class _Reader:
    """Typed access to varbinds that records one Problem per bad field."""

    def __init__(self, varbinds: Varbinds) -> None:
        self.varbinds = varbinds
        self.problems: list[Problem] = []

    def problem(self, field: str, oid: Oid | None, reason: Reason, detail: str) -> None:
        self.problems.append(
            Problem(field=field, oid=format_oid(oid) if oid else None, reason=reason, detail=detail)
        )

    def text(self, field: str, oid: Oid, raw: Value | None, *, max_len: int = 1024) -> str | None:
        if raw is None:
            return None
        if isinstance(raw, tuple):
            self.problem(field, oid, "wrong_type", f"expected text, got OID {format_oid(raw)}")
            return None
        decoded = decode_text_detail(raw, max_len=max_len)
        if decoded.truncated:
            self.problem(field, oid, "truncated", f"text longer than {max_len} characters")
        return decoded.text

    def integer(self, field: str, oid: Oid, raw: Value | None) -> int | None:
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.problem(field, oid, "wrong_type", f"expected an integer, got {raw!r:.80}")
            return None
        return raw

    def object_id(self, field: str, oid: Oid, raw: Value | None) -> Oid | None:
        if raw is None:
            return None
        if not isinstance(raw, tuple):
            self.problem(field, oid, "wrong_type", f"expected an OID, got {raw!r:.80}")
            return None
        return raw


def printer_index(varbinds: Varbinds) -> int | None:
    """The hrDeviceIndex of the printer (see the module docstring)."""
    typed = [
        suffix[0]
        for suffix, value in column(varbinds, HR_DEVICE_TYPE).items()
        if len(suffix) == 1 and value == HR_DEVICE_PRINTER
    ]
    used = _printer_mib_indexes(varbinds)
    for index in typed:
        if index in used:
            return index
    if typed:
        return typed[0]
    return min(used) if used else None


def _printer_mib_indexes(varbinds: Varbinds) -> set[int]:
    return {
        suffix[0]
        for prefix in PRINTER_MIB_INDEXED
        for suffix in column(varbinds, prefix)
        if suffix and suffix[0] > 0
    }


def _pick_mac(varbinds: Varbinds) -> str | None:
    types = {s[0]: v for s, v in column(varbinds, IF_TYPE).items() if len(s) == 1}
    addresses: list[tuple[int, str]] = []
    for suffix, raw in column(varbinds, IF_PHYS_ADDRESS).items():
        mac = format_mac(raw) if isinstance(raw, bytes) else None
        if len(suffix) == 1 and mac is not None:
            addresses.append((suffix[0], mac))

    def rank(if_type: Value | None) -> int:
        if if_type in _ETHERNET_IFTYPES:
            return 0
        if if_type == _WIFI_IFTYPE:
            return 1
        if if_type == _LOOPBACK_IFTYPE:
            return 3
        return 2

    ranked = sorted(addresses, key=lambda item: (rank(types.get(item[0])), item[0]))
    if not ranked or rank(types.get(ranked[0][0])) == 3:
        return None
    return ranked[0][1]


def _first_vendor(
    reader: _Reader,
    table: tuple[VendorOid, ...],
    enterprise: int | None,
    field: str,
    convert: Callable[[str | None], str | None] = lambda text: text,
) -> tuple[str | None, Oid | None]:
    for item in table:
        if item.enterprise != enterprise or item.oid not in reader.varbinds:
            continue
        value = convert(reader.text(field, item.oid, reader.varbinds[item.oid]))
        if value:
            return value, item.oid
    return None, None


def _choose_vendor(
    enterprise: int | None, mfg: str | None, descriptions: list[str | None]
) -> Maker | str | None:
    maker = BY_ENTERPRISE.get(enterprise) if enterprise is not None else None
    if maker is not None:
        return maker
    if mfg:
        return maker_by_alias(mfg) or mfg
    for text in descriptions:
        found = maker_by_alias(text)
        if found is not None:
            return found
    return None


def _choose_model(
    fields: dict[str, str], descriptions: list[str | None], maker: Maker | None
) -> str | None:
    candidates: list[str | None] = []
    mdl = fields.get("MDL")
    if mdl and _MODEL_RANGE.search(mdl) and fields.get("DES"):
        candidates.append(fields["DES"])
    candidates.append(mdl)
    candidates.extend(descriptions)
    for text in candidates:
        if text:
            return strip_maker_prefix(text, maker)
    return None


def decode_identity(varbinds: Varbinds) -> tuple[Identity, list[Problem]]:
    """The identity of the device behind ``varbinds``, and what was wrong with it."""
    reader = _Reader(varbinds)
    get = varbinds.get
    sys_descr = reader.text("identity.sys_descr", SYS_DESCR, get(SYS_DESCR))
    sys_oid = reader.object_id("identity.sys_object_id", SYS_OBJECT_ID, get(SYS_OBJECT_ID))
    enterprise = enterprise_of(sys_oid)
    ticks = reader.integer("identity.uptime_seconds", SYS_UPTIME, get(SYS_UPTIME))
    if ticks is None:
        ticks = reader.integer("identity.uptime_seconds", HR_SYSTEM_UPTIME, get(HR_SYSTEM_UPTIME))
    if ticks is not None and ticks < 0:
        reader.problem("identity.uptime_seconds", SYS_UPTIME, "out_of_range", f"{ticks} ticks")
        ticks = None

    index = printer_index(varbinds)
    typed_printer = any(v == HR_DEVICE_PRINTER for v in column(varbinds, HR_DEVICE_TYPE).values())
    is_printer = typed_printer or bool(_printer_mib_indexes(varbinds))
    hr_descr = None
    if index is not None:
        oid = HR_DEVICE_DESCR + (index,)
        hr_descr = reader.text("identity.hr_device_descr", oid, get(oid))

    device_id = None
    for oid, raw in column(varbinds, PPM_PRINTER_1284_ID).items():
        device_id = reader.text("identity.device_id_1284", PPM_PRINTER_1284_ID + oid, raw)
        if device_id:
            break
    if not device_id:
        device_id, _ = _first_vendor(reader, VENDOR_1284_IDS, enterprise, "identity.device_id_1284")
    fields = parse_1284(device_id)

    brand = None if enterprise in GENERIC_AGENTS else enterprise
    chosen = _choose_vendor(brand, fields.get("MFG"), [hr_descr, sys_descr])
    maker = chosen if isinstance(chosen, Maker) else None
    vendor = chosen.name if isinstance(chosen, Maker) else chosen

    model = _choose_model(fields, [hr_descr], maker)
    if model is None:
        model, _ = _first_vendor(reader, VENDOR_MODELS, enterprise, "identity.model")
    if model is None and sys_descr:
        model = strip_maker_prefix(sys_descr, maker)

    serial = _decode_serial(reader, index, enterprise, fields, is_printer=is_printer)
    firmware = _decode_firmware(reader, enterprise, sys_descr if is_printer else None)

    identity = Identity(
        vendor=vendor,
        model=model,
        serial=serial,
        firmware=firmware,
        sys_object_id=format_oid(sys_oid) if sys_oid else None,
        sys_descr=sys_descr,
        mac=_pick_mac(varbinds),
        sys_name=reader.text("identity.sys_name", SYS_NAME, get(SYS_NAME)),
        location=reader.text("identity.location", SYS_LOCATION, get(SYS_LOCATION)),
        contact=reader.text("identity.contact", SYS_CONTACT, get(SYS_CONTACT)),
        enterprise=enterprise,
        hr_device_index=index,
        hr_device_descr=hr_descr,
        device_id_1284=device_id,
        is_printer=is_printer,
        uptime_seconds=ticks / 100 if ticks is not None else None,
    )
    return identity, reader.problems


def _decode_serial(
    reader: _Reader,
    index: int | None,
    enterprise: int | None,
    fields: dict[str, str],
    *,
    is_printer: bool,
) -> str | None:
    placeholders: list[tuple[Oid, str]] = []
    candidates: list[tuple[Oid, Value]] = []
    if index is not None:
        oid = PRT_GENERAL_SERIAL + (index,)
        if oid in reader.varbinds:
            candidates.append((oid, reader.varbinds[oid]))
    candidates += [
        (item.oid, reader.varbinds[item.oid])
        for item in VENDOR_SERIALS
        if item.enterprise == enterprise and item.oid in reader.varbinds
    ]
    candidates += [
        (ENT_PHYSICAL_SERIAL + suffix, raw)
        for suffix, raw in column(reader.varbinds, ENT_PHYSICAL_SERIAL).items()
    ]
    for oid, raw in candidates:
        text = reader.text("identity.serial", oid, raw, max_len=128)
        serial = normalise_serial(text)
        if serial:
            return serial
        if text:
            placeholders.append((oid, text))
    from_1284 = normalise_serial(fields.get("SN"))
    if from_1284:
        return from_1284
    if placeholders:
        oid, text = placeholders[0]
        reader.problem("identity.serial", oid, "placeholder", f"serial {text!r} is a placeholder")
    elif is_printer:
        where = PRT_GENERAL_SERIAL + (index,) if index is not None else PRT_GENERAL_SERIAL
        reader.problem(
            "identity.serial",
            where,
            "missing",
            "no prtGeneralSerialNumber, vendor serial or entPhysicalSerialNum",
        )
    return None


def _decode_firmware(reader: _Reader, enterprise: int | None, sys_descr: str | None) -> str | None:
    for prefix in (ENT_PHYSICAL_FIRMWARE_REV, ENT_PHYSICAL_SOFTWARE_REV):
        for suffix, raw in column(reader.varbinds, prefix).items():
            text = reader.text("identity.firmware", prefix + suffix, raw, max_len=128)
            if text:
                return text
    firmware, _ = _first_vendor(
        reader,
        VENDOR_FIRMWARE,
        enterprise,
        "identity.firmware",
        lambda text: firmware_from_sys_descr(text) or text,
    )
    return firmware or firmware_from_sys_descr(sys_descr)


# --- classification and stable ids ----------------------------------------------


def classify_device(varbinds: Varbinds) -> Literal["printer", "other"]:
    """``printer`` when hrDeviceType says so, a Printer-MIB table answered, or the
    sysObjectID lies in a printer maker's printer subtree."""
    if any(v == HR_DEVICE_PRINTER for v in column(varbinds, HR_DEVICE_TYPE).values()):
        return "printer"
    if _printer_mib_indexes(varbinds):
        return "printer"
    sys_oid = varbinds.get(SYS_OBJECT_ID)
    enterprise = enterprise_of(sys_oid) if isinstance(sys_oid, tuple) else None
    maker = BY_ENTERPRISE.get(enterprise) if enterprise is not None else None
    if maker is not None and isinstance(sys_oid, tuple):
        subtree = maker.printer_subtree
        if (
            subtree is None
            or sys_oid[len(ENTERPRISES) : len(ENTERPRISES) + len(subtree)] == subtree
        ):
            return "printer"
    return "other"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def stable_device_id(identity: Identity) -> str | None:
    """An id that survives DHCP/IP churn (glpi-agent #71), or None.

    * ``sn:<vendor-slug>:<SERIAL>``: the normalised serial, prefixed by the
      vendor because serial formats of different makers can collide
      (``sn:-:<SERIAL>`` when the vendor is unknown).
    * ``mac:<aa:bb:..>``: the chosen interface's MAC when there is no serial.
    * ``oid:<16 hex>``: SHA-256 of sysObjectID, sysName and the 1284 id, only
      when a sysName is set: the other two name a model, not a device, and
      alone would merge every printer of that model into one.
    """
    if identity.serial:
        vendor = _slug(identity.vendor) if identity.vendor else "-"
        return f"sn:{vendor}:{identity.serial}"
    if identity.mac:
        return f"mac:{identity.mac}"
    if identity.sys_object_id and identity.sys_name:
        material = "|".join(
            (identity.sys_object_id, identity.sys_name, identity.device_id_1284 or "")
        )
        return "oid:" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]
    return None
