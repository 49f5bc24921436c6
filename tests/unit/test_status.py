from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mibs.status import (
    ALERT_COLUMNS,
    HR_DEVICE_STATUS,
    HR_PRINTER_ERROR_STATE,
    HR_PRINTER_STATUS,
    PRT_ALERT_CODE,
    PRT_ALERT_DESCRIPTION,
    PRT_ALERT_GROUP,
    PRT_ALERT_GROUP_INDEX,
    PRT_ALERT_LOCATION,
    PRT_ALERT_SEVERITY,
    PRT_ALERT_TIME,
    PRT_ALERT_TRAINING,
    decode_alerts,
    decode_error_bits,
    decode_status,
)
from mibs.values import Oid, Value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # RFC 2790: bit 0 is the most significant bit of the first octet
        (b"\x80", ["low_paper"]),
        (b"\x01", ["service_requested"]),
        (b"\x00", []),
        (b"", []),
        # second octet (RFC 3805 bits 8-14)
        (b"\x00\x80", ["input_tray_missing"]),
        (b"\x20\x04", ["low_toner", "input_tray_empty"]),
        (b"\x08\x02", ["door_open", "overdue_prevent_maint"]),
        (
            b"\xff\xfe",
            [
                "low_paper",
                "no_paper",
                "low_toner",
                "no_toner",
                "door_open",
                "jammed",
                "offline",
                "service_requested",
                "input_tray_missing",
                "output_tray_missing",
                "marker_supply_missing",
                "output_near_full",
                "output_full",
                "input_tray_empty",
                "overdue_prevent_maint",
            ],
        ),
        # an int is read as the octets of the same number
        (0x40, ["no_paper"]),
        (0x0100, ["service_requested"]),
        (0, []),
    ],
)
def test_error_bits_msb_first(raw: bytes | int, expected: list[str]) -> None:
    names, unknown = decode_error_bits(raw)
    assert names == expected
    assert unknown == []


def test_undefined_bits_are_reported_separately() -> None:
    assert decode_error_bits(b"\x00\x01") == ([], [15])
    assert decode_error_bits(b"\x80\x00\x80") == (["low_paper"], [16])


def test_status_of_the_printer_row() -> None:
    varbinds: dict[Oid, Value] = {
        HR_PRINTER_STATUS + (1,): 4,
        HR_DEVICE_STATUS + (1,): 5,  # another device's row: ignored
        HR_PRINTER_STATUS + (2,): 3,
        HR_DEVICE_STATUS + (2,): 3,
        HR_PRINTER_ERROR_STATE + (2,): b"\x20",
    }
    status, problems = decode_status(varbinds, 2)
    assert status.printer_status == "idle"
    assert status.device_status == "warning"
    assert status.errors == ["low_toner"]
    assert problems == []


def test_no_index_no_row_status() -> None:
    status, problems = decode_status({HR_PRINTER_STATUS + (1,): 3}, None)
    assert status.printer_status is None
    assert problems == []


def test_bad_status_values_cost_one_field_each() -> None:
    varbinds: dict[Oid, Value] = {
        HR_PRINTER_STATUS + (1,): 9,
        HR_DEVICE_STATUS + (1,): b"running",
        HR_PRINTER_ERROR_STATE + (1,): (1, 3, 6),
    }
    status, problems = decode_status(varbinds, 1)
    assert (status.printer_status, status.device_status, status.errors) == (None, None, [])
    assert sorted((p.field, p.oid, p.reason) for p in problems) == [
        ("status.device_status", "1.3.6.1.2.1.25.3.2.1.5.1", "wrong_type"),
        ("status.errors", "1.3.6.1.2.1.25.3.5.1.2.1", "wrong_type"),
        ("status.printer_status", "1.3.6.1.2.1.25.3.5.1.1.1", "out_of_range"),
    ]


def test_negative_int_error_state_is_a_problem() -> None:
    status, problems = decode_status({HR_PRINTER_ERROR_STATE + (1,): -1}, 1)
    assert status.errors == []
    assert [p.reason for p in problems] == ["wrong_type"]


def test_undefined_error_bits_keep_the_defined_ones() -> None:
    status, problems = decode_status({HR_PRINTER_ERROR_STATE + (1,): b"\x10\x01"}, 1)
    assert status.errors == ["no_toner"]
    assert [(p.field, p.reason) for p in problems] == [("status.errors", "out_of_range")]


def _alert(hr: int, index: int, **cells: Value) -> dict[Oid, Value]:
    columns = {
        "severity": PRT_ALERT_SEVERITY,
        "training": PRT_ALERT_TRAINING,
        "group": PRT_ALERT_GROUP,
        "group_index": PRT_ALERT_GROUP_INDEX,
        "location": PRT_ALERT_LOCATION,
        "code": PRT_ALERT_CODE,
        "description": PRT_ALERT_DESCRIPTION,
        "time": PRT_ALERT_TIME,
    }
    return {columns[name] + (hr, index): value for name, value in cells.items()}


def test_alerts_of_the_printer_row_with_rfc_names() -> None:
    varbinds = {
        **_alert(
            2,
            1,
            severity=3,
            training=4,
            group=6,
            group_index=1,
            location=-1,
            code=3,
            description=b"Front cover open\x00",
            time=1234,
        ),
        **_alert(2, 5, severity=4, group=11, group_index=2, code=1104),
        **_alert(1, 1, severity=3, code=8),  # a different hrDeviceIndex: not this printer
    }
    alerts, problems = decode_alerts(varbinds, 2)
    assert problems == []
    assert [(a.index, a.severity, a.group, a.code) for a in alerts] == [
        (1, "critical", "cover", "coverOpen"),
        (5, "warning", "markerSupplies", "markerTonerAlmostEmpty"),
    ]
    first = alerts[0]
    assert first.description == "Front cover open"
    assert (first.training_level, first.group_index, first.location, first.time_ticks) == (
        "trained",
        1,
        -1,
        1234,
    )


def test_unknown_alert_enums_keep_their_number() -> None:
    alerts, problems = decode_alerts(_alert(1, 1, severity=9, group=99, code=40001), 1)
    assert problems == []
    assert (alerts[0].severity, alerts[0].group, alerts[0].code) == ("9", "99", "40001")


def test_alert_without_severity_or_code_is_skipped_and_bad_severity_flagged() -> None:
    varbinds = {**_alert(1, 1, description=b"orphan"), **_alert(1, 2, severity=b"x", code=8)}
    alerts, problems = decode_alerts(varbinds, 1)
    assert [(a.index, a.severity, a.code) for a in alerts] == [(2, "unknown", "jam")]
    assert [(p.field, p.oid, p.reason) for p in problems] == [
        ("status.alerts.severity", "1.3.6.1.2.1.43.18.1.1.2.1.2", "wrong_type")
    ]


def test_alerts_without_index_use_the_lowest_device() -> None:
    varbinds = {**_alert(3, 1, severity=4, code=808), **_alert(5, 1, severity=3, code=8)}
    alerts, _ = decode_alerts(varbinds, None)
    assert [a.code for a in alerts] == ["inputMediaSupplyEmpty"]


_prefixes: list[Oid] = [HR_PRINTER_STATUS, HR_DEVICE_STATUS, HR_PRINTER_ERROR_STATE, *ALERT_COLUMNS]
_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.binary(max_size=64),
    st.lists(st.integers(min_value=0, max_value=2**32), max_size=6).map(tuple),
)
_oids = st.tuples(
    st.sampled_from(_prefixes),
    st.lists(st.integers(min_value=0, max_value=4), max_size=3).map(tuple),
).map(lambda parts: parts[0] + parts[1])


@settings(max_examples=300)
@given(st.dictionaries(_oids, _values, max_size=30), st.one_of(st.none(), st.integers(0, 4)))
def test_decode_status_never_raises(varbinds: dict[Oid, Value], index: int | None) -> None:
    status, problems = decode_status(varbinds, index)
    assert all(p.field.startswith("status.") for p in problems)
    assert len(set(status.errors)) == len(status.errors)
