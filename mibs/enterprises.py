"""Printer makers by IANA enterprise number, and the names they go by.

Each number is the maker's entry in the IANA "SMI Network Management Private
Enterprise Codes" registry (https://www.iana.org/assignments/enterprise-numbers),
cross-checked against the sysObjectID of a real recording where we have one
(../shared/recordings: HP 11, Xerox 253, Ricoh 367, Dell 674, Epson 1248,
Canon 1602, Sharp 2385, Brother 2435, Konica Minolta 18334).

``printer_subtree`` narrows the sysObjectID space for makers whose enterprise
also covers non-printers (HP servers and switches, Dell servers, Samsung
phones), so that :func:`mibs.identity.classify_device` does not call a switch
a printer; ``None`` means the whole enterprise is printers in practice.
``aliases`` are the spellings firmware uses in IEEE 1284 ``MFG:`` fields,
sysDescr and hrDeviceDescr, longest first so that prefix stripping removes
``KONICA MINOLTA`` before ``KONICA``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mibs.values import Oid

ENTERPRISES_PREFIX: Oid = (1, 3, 6, 1, 4, 1)


@dataclass(frozen=True)
class Maker:
    enterprise: int
    name: str
    aliases: tuple[str, ...]
    printer_subtree: Oid | None = None


MAKERS: tuple[Maker, ...] = (
    # hp.nm.system.net-peripheral (11.2.3.9) is the JetDirect/printer subtree.
    Maker(11, "HP", ("HEWLETT-PACKARD", "HEWLETT PACKARD", "HP INC.", "HP"), (11, 2, 3, 9)),
    Maker(236, "Samsung", ("SAMSUNG ELECTRONICS", "SAMSUNG"), (236, 11)),
    Maker(253, "Xerox", ("FUJI XEROX", "XEROX")),
    Maker(367, "Ricoh", ("RICOH COMPANY", "RICOH")),
    Maker(641, "Lexmark", ("LEXMARK INTERNATIONAL", "LEXMARK")),
    # Dell's printers live under dell.10898 (recording: 674.10898.2.100...).
    Maker(674, "Dell", ("DELL INC.", "DELL"), (674, 10898)),
    Maker(1129, "Toshiba", ("TOSHIBA TEC", "TOSHIBA")),
    Maker(1248, "Epson", ("SEIKO EPSON", "EPSON")),
    Maker(1347, "Kyocera", ("KYOCERA DOCUMENT SOLUTIONS", "KYOCERA MITA", "KYOCERA")),
    Maker(1602, "Canon", ("CANON INC.", "CANON")),
    Maker(2001, "OKI", ("OKI DATA CORP", "OKI DATA", "OKIDATA", "OKI")),
    Maker(2385, "Sharp", ("SHARP CORPORATION", "SHARP")),
    Maker(2435, "Brother", ("BROTHER INDUSTRIES", "BROTHER")),
    Maker(10642, "Zebra", ("ZEBRA TECHNOLOGIES", "ZEBRA")),
    Maker(18334, "Konica Minolta", ("KONICA MINOLTA", "KONICA", "MINOLTA")),
    Maker(40093, "Pantum", ("PANTUM",)),
)

BY_ENTERPRISE: dict[int, Maker] = {maker.enterprise: maker for maker in MAKERS}

# Enterprises whose sysObjectID says nothing about the printer behind them:
# a generic SNMP agent or an external print server. The 1284 MFG decides.
# net-snmp 8072 (embedded Linux agents), Lantronix 244, Axis 368 (print
# servers), SEH Computertechnik 1229 (print servers).
GENERIC_AGENTS: frozenset[int] = frozenset({8072, 244, 368, 1229})


def enterprise_of(sys_object_id: Oid | None) -> int | None:
    """The IANA enterprise number under ``1.3.6.1.4.1`` of a sysObjectID, else None."""
    if sys_object_id is None or len(sys_object_id) <= len(ENTERPRISES_PREFIX):
        return None
    if sys_object_id[: len(ENTERPRISES_PREFIX)] != ENTERPRISES_PREFIX:
        return None
    return sys_object_id[len(ENTERPRISES_PREFIX)]


def maker_by_alias(text: str | None) -> Maker | None:
    """The maker whose alias ``text`` starts with (case-insensitive, word boundary)."""
    if not text:
        return None
    upper = text.strip().upper()
    best: tuple[int, Maker] | None = None
    for maker in MAKERS:
        for alias in maker.aliases:
            matches = upper == alias or upper.startswith((alias + " ", alias + ","))
            if matches and (best is None or len(alias) > best[0]):
                best = (len(alias), maker)
    return best[1] if best else None


def strip_maker_prefix(text: str, maker: Maker | None) -> str:
    """``"KONICA MINOLTA bizhub C250i"`` to ``"bizhub C250i"`` for Konica Minolta.

    Only a leading alias followed by a space is removed, and never the whole
    text: ``"HP"`` alone stays ``"HP"``.
    """
    if maker is None:
        return text
    upper = text.upper()
    for alias in sorted(maker.aliases, key=len, reverse=True):
        if upper.startswith(alias + " "):
            rest = text[len(alias) :].strip()
            return rest or text
    return text
