"""Marker supplies: RFC 3805 ``prtMarkerSuppliesTable`` to :class:`~mibs.models.Supply`.

Rows are indexed ``hrDeviceIndex.prtMarkerSuppliesIndex``; a row exists when
any of the columns .2 .. .9 answered for it. Level semantics (RFC 3805
prtMarkerSuppliesLevel / MaxCapacity, Integer32 (-3..2147483647)):

* Level -1 "other: no restriction" -> state ``unrestricted``; -2 "unknown"
  -> ``unknown``; -3 "at least some remaining" (supply, or space for a
  receptacle) -> ``some_remaining``. Percent is ``None`` for all three: the
  device did not say how much (peers invent 50 %, 80 % or "OK").
* MaxCapacity -1 (no restriction) or -2 (unknown) -> ``max_capacity`` None
  and ``percent`` None; a max of 0 is kept but gives no percent either.
* A consumed supply (class 3, or class 1 "other") with ``0 <= level <= max``:
  percent = level / max x 100; state ``empty`` at 0, ``low`` at or below
  :data:`LOW_PERCENT`, else ``ok``. With no usable max, a level of 0 is
  ``empty`` and a positive level is ``some_remaining`` (unless the unit is
  percent(19), in which case the level is the percent, apple/cups #4016).
* A receptacle (class 4) level is the remaining **space** (RFC 3805;
  apple/cups #4499): percent is the filled share (max - level) / max x 100,
  state ``full`` when no space is left, otherwise ``ok``.
* A level above a positive max is a quirk when the level is at most 100 and
  max is not 100: firmware that reports percent regardless of max (apple/cups
  #3551, quirk ``level_is_percent``). Any other level above max is an
  ``out_of_range`` Problem with state ``unknown`` (librenms #3030: 150 %).
* A negative level other than -1/-2/-3 is ``out_of_range`` unless a vendor
  quirk below explains it.

Missing columns (trimmed recordings, odd firmware): a missing type is
``unknown``; a missing class is inferred from the type (waste* types are
receptacles, other known types consumed, unknown ``other``). Each missing
column is one Problem (field ``supplies``, reason ``missing``) listing the
rows, not one per row.

Vendor quirks, dispatched on the enterprise number and applied only when the
data itself shows the quirk; each sets ``Supply.quirk``:

* ``ricoh_near_empty`` (Ricoh 367): level -100 means "near empty"
  (Observium RicohPrivateMIB handling, LibreNMS ``get_toner_levels``, Checkmk
  ``ricoh_toner`` on ``…367.3.2.1.2.24.1.1.5``) -> state ``low``.
* ``ricoh_private_level`` (Ricoh 367): a standard level without an amount
  (-2/-3) is replaced by the private table's percent for the same supply
  name; :data:`RICOH_PRIVATE_COLUMNS` are the extra columns to walk
  (:func:`mibs.plan.vendor_plan` asks for them).
* ``brother_level_code`` (Brother 2435): with MaxCapacity -2 and a level in
  0..3 the level is a status code, not an amount (LibreNMS
  ``get_toner_levels``: 0 full, 1 near empty, 2 empty, 3 very low; issues
  librenms #3030, #4637) -> 0 ``ok``, 1 and 3 ``low``, 2 ``empty``.
* ``canon_three_stage`` (Canon 1602): Canon MF MIB documents
  prtMarkerSuppliesLevel as three-staged other(100), tonerLow(10),
  tonerNearlyOut(1) (librenms #5637). Applied only when every numeric
  level of the device is 100, 10 or 1 with max 100: 100 ``ok``, 10 and 1
  ``low``, percent None. One level outside the three stages proves the
  device reports real percentages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from mibs.cartridges import with_cartridge_identity
from mibs.counters import printer_row_index
from mibs.models import Problem, Supply, SupplyClass, SupplyState
from mibs.reasons import Reason
from mibs.text import decode_text
from mibs.values import Oid, Value, Varbinds, column, format_oid

LOW_PERCENT = 10.0  # "low" at or below this remaining share; cups and most peers use 10 %

_SUPPLIES: Oid = (1, 3, 6, 1, 2, 1, 43, 11, 1, 1)
MARKER_INDEX: Oid = _SUPPLIES + (2,)
COLORANT_INDEX: Oid = _SUPPLIES + (3,)
SUPPLY_CLASS: Oid = _SUPPLIES + (4,)
SUPPLY_TYPE: Oid = _SUPPLIES + (5,)
DESCRIPTION: Oid = _SUPPLIES + (6,)
SUPPLY_UNIT: Oid = _SUPPLIES + (7,)
MAX_CAPACITY: Oid = _SUPPLIES + (8,)
LEVEL: Oid = _SUPPLIES + (9,)
COLORANT_VALUE: Oid = (1, 3, 6, 1, 2, 1, 43, 12, 1, 1, 4)
RICOH_TONER_NAME: Oid = (1, 3, 6, 1, 4, 1, 367, 3, 2, 1, 2, 24, 1, 1, 2)
RICOH_TONER_LEVEL: Oid = (1, 3, 6, 1, 4, 1, 367, 3, 2, 1, 2, 24, 1, 1, 5)

_ROW_COLUMNS = (
    MARKER_INDEX,
    COLORANT_INDEX,
    SUPPLY_CLASS,
    SUPPLY_TYPE,
    DESCRIPTION,
    SUPPLY_UNIT,
    MAX_CAPACITY,
    LEVEL,
)

#: The standard supply columns to walk (:mod:`mibs.plan` turns them into plan items).
SUPPLY_COLUMNS: tuple[Oid, ...] = (*_ROW_COLUMNS, COLORANT_VALUE)
#: Ricoh's private toner table (name, level), walked for Ricoh printers only.
RICOH_PRIVATE_COLUMNS: tuple[Oid, ...] = (RICOH_TONER_NAME, RICOH_TONER_LEVEL)

# RFC 3805 / IANA-PRINTER-MIB PrtMarkerSuppliesTypeTC, in snake_case.
SUPPLY_TYPES: Mapping[int, str] = {
    1: "other",
    2: "unknown",
    3: "toner",
    4: "waste_toner",
    5: "ink",
    6: "ink_cartridge",
    7: "ink_ribbon",
    8: "waste_ink",
    9: "opc",
    10: "developer",
    11: "fuser_oil",
    12: "solid_wax",
    13: "ribbon_wax",
    14: "waste_wax",
    15: "fuser",
    16: "corona_wire",
    17: "fuser_oil_wick",
    18: "cleaner_unit",
    19: "fuser_cleaning_pad",
    20: "transfer_unit",
    21: "toner_cartridge",
    22: "fuser_oiler",
    23: "water",
    24: "waste_water",
    25: "glue_water_additive",
    26: "waste_paper",
    27: "binding_supply",
    28: "banding_supply",
    29: "stitching_wire",
    30: "shrink_wrap",
    31: "paper_wrap",
    32: "staples",
    33: "inserts",
    34: "covers",
}
_WASTE_TYPES = frozenset({"waste_toner", "waste_ink", "waste_wax", "waste_water", "waste_paper"})

# RFC 3805 PrtMarkerSuppliesClassTC.
SUPPLY_CLASSES: Mapping[int, SupplyClass] = {1: "other", 3: "consumed", 4: "receptacle"}

# RFC 3805 PrtMarkerSuppliesSupplyUnitTC, in snake_case.
SUPPLY_UNITS: Mapping[int, str] = {
    1: "other",
    2: "unknown",
    3: "ten_thousandths_of_inches",
    4: "micrometers",
    7: "impressions",
    8: "sheets",
    11: "hours",
    12: "thousandths_of_ounces",
    13: "tenths_of_grams",
    14: "hundredths_of_fluid_ounces",
    15: "tenths_of_milliliters",
    16: "feet",
    17: "meters",
    18: "items",
    19: "percent",
}

RICOH, BROTHER, CANON = 367, 2435, 1602
_SPECIAL_LEVELS: Mapping[int, SupplyState] = {
    -1: "unrestricted",
    -2: "unknown",
    -3: "some_remaining",
}
_BROTHER_CODES: Mapping[int, SupplyState] = {0: "ok", 1: "low", 2: "empty", 3: "low"}
_CANON_STAGES: Mapping[int, SupplyState] = {100: "ok", 10: "low", 1: "low"}

_PART_NUMBER = re.compile(r"\s*[,;]\s*(?:PN|P/N|SN)\b.*$", re.IGNORECASE)


def supply_display_name(description: str | None) -> str | None:
    """The description without trailing part/serial numbers (``", PN 006R01509;SN…"``).

    ``Supply.description`` keeps what the device said; this is for display
    (LibreNMS strips the same suffix).
    """
    if description is None:
        return None
    return _PART_NUMBER.sub("", description).strip() or description


def _int(value: Value | None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class _Level:
    percent: float | None
    state: SupplyState
    quirk: str | None = None
    problem: str | None = None  # detail of an out_of_range Problem


def _state_from_remaining(percent: float) -> SupplyState:
    if percent <= 0:
        return "empty"
    return "low" if percent <= LOW_PERCENT else "ok"


def _numeric_level(
    level: int, max_capacity: int | None, unit: str | None, receptacle: bool
) -> _Level:
    """Percent and state for a level >= 0 (RFC semantics, plus ``level_is_percent``)."""
    quirk = None
    if max_capacity is not None and max_capacity > 0:
        if level <= max_capacity:
            share = level / max_capacity * 100
        elif level <= 100 and max_capacity != 100:
            share, quirk = float(level), "level_is_percent"
        else:
            return _Level(
                None, "unknown", problem=f"level {level} above max capacity {max_capacity}"
            )
    elif unit == "percent" and level <= 100:
        share = float(level)
    elif receptacle:
        return _Level(None, "full" if level == 0 else "some_remaining")
    else:
        return _Level(None, "empty" if level == 0 else "some_remaining")
    if receptacle:  # share is the free space; report the filled share
        return _Level(round(100 - share, 2), "full" if share <= 0 else "ok", quirk)
    return _Level(round(share, 2), _state_from_remaining(share), quirk)


def _level(
    level: int | None,
    max_capacity: int | None,
    *,
    unit: str | None,
    receptacle: bool,
    enterprise: int | None,
    canon_stages: bool,
) -> _Level:
    if level is None:
        return _Level(None, "unknown")
    if level in _SPECIAL_LEVELS:
        return _Level(None, _SPECIAL_LEVELS[level])
    if enterprise == RICOH and level == -100:
        return _Level(None, "low", "ricoh_near_empty")
    if level < 0:
        return _Level(None, "unknown", problem=f"level {level} below -3")
    if enterprise == BROTHER and max_capacity == -2 and level in _BROTHER_CODES:
        return _Level(None, _BROTHER_CODES[level], "brother_level_code")
    if canon_stages and level in _CANON_STAGES:
        return _Level(None, _CANON_STAGES[level], "canon_three_stage")
    return _numeric_level(level, max_capacity, unit, receptacle)


def _canon_stages(rows: Mapping[int, Mapping[Oid, Value]], enterprise: int | None) -> bool:
    """True when every numeric level is 100/10/1 with max 100 (Canon three-stage MIB)."""
    if enterprise != CANON:
        return False
    numeric = []
    for row in rows.values():
        level = _int(row.get(LEVEL))
        if level is not None and level >= 0:
            numeric.append((level, _int(row.get(MAX_CAPACITY))))
    return bool(numeric) and all(lvl in _CANON_STAGES and mx == 100 for lvl, mx in numeric)


def _missing_problems(rows: Mapping[int, Mapping[Oid, Value]]) -> list[Problem]:
    problems = []
    for prefix, what in (
        (SUPPLY_TYPE, "type 'unknown'"),
        (SUPPLY_CLASS, "class inferred from type"),
        (LEVEL, "state 'unknown'"),
    ):
        absent = sorted(index for index, row in rows.items() if prefix not in row)
        if absent:
            problems.append(
                Problem(
                    field="supplies",
                    oid=format_oid(prefix),
                    reason="missing",
                    detail=f"no value for supplies {absent[:20]}; {what}",
                )
            )
    return problems


def _enum(
    value: Value | None, table: Mapping[int, str], oid: Oid, index: int, problems: list[Problem]
) -> str | None:
    """Name of an enum value; None when absent; 'unknown' + Problem when not in the TC."""
    if value is None:
        return None
    code = _int(value)
    if code is not None and code in table:
        return table[code]
    reason: Reason = "wrong_type" if code is None else "unknown_enum"
    problems.append(
        Problem(
            field=f"supplies.{index}", oid=format_oid(oid), reason=reason, detail=f"{value!r:.80}"
        )
    )
    return "unknown"


def decode_supplies(
    varbinds: Varbinds, *, enterprise: int | None, hr_device_index: int | None
) -> tuple[list[Supply], list[Problem]]:
    """Every supply of the printer at ``hr_device_index``, in supply-index order."""
    device = printer_row_index(varbinds, _ROW_COLUMNS, hr_device_index)
    if device is None:
        return [], []
    rows: dict[int, dict[Oid, Value]] = {}
    for prefix in _ROW_COLUMNS:
        for suffix, value in column(varbinds, prefix).items():
            if len(suffix) == 2 and suffix[0] == device:
                rows.setdefault(suffix[1], {})[prefix] = value
    problems = _missing_problems(rows)
    canon = _canon_stages(rows, enterprise)
    supplies = [
        _supply(
            index=index,
            row=rows[index],
            varbinds=varbinds,
            device=device,
            enterprise=enterprise,
            canon=canon,
            problems=problems,
        )
        for index in sorted(rows)
    ]
    if enterprise == RICOH:
        supplies = _with_ricoh_private_levels(supplies, varbinds)
    supplies, found = with_cartridge_identity(
        supplies, varbinds, enterprise=enterprise, state_of=_state_from_remaining
    )
    return supplies, problems + found


def _with_ricoh_private_levels(supplies: list[Supply], varbinds: Varbinds) -> list[Supply]:
    """Fill uninformative standard levels from Ricoh's private toner table, matched by name.

    Ricoh firmware often answers -3 or -2 in prtMarkerSuppliesLevel for every
    supply (InfotelGLPI/printercounters #44) while the private table
    ``…367.3.2.1.2.24.1.1`` (.2 name, .5 level) holds the remaining percent,
    or -100 for near empty (Checkmk ``ricoh_toner``). Only supplies whose
    standard reading has no amount (``unknown`` / ``some_remaining``) are
    replaced, and only by a private row with the same name.
    """
    levels = column(varbinds, RICOH_TONER_LEVEL)
    private: dict[str, tuple[int, Oid]] = {}
    for suffix, raw_name in column(varbinds, RICOH_TONER_NAME).items():
        name, level = decode_text(raw_name, max_len=255), _int(levels.get(suffix))
        if name is not None and level is not None:
            private.setdefault(name.casefold(), (level, RICOH_TONER_LEVEL + suffix))
    result = []
    for supply in supplies:
        found = private.get((supply.description or "").casefold())
        if found is None or supply.state not in ("unknown", "some_remaining"):
            result.append(supply)
            continue
        level = found[0]
        if level == -100:
            update: dict[str, object] = {"state": "low", "quirk": "ricoh_near_empty"}
        elif 0 <= level <= 100:
            state = _state_from_remaining(float(level))
            update = {"percent": float(level), "state": state, "quirk": "ricoh_private_level"}
        else:
            update = {}
        result.append(supply.model_copy(update=update))
    return result


def _supply(
    *,
    index: int,
    row: Mapping[Oid, Value],
    varbinds: Varbinds,
    device: int,
    enterprise: int | None,
    canon: bool,
    problems: list[Problem],
) -> Supply:
    def oid(prefix: Oid) -> Oid:
        return prefix + (device, index)

    type_name = _enum(row.get(SUPPLY_TYPE), SUPPLY_TYPES, oid(SUPPLY_TYPE), index, problems)
    type_name = type_name or "unknown"
    raw_class = row.get(SUPPLY_CLASS)
    _enum(raw_class, SUPPLY_CLASSES, oid(SUPPLY_CLASS), index, problems)  # records bad values
    class_code = _int(raw_class)
    supply_class: SupplyClass
    if class_code is not None and class_code in SUPPLY_CLASSES:
        supply_class = SUPPLY_CLASSES[class_code]
    elif type_name in _WASTE_TYPES:
        supply_class = "receptacle"
    else:
        supply_class = "other" if type_name in ("unknown", "other") else "consumed"
    unit = _enum(row.get(SUPPLY_UNIT), SUPPLY_UNITS, oid(SUPPLY_UNIT), index, problems)

    raw_max, raw_level = row.get(MAX_CAPACITY), row.get(LEVEL)
    for prefix, raw in ((MAX_CAPACITY, raw_max), (LEVEL, raw_level)):
        if raw is not None and _int(raw) is None:
            problems.append(
                Problem(
                    field=f"supplies.{index}",
                    oid=format_oid(oid(prefix)),
                    reason="wrong_type",
                    detail=f"expected an integer, got {raw!r:.80}",
                )
            )
    max_capacity, level = _int(raw_max), _int(raw_level)
    if max_capacity is not None and max_capacity < -2:
        problems.append(
            Problem(
                field=f"supplies.{index}",
                oid=format_oid(oid(MAX_CAPACITY)),
                reason="out_of_range",
                detail=f"max capacity {max_capacity} below -2",
            )
        )
    decoded = _level(
        level,
        max_capacity,
        unit=unit,
        receptacle=supply_class == "receptacle",
        enterprise=enterprise,
        canon_stages=canon,
    )
    if decoded.problem is not None:
        problems.append(
            Problem(
                field=f"supplies.{index}",
                oid=format_oid(oid(LEVEL)),
                reason="out_of_range",
                detail=decoded.problem,
            )
        )
    description = row.get(DESCRIPTION)
    return Supply(
        index=index,
        description=decode_text(description, max_len=255) if description is not None else None,
        type=type_name,
        supply_class=supply_class,
        colorant=_colorant(row.get(COLORANT_INDEX), varbinds, device),
        unit=unit,
        max_capacity=max_capacity if max_capacity is not None and max_capacity >= 0 else None,
        level=level,
        percent=decoded.percent,
        state=decoded.state,
        quirk=decoded.quirk,
    )


def _colorant(raw_index: Value | None, varbinds: Varbinds, device: int) -> str | None:
    """prtMarkerColorantValue of the supply's colorant; 0 means the supply has none."""
    colorant = _int(raw_index)
    if not colorant:
        return None
    value = varbinds.get(COLORANT_VALUE + (device, colorant))
    return decode_text(value, max_len=64) if value is not None else None
