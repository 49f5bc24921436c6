from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mibs.models import Problem, Supply
from mibs.plan import SUPPLY_COLUMNS, vendor_plan, vendor_supply_plan
from mibs.supplies import (
    COLORANT_INDEX,
    COLORANT_VALUE,
    DESCRIPTION,
    LEVEL,
    MARKER_INDEX,
    MAX_CAPACITY,
    RICOH_TONER_LEVEL,
    RICOH_TONER_NAME,
    SUPPLY_CLASS,
    SUPPLY_TYPE,
    SUPPLY_TYPES,
    SUPPLY_UNIT,
    decode_supplies,
    supply_display_name,
)
from mibs.values import Oid, Value, format_oid

CONSUMED, RECEPTACLE = 3, 4
TONER, WASTE_TONER, OPC = 3, 4, 9


def row(
    index: int = 1,
    *,
    hr: int = 1,
    cls: Value | None = CONSUMED,
    kind: int | None = TONER,
    max_capacity: Value | None = 100,
    level: Value | None = 50,
    unit: int | None = None,
    colorant: int | None = None,
    description: bytes | None = None,
) -> dict[Oid, Value]:
    varbinds: dict[Oid, Value] = {MARKER_INDEX + (hr, index): 1}
    for prefix, value in (
        (SUPPLY_CLASS, cls),
        (SUPPLY_TYPE, kind),
        (MAX_CAPACITY, max_capacity),
        (LEVEL, level),
        (SUPPLY_UNIT, unit),
        (COLORANT_INDEX, colorant),
        (DESCRIPTION, description),
    ):
        if value is not None:
            varbinds[prefix + (hr, index)] = value
    return varbinds


def one(
    varbinds: dict[Oid, Value], enterprise: int | None = None, hr: int | None = 1
) -> tuple[Supply, list[Problem]]:
    supplies, problems = decode_supplies(varbinds, enterprise=enterprise, hr_device_index=hr)
    assert len(supplies) == 1
    return supplies[0], problems


def test_plan_walks_supplies_columns_2_to_9_and_colorant_value() -> None:
    oids = [item.oid for item in SUPPLY_COLUMNS]
    assert oids[:-1] == [(1, 3, 6, 1, 2, 1, 43, 11, 1, 1, n) for n in range(2, 10)]
    assert oids[-1] == (1, 3, 6, 1, 2, 1, 43, 12, 1, 1, 4)


def test_type_names_cover_rfc3805_in_snake_case() -> None:
    assert len(SUPPLY_TYPES) == 34
    assert SUPPLY_TYPES[4] == "waste_toner"
    assert SUPPLY_TYPES[21] == "toner_cartridge"
    assert SUPPLY_TYPES[34] == "covers"
    assert all(name == name.lower() for name in SUPPLY_TYPES.values())


def test_full_row_decodes_every_field() -> None:
    varbinds = row(
        colorant=2,
        unit=19,
        max_capacity=100,
        level=28,
        description=b"Black Cartridge HP CF217A\x00",
    )
    varbinds[COLORANT_VALUE + (1, 2)] = b"black\x00"
    supply, problems = one(varbinds)
    assert supply == Supply(
        index=1,
        description="Black Cartridge HP CF217A",
        type="toner",
        supply_class="consumed",
        colorant="black",
        unit="percent",
        max_capacity=100,
        level=28,
        percent=28.0,
        state="ok",
        part_number="CF217A",
        identity_sources={"part_number": "description"},
    )
    assert problems == []


@pytest.mark.parametrize(
    ("level", "max_capacity", "percent", "state"),
    [
        (22050, 45000, 49.0, "ok"),
        (11, 100, 11.0, "ok"),
        (10, 100, 10.0, "low"),  # LOW_PERCENT is inclusive
        (1, 100, 1.0, "low"),
        (0, 100, 0.0, "empty"),
        (100, 100, 100.0, "ok"),
        (-1, 100, None, "unrestricted"),
        (-2, 100, None, "unknown"),
        (-3, 100, None, "some_remaining"),
        (40, -2, None, "some_remaining"),  # some left, amount unknown
        (0, -2, None, "empty"),
        (5, -1, None, "some_remaining"),
        (5, 0, None, "some_remaining"),
    ],
)
def test_consumed_levels(level: int, max_capacity: int, percent: float | None, state: str) -> None:
    supply, problems = one(row(level=level, max_capacity=max_capacity))
    assert (supply.percent, supply.state, supply.quirk) == (percent, state, None)
    assert supply.level == level
    assert supply.max_capacity == (max_capacity if max_capacity >= 0 else None)
    assert problems == []


@pytest.mark.parametrize(
    ("level", "max_capacity", "percent", "state"),
    [
        (100, 100, 0.0, "ok"),  # all space left: empty box
        (25, 100, 75.0, "ok"),
        (0, 100, 100.0, "full"),  # no space left
        (-3, 100, None, "some_remaining"),
        (0, -2, None, "full"),
        (10, -2, None, "some_remaining"),
    ],
)
def test_receptacle_level_is_remaining_space(
    level: int, max_capacity: int, percent: float | None, state: str
) -> None:
    supply, _ = one(row(cls=RECEPTACLE, kind=WASTE_TONER, level=level, max_capacity=max_capacity))
    assert supply.supply_class == "receptacle"
    assert (supply.percent, supply.state) == (percent, state)


def test_percent_unit_with_unknown_max_is_the_percent() -> None:
    supply, _ = one(row(unit=19, max_capacity=-2, level=35))
    assert (supply.percent, supply.state) == (35.0, "ok")


def test_level_above_max_in_percent_range_is_the_level_is_percent_quirk() -> None:
    # apple/cups #3551: level already in percent while max is a page yield
    supply, problems = one(row(max_capacity=50, level=80))
    assert (supply.percent, supply.state, supply.quirk) == (80.0, "ok", "level_is_percent")
    assert problems == []


def test_level_far_above_max_is_out_of_range() -> None:
    supply, problems = one(row(max_capacity=100, level=150))  # librenms #3030
    assert (supply.percent, supply.state) == (None, "unknown")
    assert [(p.field, p.oid, p.reason) for p in problems] == [
        ("supplies.1", "1.3.6.1.2.1.43.11.1.1.9.1.1", "out_of_range")
    ]


def test_ricoh_minus_100_is_near_empty_only_on_ricoh() -> None:
    supply, problems = one(row(level=-100), enterprise=367)
    assert (supply.state, supply.quirk, supply.percent) == ("low", "ricoh_near_empty", None)
    assert problems == []
    supply, problems = one(row(level=-100), enterprise=11)
    assert (supply.state, supply.quirk) == ("unknown", None)
    assert [p.reason for p in problems] == ["out_of_range"]


def test_ricoh_private_table_fills_levels_the_standard_table_does_not_give() -> None:
    assert {i.oid for i in vendor_supply_plan(367).columns} == {RICOH_TONER_NAME, RICOH_TONER_LEVEL}
    assert vendor_supply_plan(11).columns == ()
    # the poll plan of a Ricoh printer asks for the private table (it once did not)
    ricoh_plan = vendor_plan((1, 3, 6, 1, 4, 1, 367, 1))
    assert {RICOH_TONER_NAME, RICOH_TONER_LEVEL} <= {i.oid for i in ricoh_plan.columns}
    varbinds = {
        **row(1, level=-3, description=b"Black Toner"),
        **row(2, level=-3, description=b"Cyan Toner"),
        **row(3, level=40, description=b"Magenta Toner"),
        **row(4, level=-3, description=b"Yellow Toner"),
        RICOH_TONER_NAME + (1,): b"Black Toner",
        RICOH_TONER_LEVEL + (1,): 30,
        RICOH_TONER_NAME + (2,): b"cyan toner",
        RICOH_TONER_LEVEL + (2,): -100,
        RICOH_TONER_NAME + (3,): b"Magenta Toner",
        RICOH_TONER_LEVEL + (3,): 90,  # the standard table's 40 % is kept
    }
    supplies, problems = decode_supplies(varbinds, enterprise=367, hr_device_index=1)
    assert [(s.percent, s.state, s.quirk) for s in supplies] == [
        (30.0, "ok", "ricoh_private_level"),
        (None, "low", "ricoh_near_empty"),
        (40.0, "ok", None),
        (None, "some_remaining", None),  # no private row of that name
    ]
    assert supplies[0].level == -3  # the raw standard level stays as sent
    assert problems == []
    # another vendor's private-looking rows are ignored
    supplies, _ = decode_supplies(varbinds, enterprise=11, hr_device_index=1)
    assert [s.quirk for s in supplies] == [None] * 4


def test_brother_status_codes_need_unknown_max() -> None:
    expected = {0: "ok", 1: "low", 2: "empty", 3: "low"}
    for code, state in expected.items():
        supply, _ = one(row(max_capacity=-2, level=code), enterprise=2435)
        assert (supply.state, supply.quirk) == (state, "brother_level_code")
    # with a real capacity the level is an amount (the HL-5370DW drum)
    supply, _ = one(row(kind=OPC, max_capacity=25000, level=2), enterprise=2435)
    assert (supply.state, supply.quirk) == ("low", None)
    # another vendor's 0 with unknown max is empty, per RFC
    supply, _ = one(row(max_capacity=-2, level=0), enterprise=11)
    assert (supply.state, supply.quirk) == ("empty", None)


def test_canon_three_stage_only_when_every_level_is_a_stage() -> None:
    staged = {**row(1, level=100), **row(2, level=10), **row(3, level=1)}
    supplies, _ = decode_supplies(staged, enterprise=1602, hr_device_index=1)
    assert [(s.state, s.percent, s.quirk) for s in supplies] == [
        ("ok", None, "canon_three_stage"),
        ("low", None, "canon_three_stage"),
        ("low", None, "canon_three_stage"),
    ]
    # one real percentage proves the device reports amounts
    mixed = {**staged, **row(4, level=70)}
    supplies, _ = decode_supplies(mixed, enterprise=1602, hr_device_index=1)
    assert [s.quirk for s in supplies] == [None] * 4
    assert [s.percent for s in supplies] == [100.0, 10.0, 1.0, 70.0]
    # the same levels on another vendor are plain percentages
    supplies, _ = decode_supplies(staged, enterprise=11, hr_device_index=1)
    assert [s.percent for s in supplies] == [100.0, 10.0, 1.0]


def test_colorant_zero_means_none_and_missing_value_is_none() -> None:
    supply, _ = one(row(colorant=0))
    assert supply.colorant is None
    supply, _ = one(row(colorant=3))
    assert supply.colorant is None


def test_unknown_and_wrong_type_enums_are_problems() -> None:
    supply, problems = one(row(kind=99, unit=55))
    assert supply.type == "unknown"
    assert supply.unit == "unknown"
    assert [(p.oid, p.reason) for p in problems] == [
        (format_oid(SUPPLY_TYPE + (1, 1)), "unknown_enum"),
        (format_oid(SUPPLY_UNIT + (1, 1)), "unknown_enum"),
    ]
    supply, problems = one(row(cls=b"3", level=b"50"))
    assert supply.supply_class == "consumed"  # inferred from the toner type
    assert supply.level is None
    assert supply.state == "unknown"
    assert {p.reason for p in problems} == {"wrong_type"}


def test_missing_columns_give_one_problem_each_and_class_is_inferred() -> None:
    varbinds = {
        **row(1, cls=None, kind=WASTE_TONER, level=5),
        **row(2, cls=None, kind=TONER),
        **row(3, cls=None, kind=None),
    }
    supplies, problems = decode_supplies(varbinds, enterprise=None, hr_device_index=1)
    assert [(s.type, s.supply_class) for s in supplies] == [
        ("waste_toner", "receptacle"),
        ("toner", "consumed"),
        ("unknown", "other"),
    ]
    assert supplies[0].percent == 95.0  # 5 of 100 space left
    assert [(p.field, p.oid, p.reason) for p in problems] == [
        ("supplies", format_oid(SUPPLY_TYPE), "missing"),
        ("supplies", format_oid(SUPPLY_CLASS), "missing"),
    ]
    assert "[3]" in (problems[0].detail or "")
    assert "[1, 2, 3]" in (problems[1].detail or "")


def test_rows_of_the_printers_hr_device_index_only() -> None:
    varbinds = {**row(1, hr=1, level=10), **row(1, hr=2, level=90), **row(2, hr=2, level=80)}
    supplies, _ = decode_supplies(varbinds, enterprise=None, hr_device_index=2)
    assert [(s.index, s.level) for s in supplies] == [(1, 90), (2, 80)]
    supplies, _ = decode_supplies(varbinds, enterprise=None, hr_device_index=None)
    assert [(s.index, s.level) for s in supplies] == [(1, 10)]
    assert decode_supplies({}, enterprise=None, hr_device_index=1) == ([], [])


def test_display_name_strips_part_and_serial_numbers() -> None:
    assert supply_display_name("Black Toner, PN 006R01509;SN48178080E0000481") == "Black Toner"
    assert supply_display_name("Fuser, PN unknown;SNunknown") == "Fuser"
    assert supply_display_name("Black Cartridge HP CF217A") == "Black Cartridge HP CF217A"
    assert supply_display_name(None) is None


_COLUMNS = [MARKER_INDEX, COLORANT_INDEX, SUPPLY_CLASS, SUPPLY_TYPE, DESCRIPTION, SUPPLY_UNIT]
_COLUMNS += [MAX_CAPACITY, LEVEL, COLORANT_VALUE]
_RICOH = st.builds(
    lambda prefix, index: prefix + (index,),
    st.sampled_from([RICOH_TONER_NAME, RICOH_TONER_LEVEL]),
    st.integers(0, 4),
)
_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([-100, -3, -2, -1, 0, 1, 3, 4, 10, 19, 100]),
    st.binary(max_size=40),
    st.tuples(st.integers(0, 10)),
)
_OIDS = st.builds(
    lambda prefix, hr, index: prefix + (hr, index),
    st.sampled_from(_COLUMNS),
    st.sampled_from([1, 2]),
    st.integers(0, 4),
)


@settings(max_examples=300)
@given(
    st.dictionaries(st.one_of(_OIDS, _RICOH), _VALUES, max_size=30),
    st.sampled_from([None, 367, 2435, 1602, 11]),
    st.sampled_from([None, 1, 2]),
)
def test_no_input_crashes_and_percent_is_a_share(
    varbinds: dict[Oid, Value], enterprise: int | None, hr: int | None
) -> None:
    supplies, problems = decode_supplies(varbinds, enterprise=enterprise, hr_device_index=hr)
    assert [s.index for s in supplies] == sorted({s.index for s in supplies})
    for supply in supplies:
        assert supply.percent is None or 0.0 <= supply.percent <= 100.0
        assert supply.max_capacity is None or supply.max_capacity >= 0
    assert all(isinstance(p, Problem) for p in problems)
