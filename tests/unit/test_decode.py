from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mibs.decode
from mibs import counters, identity, status, supplies
from mibs.decode import decode_read
from mibs.models import Problem
from mibs.plan import base_plan, identity_plan, vendor_plan
from mibs.values import Oid, Value, parse_oid

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

PRINTER: dict[Oid, Value] = {
    identity.SYS_OBJECT_ID: parse_oid("1.3.6.1.4.1.11.2.3.9.1"),
    identity.SYS_DESCR: b"HP LaserJet",
    identity.HR_DEVICE_TYPE + (1,): identity.HR_DEVICE_PRINTER,
    identity.PRT_GENERAL_SERIAL + (1,): b"VNCRC48198",
    counters.PRT_MARKER_LIFE_COUNT + (1, 1): 4242,
    status.HR_DEVICE_STATUS + (1,): 2,
    supplies.SUPPLY_TYPE + (1, 1): 3,
    supplies.SUPPLY_CLASS + (1, 1): 3,
    supplies.MAX_CAPACITY + (1, 1): 100,
    supplies.LEVEL + (1, 1): 40,
}


def test_decode_read_assembles_every_part() -> None:
    read = decode_read("127.0.0.1", AT, PRINTER)
    assert read.address == "127.0.0.1"
    assert read.collected_at == AT
    assert (read.identity.vendor, read.identity.serial) == ("HP", "VNCRC48198")
    assert read.counters.total == 4242
    assert read.counter_sources["total"] == "1.3.6.1.2.1.43.10.2.1.4.1.1"
    assert [s.type for s in read.supplies] == ["toner"]
    assert read.status.device_status == "running"


def test_transport_problems_come_first() -> None:
    timeout = Problem(field="supplies", oid="1.3.6.1.2.1.43.11.1.1.9", reason="timeout")
    read = decode_read("127.0.0.1", AT, {}, transport_problems=[timeout])
    assert read.problems[0] == timeout
    # nothing answered: the total counter is missing, and nothing crashed
    assert any(p.field == "counters.total" and p.reason == "missing" for p in read.problems)


@pytest.mark.parametrize(
    ("target", "part"),
    [
        ("decode_identity", "identity"),
        ("decode_counters", "counters"),
        ("decode_supplies", "supplies"),
        ("decode_status", "status"),
    ],
)
def test_a_failing_part_decoder_costs_only_its_part(
    monkeypatch: pytest.MonkeyPatch, target: str, part: str
) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("decoder bug")

    monkeypatch.setattr(mibs.decode, target, broken)
    read = decode_read("127.0.0.1", AT, PRINTER)
    errors = [p for p in read.problems if p.reason == "decoder_error"]
    assert [(p.field, p.detail) for p in errors] == [(part, "RuntimeError: decoder bug")]
    # the other parts survived
    if part != "counters":
        assert read.counters.total == 4242
    if part != "status":
        assert read.status.device_status == "running"
    if part != "supplies":
        assert len(read.supplies) == 1
    if part != "identity":
        assert read.identity.serial == "VNCRC48198"


def test_read_serialises_to_the_schema_field_names() -> None:
    data = decode_read("127.0.0.1", AT, PRINTER).model_dump(mode="json")
    assert set(data) >= {"identity", "counters", "supplies", "status", "problems"}


# --- plans ------------------------------------------------------------------------------


def test_base_plan_covers_every_decoder_once() -> None:
    plan = base_plan()
    oids = [item.oid for item in plan.columns]
    assert len(oids) == len(set(oids))
    for needed in (
        identity.HR_DEVICE_TYPE,
        identity.PRT_GENERAL_SERIAL,
        identity.PPM_PRINTER_1284_ID,
        identity.IF_PHYS_ADDRESS,
        status.HR_PRINTER_ERROR_STATE,
        status.PRT_ALERT_CODE,
        counters.PRT_MARKER_LIFE_COUNT,
        supplies.LEVEL,
    ):
        assert needed in oids
    scalars = {item.oid for item in plan.scalars}
    assert {identity.SYS_OBJECT_ID, identity.SYS_DESCR, identity.SYS_UPTIME} <= scalars
    # scalars are GETs: every one ends in .0
    assert all(oid[-1] == 0 for oid in scalars)
    # every name is a dotted read field the reader can file problems under
    assert all(item.name.split(".")[0] in {"identity", "counters", "supplies", "status"}
               for item in plan.scalars + plan.columns)  # fmt: skip


def test_identity_plan_is_a_cheap_subset_of_the_base_plan() -> None:
    small, full = identity_plan(), base_plan()
    assert {i.oid for i in small.scalars} <= {i.oid for i in full.scalars}
    assert {i.oid for i in small.columns} <= {i.oid for i in full.columns}
    assert len(small.columns) <= 6


def test_vendor_plan_asks_the_makers_private_oids() -> None:
    plan = vendor_plan(parse_oid("1.3.6.1.4.1.11.2.3.9.1"))
    names = {item.name for item in plan.scalars + plan.columns}
    oids = {item.oid for item in plan.scalars}
    assert parse_oid("1.3.6.1.4.1.11.2.3.9.4.2.1.1.3.3.0") in oids  # HP serial
    assert "identity.serial" in names
    assert any(name.startswith("counters") for name in names)
    assert all(oid[:7] == (1, 3, 6, 1, 4, 1, 11) for oid in oids)


def test_vendor_plan_is_empty_for_generic_or_unknown_agents() -> None:
    assert vendor_plan(None) == vendor_plan(parse_oid("1.3.6.1.4.1.8072.3.2.10"))
    assert vendor_plan(None).scalars == ()
    assert vendor_plan(parse_oid("1.3.6.1.2.1.1")).scalars == ()


# --- property: no varbinds crash decode_read or a part decoder ----------------------

_PREFIXES: list[Oid] = [
    identity.SYS_DESCR[:-1],
    identity.HR_DEVICE_TYPE,
    identity.PRT_GENERAL_SERIAL,
    status.HR_PRINTER_ERROR_STATE,
    status.PRT_ALERT_SEVERITY,
    status.PRT_ALERT_CODE,
    counters.PRT_MARKER_LIFE_COUNT,
    counters.IC_KEY_SERVICE_TYPE,
    counters.IC_IMPRESSION_TOTAL,
    supplies.SUPPLY_TYPE,
    supplies.SUPPLY_CLASS,
    supplies.LEVEL,
    supplies.MAX_CAPACITY,
    supplies.COLORANT_INDEX,
    supplies.COLORANT_VALUE,
]
_values = st.one_of(
    st.integers(min_value=-(2**66), max_value=2**66),
    st.binary(max_size=80),
    st.lists(st.integers(min_value=0, max_value=2**32), max_size=10).map(tuple),
    st.just(identity.HR_DEVICE_PRINTER),
)
_oids = st.tuples(
    st.sampled_from(_PREFIXES),
    st.lists(st.integers(min_value=0, max_value=3), max_size=3).map(tuple),
).map(lambda parts: parts[0] + parts[1])


@settings(max_examples=200)
@given(st.dictionaries(_oids, _values, max_size=30))
def test_no_varbinds_make_a_part_decoder_raise(varbinds: dict[Oid, Value]) -> None:
    found, _ = identity.decode_identity(varbinds)
    index = found.hr_device_index
    status.decode_status(varbinds, index)
    counters.decode_counters(varbinds, enterprise=found.enterprise, hr_device_index=index)
    supplies.decode_supplies(varbinds, enterprise=found.enterprise, hr_device_index=index)
    read = decode_read("127.0.0.1", AT, varbinds)
    assert not [p for p in read.problems if p.reason == "decoder_error"]
