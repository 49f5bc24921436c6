"""Lexmark cartridge identity: LEXMARK-MPS-MIB ``currentSuppliesTable``.

``1.3.6.1.4.1.641.6.4.4.1.1.<column>.<deviceIndex>.<currentSupplyIndex>``
(LEXMARK-MPS-MIB revision 2019-05-02, currentSuppliesEntry, INDEX
{ deviceIndex, currentSupplyIndex }; an older copy that puts the table under
``…641.4.4.5.4.7`` is wrong). Columns used: ``.3`` currentSupplyType
(SupplyTypeTC), ``.4`` currentSupplyColorantValue, ``.5``
currentSupplyDescription, ``.6`` currentSupplySerialNumber, ``.7``
currentSupplyPartNumber (both DisplayString, "blank if not known") and
``.10`` currentSupplyInstallDate (SNMPv2-TC DateAndTime).

The table has its own index, so a Lexmark row is matched to a Printer-MIB
``prtMarkerSuppliesTable`` row by its description (case and spacing aside),
narrowed by type and colorant when several rows share it; a row without a
description is matched by type and colorant alone. A row that matches none or
more than one supply, or a supply two rows match, gets nothing: which
cartridge the values belong to would be a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from mibs.models import Problem, Supply
from mibs.text import decode_text, normalise_serial
from mibs.values import Oid, Value, Varbinds, column, format_oid

LEXMARK = 641

LEXMARK_CURRENT_SUPPLY: Oid = (1, 3, 6, 1, 4, 1, 641, 6, 4, 4, 1, 1)
LEXMARK_TYPE: Oid = LEXMARK_CURRENT_SUPPLY + (3,)
LEXMARK_COLORANT: Oid = LEXMARK_CURRENT_SUPPLY + (4,)
LEXMARK_DESCRIPTION: Oid = LEXMARK_CURRENT_SUPPLY + (5,)
LEXMARK_SERIAL: Oid = LEXMARK_CURRENT_SUPPLY + (6,)
LEXMARK_PART: Oid = LEXMARK_CURRENT_SUPPLY + (7,)
LEXMARK_INSTALL_DATE: Oid = LEXMARK_CURRENT_SUPPLY + (10,)

LEXMARK_COLUMNS: tuple[Oid, ...] = (
    LEXMARK_TYPE,
    LEXMARK_COLORANT,
    LEXMARK_DESCRIPTION,
    LEXMARK_SERIAL,
    LEXMARK_PART,
    LEXMARK_INSTALL_DATE,
)

#: SupplyTypeTC -> the prtMarkerSuppliesType names (mibs.supplies.SUPPLY_TYPES) it may be.
_TYPES: Mapping[int, frozenset[str]] = {
    3: frozenset({"ink_cartridge", "ink"}),  # inkCartridge
    4: frozenset({"ink"}),  # inkBottle
    5: frozenset({"ink_cartridge", "ink"}),  # inkPrinthead
    6: frozenset({"toner", "toner_cartridge"}),  # toner
    7: frozenset({"opc"}),  # photoconductor
    8: frozenset({"transfer_unit"}),  # transferModule
    9: frozenset({"fuser"}),  # fuser
    10: frozenset({"waste_toner"}),  # wastetonerBox
    11: frozenset({"staples"}),  # staples
    13: frozenset({"toner", "toner_cartridge"}),  # tonerMicr
    14: frozenset({"opc"}),  # photoconductorMicr
}


def _words(raw: Value | str | None) -> str | None:
    text = decode_text(raw, max_len=256) if raw is not None and not isinstance(raw, str) else raw
    return " ".join(text.casefold().split()) or None if text else None


def install_date(raw: Value) -> date | None:
    """The calendar date of an SNMPv2-TC DateAndTime (8 or 11 octets), else None."""
    if not isinstance(raw, bytes) or len(raw) not in (8, 11):
        return None
    try:
        return date(int.from_bytes(raw[:2], "big"), raw[2], raw[3])
    except ValueError:
        return None


def _matches(supplies: list[Supply], row: Mapping[Oid, Value]) -> list[Supply]:
    description = _words(row.get(LEXMARK_DESCRIPTION))
    kind = row.get(LEXMARK_TYPE)
    colorant = _words(row.get(LEXMARK_COLORANT))
    found = (
        [s for s in supplies if _words(s.description) == description]
        if description is not None
        else list(supplies)
    )
    types = _TYPES.get(kind) if isinstance(kind, int) else None
    if types is not None and (description is None or len(found) > 1):
        found = [s for s in found if s.type in types]
    if colorant is not None and (description is None or len(found) > 1):
        found = [s for s in found if (s.colorant or "").casefold() == colorant]
    if description is None and types is None:
        return []  # neither a name nor a known type: nothing to match on
    return found


def lexmark_identity(
    supplies: list[Supply],
    varbinds: Varbinds,
    found: dict[int, dict[str, tuple[object, str]]],
    problems: list[Problem],
) -> None:
    """Fill ``found`` (supply index -> field -> (value, source OID)) from currentSuppliesTable."""
    rows: dict[Oid, dict[Oid, Value]] = {}
    for prefix in LEXMARK_COLUMNS:
        for suffix, raw in column(varbinds, prefix).items():
            if len(suffix) == 2:
                rows.setdefault(suffix, {})[prefix] = raw
    claimed: dict[int, list[Oid]] = {}
    for suffix, row in rows.items():
        if not row.keys() & {LEXMARK_SERIAL, LEXMARK_PART, LEXMARK_INSTALL_DATE}:
            continue
        candidates = _matches(supplies, row)
        if len(candidates) == 1:
            claimed.setdefault(candidates[0].index, []).append(suffix)
    for index, suffixes in claimed.items():
        if len(suffixes) != 1:
            continue  # two Lexmark rows name one supply: neither is trusted
        suffix = suffixes[0]
        row = rows[suffix]
        fields = found.setdefault(index, {})
        for prefix, name in (
            (LEXMARK_PART, "part_number"),
            (LEXMARK_SERIAL, "cartridge_serial"),
            (LEXMARK_INSTALL_DATE, "installed_on"),
        ):
            said = row.get(prefix)
            if said is None:
                continue
            oid = prefix + suffix
            value: object | None
            if name == "installed_on":
                value = install_date(said)
                if value is None and (not isinstance(said, bytes) or any(said)):
                    problems.append(identity_problem(index, oid, said, name))
            else:
                text = decode_text(said, max_len=64) if isinstance(said, bytes) else None
                value = normalise_serial(text)
                if isinstance(said, int | tuple):
                    problems.append(identity_problem(index, oid, said, name))
            if value is not None:
                fields[name] = (value, format_oid(oid))


def identity_problem(index: int, oid: Oid, raw: Value, name: str) -> Problem:
    """A vendor MIB said something for a cartridge field that cannot be read."""
    return Problem(
        field=f"supplies.{index}.{name}",
        oid=format_oid(oid),
        reason="wrong_type",
        detail=f"cannot read {name} from {raw!r:.80}",
    )
