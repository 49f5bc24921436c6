from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from mibs.counters import (
    IC_IMAGE_TOTAL,
    IC_IMPRESSION_FULL_COLOR,
    IC_IMPRESSION_MONO,
    IC_IMPRESSION_TOTAL,
    IC_KEY_SERVICE_TYPE,
    IC_TWO_SIDED_TOTAL,
    MAX_COUNTER,
    PRT_MARKER_COUNTER_UNIT,
    PRT_MARKER_DEFAULT_INDEX,
    PRT_MARKER_LIFE_COUNT,
    PRT_MARKER_POWER_ON_COUNT,
    CounterResult,
    decode_counters,
)
from mibs.plan import COUNTER_COLUMNS, vendor_counter_plan
from mibs.values import Oid, Value, format_oid, parse_oid

LIFE = PRT_MARKER_LIFE_COUNT
HP_TOTAL = parse_oid("1.3.6.1.4.1.11.2.3.9.4.2.1.4.1.2.5.0")
HP_MONO = parse_oid("1.3.6.1.4.1.11.2.3.9.4.2.1.4.1.2.6.0")
KM = "1.3.6.1.4.1.18334.1.1.1.5.7.2"
RICOH_TYPE = parse_oid("1.3.6.1.4.1.367.3.2.1.2.19.5.1.2")
RICOH_VALUE = parse_oid("1.3.6.1.4.1.367.3.2.1.2.19.5.1.9")
LIFETIME_ROW = (3, 3)  # icWorkType workTotals(3), icPersistence lifetime(3)


def decode(
    varbinds: Mapping[Oid, Value], enterprise: int | None = None, hr: int | None = 1
) -> CounterResult:
    return decode_counters(varbinds, enterprise=enterprise, hr_device_index=hr)


def reasons(result: CounterResult) -> list[tuple[str, str | None, str]]:
    return [(p.field, p.oid, p.reason) for p in result.problems]


def test_plan_walks_marker_and_pwg_columns() -> None:
    oids = {item.oid for item in COUNTER_COLUMNS}
    assert {LIFE, PRT_MARKER_POWER_ON_COUNT, PRT_MARKER_COUNTER_UNIT} <= oids
    assert {IC_KEY_SERVICE_TYPE, IC_IMPRESSION_TOTAL, IC_IMAGE_TOTAL, IC_TWO_SIDED_TOTAL} <= oids
    assert all(item.name.startswith("counters") for item in COUNTER_COLUMNS)


def test_vendor_plan_only_for_that_vendor() -> None:
    assert vendor_counter_plan(None).scalars == ()
    assert vendor_counter_plan(99999).scalars == ()
    hp = vendor_counter_plan(11)
    assert HP_TOTAL in {item.oid for item in hp.scalars}
    assert {item.name for item in hp.scalars} >= {"counters.total", "counters.mono"}
    ricoh = vendor_counter_plan(367)
    assert {item.oid for item in ricoh.columns} == {RICOH_TYPE, RICOH_VALUE}
    # every vendor the notes list has a plan
    for enterprise in (11, 367, 1347, 1602, 18334, 253, 2385, 641, 2435, 1248):
        plan = vendor_counter_plan(enterprise)
        assert plan.scalars or plan.columns, enterprise


def test_printer_mib_total_power_on_and_unit() -> None:
    result = decode(
        {
            LIFE + (1, 1): 7792,
            PRT_MARKER_POWER_ON_COUNT + (1, 1): 33,
            PRT_MARKER_COUNTER_UNIT + (1, 1): 7,
        }
    )
    assert result.counters.total == 7792
    assert result.counters.power_on == 33
    assert result.counters.unit == "impressions"
    assert result.sources == {
        "total": "1.3.6.1.2.1.43.10.2.1.4.1.1",
        "impressions": "1.3.6.1.2.1.43.10.2.1.4.1.1",  # unit 7: the total is in impressions
        "power_on": "1.3.6.1.2.1.43.10.2.1.5.1.1",
    }
    assert result.problems == []


def test_rows_of_the_printers_hr_device_index_are_used() -> None:
    varbinds: dict[Oid, Value] = {LIFE + (1, 1): 10, LIFE + (2, 1): 20}
    assert decode(varbinds, hr=2).counters.total == 20
    assert decode(varbinds, hr=1).counters.total == 10
    # unknown index, or one without rows: the lowest hrDeviceIndex present
    assert decode(varbinds, hr=None).counters.total == 10
    assert decode({LIFE + (3, 1): 30}, hr=1).counters.total == 30


def test_default_marker_wins_over_marker_one_and_markers_are_not_summed() -> None:
    varbinds: dict[Oid, Value] = {LIFE + (1, 1): 100, LIFE + (1, 2): 90}
    assert decode(varbinds).counters.total == 100
    varbinds[PRT_MARKER_DEFAULT_INDEX + (1,)] = 2
    result = decode(varbinds)
    assert result.counters.total == 90
    assert result.sources["total"] == "1.3.6.1.2.1.43.10.2.1.4.1.2"


def test_unit_names_follow_rfc3805() -> None:
    assert decode({LIFE + (1, 1): 5, PRT_MARKER_COUNTER_UNIT + (1, 1): 8}).counters.unit == "sheets"
    assert (
        decode({LIFE + (1, 1): 5, PRT_MARKER_COUNTER_UNIT + (1, 1): 17}).counters.unit == "meters"
    )
    assert (
        decode({LIFE + (1, 1): 5, PRT_MARKER_COUNTER_UNIT + (1, 1): 99}).counters.unit == "unknown"
    )


def test_zero_is_a_reading_not_missing() -> None:
    result = decode({LIFE + (1, 1): 0})
    assert result.counters.total == 0
    assert result.problems == []


def test_missing_total_is_a_problem_other_counters_are_not() -> None:
    result = decode({PRT_MARKER_POWER_ON_COUNT + (1, 1): 3})
    assert result.counters.total is None
    assert result.counters.power_on == 3
    assert reasons(result) == [("counters.total", format_oid(LIFE), "missing")]


def test_wrong_type_and_out_of_range_drop_the_value_with_a_problem() -> None:
    bad: list[Value] = [b"12345", (1, 3, 6), -1, MAX_COUNTER + 1]
    expected = ["wrong_type", "wrong_type", "out_of_range", "out_of_range"]
    for raw, reason in zip(bad, expected, strict=True):
        result = decode({LIFE + (1, 1): raw})
        assert result.counters.total is None
        assert (
            "counters.total",
            "1.3.6.1.2.1.43.10.2.1.4.1.1",
            reason,
        ) in reasons(result)
        assert any(str(raw)[:10] in (p.detail or "") for p in result.problems)


def test_bad_rfc_value_falls_back_to_the_vendor_meter() -> None:
    result = decode({LIFE + (1, 1): -5, HP_TOTAL: 1500}, enterprise=11)
    assert result.counters.total == 1500
    assert result.sources["total"] == format_oid(HP_TOTAL)
    assert [p.reason for p in result.problems] == ["out_of_range"]


def test_vendor_total_disagreeing_with_rfc_total_keeps_rfc_and_says_so() -> None:
    # glpi-agent #1155: a vendor total a few pages off the true count
    result = decode({LIFE + (1, 1): 1000, HP_TOTAL: 996, HP_MONO: 1000}, enterprise=11)
    assert result.counters.total == 1000
    assert result.counters.mono == 1000
    assert reasons(result) == [("counters.total", format_oid(HP_TOTAL), "source_disagreement")]
    assert "996" in (result.problems[0].detail or "")


def test_no_disagreement_when_rfc_counts_another_unit() -> None:
    # prtMarkerCounterUnit sheets(8): impressions from a vendor legitimately differ
    varbinds: dict[Oid, Value] = {
        LIFE + (1, 1): 1000,
        PRT_MARKER_COUNTER_UNIT + (1, 1): 8,
        HP_TOTAL: 1700,
    }
    result = decode(varbinds, enterprise=11)
    assert result.counters.total == 1000
    assert result.problems == []


def test_vendor_meters_are_ignored_for_another_vendor() -> None:
    result = decode({LIFE + (1, 1): 10, HP_MONO: 10}, enterprise=367)
    assert result.counters.mono is None
    assert "mono" not in result.sources


def pwg(key: int, service: int, **columns: int) -> dict[Oid, Value]:
    varbinds: dict[Oid, Value] = {IC_KEY_SERVICE_TYPE + (key,): service}
    for name, value in columns.items():
        prefix = {
            "total": IC_IMPRESSION_TOTAL,
            "mono": IC_IMPRESSION_MONO,
            "color": IC_IMPRESSION_FULL_COLOR,
            "images": IC_IMAGE_TOTAL,
            "two_sided": IC_TWO_SIDED_TOTAL,
        }[name]
        varbinds[prefix + (key, *LIFETIME_ROW)] = value
    return varbinds


def test_pwg_services_fill_the_split_counters() -> None:
    varbinds = {
        **pwg(1, 3, total=500, mono=300, color=200, two_sided=40),  # systemTotals
        **pwg(2, 11, total=350, mono=200, color=150),  # print
        **pwg(3, 4, total=140, mono=100, color=40),  # copy
        **pwg(4, 7, total=10),  # faxIn
        **pwg(5, 12, images=77),  # scan
    }
    # a powerOn(4) row of systemTotals must not be read as lifetime
    varbinds[IC_IMPRESSION_TOTAL + (1, 3, 4)] = 9
    result = decode(varbinds)
    c = result.counters
    assert (c.total, c.mono, c.color, c.duplex) == (500, 300, 200, 40)
    assert (c.print, c.print_mono, c.print_color) == (350, 200, 150)
    assert (c.copies, c.copy_mono, c.copy_color) == (140, 100, 40)
    assert (c.fax, c.scan) == (10, 77)
    assert c.unit == "impressions"  # PWG counts impressions
    assert result.sources["copy"] == format_oid(IC_IMPRESSION_TOTAL + (3, 3, 3))
    assert result.sources["scan"] == format_oid(IC_IMAGE_TOTAL + (5, 3, 3))
    assert c.model_dump(exclude_none=True)["copy"] == 140  # JSON name of the copy meter
    assert result.problems == []


def test_printer_mib_total_beats_pwg_which_beats_vendor() -> None:
    varbinds = {LIFE + (1, 1): 500, **pwg(1, 3, total=500, mono=480), HP_MONO: 470}
    result = decode(varbinds, enterprise=11)
    assert result.sources["total"].startswith(format_oid(LIFE))
    assert result.counters.mono == 480
    assert result.sources["mono"].startswith(format_oid(IC_IMPRESSION_MONO))


def test_vendor_first_of_alternatives_and_sums_need_every_part() -> None:
    epson = "1.3.6.1.4.1.1248.1.2.2.27.1.1"
    result = decode({parse_oid(f"{epson}.33.1.1"): 321}, enterprise=1248)
    assert result.counters.total == 321
    canon = "1.3.6.1.4.1.1602.1.11.1.3.1.4"
    both = {parse_oid(f"{canon}.112"): 5, parse_oid(f"{canon}.122"): 7}
    result = decode(both, enterprise=1602)
    assert result.counters.large == 12  # black large + colour large, no 103 counter
    assert result.sources["large"] == f"{canon}.112+{canon}.122"
    result = decode({parse_oid(f"{canon}.122"): 7}, enterprise=1602)
    assert result.counters.large is None
    assert result.counters.large_color == 7


def test_typed_vendor_table_adds_rows_of_one_counter() -> None:
    varbinds: dict[Oid, Value] = {
        RICOH_TYPE + (1,): 10,
        RICOH_VALUE + (1,): 5000,
        RICOH_TYPE + (2,): 202,  # full-colour copies
        RICOH_VALUE + (2,): 30,
        RICOH_TYPE + (3,): 203,  # single/two-colour copies
        RICOH_VALUE + (3,): 12,
        RICOH_TYPE + (4,): 9999,  # a type we do not map
        RICOH_VALUE + (4,): 1,
    }
    result = decode(varbinds, enterprise=367)
    assert result.counters.total == 5000
    assert result.counters.copy_color == 42
    assert (
        result.sources["copy_color"] == f"{format_oid(RICOH_VALUE)}.2+{format_oid(RICOH_VALUE)}.3"
    )
    assert result.problems == []


def konica_splits(pm: int, cm: int, pc: int, cc: int) -> dict[Oid, Value]:
    return {
        parse_oid(f"{KM}.2.1.5.1.2"): pm,
        parse_oid(f"{KM}.2.1.5.1.1"): cm,
        parse_oid(f"{KM}.2.1.5.2.2"): pc,
        parse_oid(f"{KM}.2.1.5.2.1"): cc,
    }


def test_mono_color_derived_only_when_the_splits_sum_to_total() -> None:
    exact = decode({LIFE + (1, 1): 100, **konica_splits(50, 20, 25, 5)}, enterprise=18334)
    c = exact.counters
    assert (c.mono, c.color, c.print, c.copies) == (70, 30, 75, 25)
    assert "+" in exact.sources["mono"]
    # 7 pages more than the splits: fax or report pages exist, a sum would be invented
    short = decode({LIFE + (1, 1): 107, **konica_splits(50, 20, 25, 5)}, enterprise=18334)
    c = short.counters
    assert (c.mono, c.color, c.print, c.copies) == (None, None, None, None)
    assert c.print_mono == 50


_RELEVANT = [
    LIFE + (1, 1),
    PRT_MARKER_POWER_ON_COUNT + (1, 1),
    PRT_MARKER_COUNTER_UNIT + (1, 1),
    PRT_MARKER_DEFAULT_INDEX + (1,),
    IC_KEY_SERVICE_TYPE + (1,),
    IC_IMPRESSION_TOTAL + (1, 3, 3),
    IC_IMPRESSION_MONO + (1, 3, 3),
    IC_IMAGE_TOTAL + (1, 3, 3),
    HP_TOTAL,
    HP_MONO,
    RICOH_TYPE + (1,),
    RICOH_VALUE + (1,),
    parse_oid("1.3.6.1.4.1.1602.1.11.1.3.1.4.112"),
    parse_oid("1.3.6.1.4.1.1602.1.11.1.3.1.4.113"),
    *konica_splits(1, 1, 1, 1),
]
_VALUES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 3, 7, 8, 10, 11, 12, 202, -1, -2, -3, 2**32 - 1, 2**64 - 1]),
    st.binary(max_size=20),
    st.tuples(st.integers(0, 2**32)),
)


@settings(max_examples=300)
@given(
    st.dictionaries(st.sampled_from(_RELEVANT), _VALUES),
    st.sampled_from([None, 11, 367, 1602, 18334, 1248]),
    st.sampled_from([None, 1, 2]),
)
def test_no_input_crashes_and_every_value_is_sane(
    varbinds: dict[Oid, Value], enterprise: int | None, hr: int | None
) -> None:
    result = decode(varbinds, enterprise, hr)
    dumped = result.counters.model_dump(exclude_none=True)
    for name, value in dumped.items():
        if name == "unit":
            continue
        assert isinstance(value, int)
        assert 0 <= value <= MAX_COUNTER
        assert name in result.sources
    for source in result.sources.values():
        for part in source.split("+"):
            assert parse_oid(part) in varbinds
    assert (result.counters.total is None) == any(p.reason == "missing" for p in result.problems)
