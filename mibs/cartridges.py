"""Cartridge identity: part number, serial, install date, pages printed and rated yield.

What a managed-print provider needs to order the right cartridge and to judge
the one it replaces. Every value is ``None`` unless the device says it, and
``Supply.identity_sources`` names where each came from: ``description``, the
dotted OID of a vendor MIB, or ``model``. A vendor MIB wins over a parsed
description.

Sources:

* **Description** (RFC 3805 ``prtMarkerSuppliesDescription``), every maker:

  - Xerox appends ``", PN 006R01509;SN48178080E0000481"`` (seen in the
    LibreNMS Xerox recording; LibreNMS strips the same suffix for display).
    ``PN unknown`` / ``SNunknown`` are absent values.
  - HP ends with the order number: ``"Black Cartridge HP CF217A"`` (LibreNMS
    JetDirect M130nw recording), Epson with the compatible numbers
    ``"Black Ink Supply Unit T9441/T9451/T9461"``, Canon with
    ``"Canon Cartridge 719/719H"``. The last word is taken as the part
    number when it looks like one: letters then a digit, or digits, with
    ``-`` or ``/`` joining alternatives, 3 to 40 characters, upper case
    (``"Drum Cartridge (R1)"`` and ``"Toner (Black)"`` have none).

* **HP** (enterprise 11) FutureSmart ``consumable-status`` group
  ``…11.2.3.9.4.2.1.4.1.10.1.1.<column>.<consumable>.0`` (FUTURESMART3a-MIB,
  hp.nm.hpsystem.net-peripheral.netdm.dm.device.destination-subsystem.
  print-engine.consumables.consumables-1.consumable-status). The consumable
  number is matched to ``prtMarkerSuppliesIndex``. Columns used: ``.3``
  serial number, ``.8`` first install date (``YYYYMMDD`` text), ``.12`` pages
  printed with the consumable. Column numbers as read by public field
  scripts for E-series and M-series LaserJets; only devices with E-Label
  engines answer them.

* **Brother** (enterprise 2435) private maintenance data
  ``…2435.2.3.9.4.2.1.5.5.8.0`` and "next care" data ``…5.5.11.0``: an
  OCTET STRING of 7-byte records (code, 0x01, 0x04, value as a 4-byte
  big-endian integer), ended by 0xFF (bieniu/brother, after
  saper-2/BRN-Printer-sCounters-Info). Codes used: maintenance ``0x11``
  drum page count (pages printed with the drum), ``0x6f``-``0x72``
  black/cyan/magenta/yellow toner remaining in hundredths of a percent;
  next care ``0x82`` drum remaining pages. The drum's rated yield is its
  count plus its remaining pages. The toner percentages replace Brother's
  coarse 0-3 level codes (quirk ``brother_maintenance_level``).

* **Lexmark** (enterprise 641) LEXMARK-MPS-MIB ``currentSuppliesTable``
  ``…641.6.4.4.1.1.<column>.<device>.<supply>``: ``.7`` part number, ``.6``
  serial, ``.10`` install date (DateAndTime), each row matched to a standard
  supply by description, type and colorant, or not at all
  (:mod:`mibs.cartridges_lexmark`). Pages printed with the cartridge
  (``.11`` page count at install against the device's count) is not derived.

* **Model** (``model``): black toner whose description names no part (Brother's
  ``"Black Toner Cartridge"``) on a model the maker's supplies list names gets the
  parts that fit it, ``"TN-620/TN-650"`` for the HL-5370DW
  (:data:`mibs.cartridge_yields.MODEL_TONERS`): which of them is installed the
  device does not say.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date

from mibs.cartridge_yields import toner_of_model
from mibs.cartridges_lexmark import LEXMARK, LEXMARK_COLUMNS, lexmark_identity
from mibs.cartridges_lexmark import identity_problem as _bad
from mibs.models import Problem, Supply, SupplyState
from mibs.text import decode_text, normalise_serial
from mibs.values import Oid, Value, Varbinds, column, format_oid

HP, BROTHER = 11, 2435

HP_CONSUMABLE_STATUS: Oid = (1, 3, 6, 1, 4, 1, 11, 2, 3, 9, 4, 2, 1, 4, 1, 10, 1, 1)
HP_SERIAL: Oid = HP_CONSUMABLE_STATUS + (3,)
HP_FIRST_INSTALL: Oid = HP_CONSUMABLE_STATUS + (8,)
HP_PAGES_PRINTED: Oid = HP_CONSUMABLE_STATUS + (12,)

_BROTHER_DATA: Oid = (1, 3, 6, 1, 4, 1, 2435, 2, 3, 9, 4, 2, 1, 5, 5)
BROTHER_MAINTENANCE: Oid = _BROTHER_DATA + (8, 0)
BROTHER_NEXTCARE: Oid = _BROTHER_DATA + (11, 0)
BROTHER_DRUM_COUNT = 0x11
BROTHER_DRUM_REMAINING_PAGES = 0x82  # in the next-care data
BROTHER_TONER_REMAINING: Mapping[int, str] = {
    0x6F: "black",
    0x70: "cyan",
    0x71: "magenta",
    0x72: "yellow",
}
_DRUM_TYPES = frozenset({"opc"})
_TONER_TYPES = frozenset({"toner", "toner_cartridge", "ink", "ink_cartridge"})

_XEROX_SUFFIX = re.compile(r",\s*PN\s*(?P<pn>[^;,]*?)\s*;\s*SN\s*(?P<sn>\S*)\s*$", re.IGNORECASE)
_PART_TOKEN = re.compile(r"^(?=.*\d)[A-Z]{0,5}-?\d[0-9A-Z]*(?:[-/][0-9A-Z]+)*$")


#: Vendor cartridge columns to walk and scalars to GET (:func:`mibs.plan.cartridge_plan`).
CARTRIDGE_COLUMNS: Mapping[int, tuple[Oid, ...]] = {
    HP: (HP_SERIAL, HP_FIRST_INSTALL, HP_PAGES_PRINTED),
    LEXMARK: LEXMARK_COLUMNS,
}
CARTRIDGE_SCALARS: Mapping[int, tuple[Oid, ...]] = {
    BROTHER: (BROTHER_MAINTENANCE, BROTHER_NEXTCARE),
}


def parse_description(description: str | None) -> tuple[str | None, str | None]:
    """(part number, cartridge serial) written in a supply description, else None."""
    if not description:
        return None, None
    xerox = _XEROX_SUFFIX.search(description)
    if xerox is not None:
        part = normalise_serial(xerox["pn"])
        return part, normalise_serial(xerox["sn"])
    words = description.split()
    if len(words) < 2:  # a bare code is a name, not "<what> <part number>"
        return None, None
    last = words[-1]
    if 3 <= len(last) <= 40 and _PART_TOKEN.match(last):
        return last, None
    return None, None


def with_model_toner(supplies: list[Supply], vendor: str | None, model: str | None) -> list[Supply]:
    """Black toner that names no part gets the part(s) its model takes (source ``model``).

    From :data:`mibs.cartridge_yields.MODEL_TONERS`; a part the device names, or a
    colour supply, is left as it is.
    """
    part = toner_of_model(vendor, model)
    if part is None:
        return supplies
    return [
        supply.model_copy(
            update={
                "part_number": part,
                "identity_sources": {**supply.identity_sources, "part_number": "model"},
            }
        )
        if supply.part_number is None
        and supply.supply_class == "consumed"
        and supply.type in ("toner", "toner_cartridge")
        and supply.colorant in (None, "black")
        else supply
        for supply in supplies
    ]


def with_cartridge_identity(
    supplies: list[Supply],
    varbinds: Varbinds,
    *,
    enterprise: int | None,
    state_of: Callable[[float], SupplyState],
) -> tuple[list[Supply], list[Problem]]:
    """``supplies`` with the cartridge fields filled from descriptions and vendor MIBs.

    ``state_of`` maps a remaining percent to a state (the level decoder's rule),
    for levels a vendor MIB gives more precisely than the standard table.
    """
    problems: list[Problem] = []
    found: dict[int, dict[str, tuple[object, str]]] = {}
    for supply in supplies:
        part, serial = parse_description(supply.description)
        fields = found.setdefault(supply.index, {})
        if part is not None:
            fields["part_number"] = (part, "description")
        if serial is not None:
            fields["cartridge_serial"] = (serial, "description")
    if enterprise == HP:
        _hp(supplies, varbinds, found, problems)
    elif enterprise == LEXMARK:
        lexmark_identity(supplies, varbinds, found, problems)
    elif enterprise == BROTHER:
        supplies = _brother(supplies, varbinds, found, problems, state_of)
    result = []
    for supply in supplies:
        fields = found.get(supply.index, {})
        if not fields:
            result.append(supply)
            continue
        update: dict[str, object] = {name: value for name, (value, _) in fields.items()}
        update["identity_sources"] = {name: source for name, (_, source) in fields.items()}
        result.append(supply.model_copy(update=update))
    return result, problems


# --- HP ----------------------------------------------------------------------------------


def _hp_date(raw: Value) -> date | None:
    text = decode_text(raw, max_len=32) if not isinstance(raw, int) else str(raw)
    digits = "".join(ch for ch in (text or "") if ch.isdigit())
    if len(digits) != 8:
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def _hp(
    supplies: list[Supply],
    varbinds: Varbinds,
    found: dict[int, dict[str, tuple[object, str]]],
    problems: list[Problem],
) -> None:
    indexes = {supply.index for supply in supplies}
    for prefix, name in (
        (HP_SERIAL, "cartridge_serial"),
        (HP_FIRST_INSTALL, "installed_on"),
        (HP_PAGES_PRINTED, "pages_printed"),
    ):
        for suffix, raw in column(varbinds, prefix).items():
            if len(suffix) != 2 or suffix[0] not in indexes:
                continue
            oid = prefix + suffix
            value: object | None
            if name == "cartridge_serial":
                text = decode_text(raw, max_len=64) if isinstance(raw, bytes) else None
                value = normalise_serial(text)
            elif name == "installed_on":
                value = _hp_date(raw)
            else:
                value = raw if isinstance(raw, int) and raw >= 0 else None
            if value is None:
                if isinstance(raw, int) or decode_text(raw, max_len=64) is not None:
                    problems.append(_bad(suffix[0], oid, raw, name))  # said something unusable
                continue
            found.setdefault(suffix[0], {})[name] = (value, format_oid(oid))


# --- Brother -----------------------------------------------------------------------------


def brother_records(raw: Value) -> dict[int, int]:
    """Code -> value of a Brother maintenance blob; records that do not fit are skipped."""
    if not isinstance(raw, bytes):
        return {}
    records: dict[int, int] = {}
    for start in range(0, len(raw) - 6, 7):
        record = raw[start : start + 7]
        if record[1:3] == b"\x01\x04":
            records.setdefault(record[0], int.from_bytes(record[3:7], "big"))
    return records


def _colour_of(supply: Supply) -> str | None:
    for text in (supply.colorant, supply.description):
        words = (text or "").casefold().replace("(", " ").replace(")", " ").split()
        for colour in BROTHER_TONER_REMAINING.values():
            if colour in words:
                return colour
    return None


def _brother(
    supplies: list[Supply],
    varbinds: Varbinds,
    found: dict[int, dict[str, tuple[object, str]]],
    problems: list[Problem],
    state_of: Callable[[float], SupplyState],
) -> list[Supply]:
    maintenance = varbinds.get(BROTHER_MAINTENANCE)
    records = brother_records(maintenance) if maintenance is not None else {}
    if maintenance is not None and not records:
        problems.append(_bad(0, BROTHER_MAINTENANCE, maintenance, "maintenance"))
    nextcare_raw = varbinds.get(BROTHER_NEXTCARE)
    nextcare = brother_records(nextcare_raw) if nextcare_raw is not None else {}
    source = format_oid(BROTHER_MAINTENANCE)
    toner = {
        colour: records[code] for code, colour in BROTHER_TONER_REMAINING.items() if code in records
    }
    result = []
    drum_done = False
    for supply in supplies:
        fields = found.setdefault(supply.index, {})
        if supply.type in _DRUM_TYPES and not drum_done and BROTHER_DRUM_COUNT in records:
            drum_done = True  # one drum counter: the first drum row gets it
            count = records[BROTHER_DRUM_COUNT]
            fields["pages_printed"] = (count, source)
            remaining = nextcare.get(BROTHER_DRUM_REMAINING_PAGES)
            if remaining is not None:
                fields["rated_yield"] = (
                    count + remaining,
                    f"{source}+{format_oid(BROTHER_NEXTCARE)}",
                )
        colour = _colour_of(supply) if supply.type in _TONER_TYPES else None
        hundredths = toner.get(colour) if colour is not None else None
        if hundredths is not None and 0 <= hundredths <= 10000 and supply.percent is None:
            percent = round(hundredths / 100, 2)
            supply = supply.model_copy(  # noqa: PLW2901 - the decoded supply, refined
                update={
                    "percent": percent,
                    "state": state_of(percent),
                    "quirk": "brother_maintenance_level",
                }
            )
        result.append(supply)
    return result
