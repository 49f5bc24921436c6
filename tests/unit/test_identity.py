from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mibs.identity import (
    ENT_PHYSICAL_FIRMWARE_REV,
    ENT_PHYSICAL_SERIAL,
    HR_DEVICE_DESCR,
    HR_DEVICE_PRINTER,
    HR_DEVICE_TYPE,
    IF_PHYS_ADDRESS,
    IF_TYPE,
    PPM_PRINTER_1284_ID,
    PRT_GENERAL_SERIAL,
    PRT_MARKER_LIFE_COUNT,
    SYS_DESCR,
    SYS_NAME,
    SYS_OBJECT_ID,
    SYS_UPTIME,
    classify_device,
    decode_identity,
    printer_index,
    stable_device_id,
)
from mibs.models import Identity
from mibs.values import Oid, Value, parse_oid
from mibs.vendors_ids import firmware_from_sys_descr, parse_1284

HR_PROCESSOR: Oid = (1, 3, 6, 1, 2, 1, 25, 3, 1, 3)
HP_JETDIRECT: Oid = parse_oid("1.3.6.1.4.1.11.2.3.9.1")
HP_SERIAL: Oid = parse_oid("1.3.6.1.4.1.11.2.3.9.4.2.1.1.3.3.0")
HP_1284: Oid = parse_oid("1.3.6.1.4.1.11.2.3.9.1.1.7.0")
RICOH_FIRMWARE: Oid = parse_oid("1.3.6.1.4.1.367.3.2.1.1.1.2.0")


def printer_at(index: int) -> dict[Oid, Value]:
    return {HR_DEVICE_TYPE + (index,): HR_DEVICE_PRINTER}


# --- the printer row (index rule) ---------------------------------------------


def test_printer_index_is_the_hr_device_printer_row_not_1() -> None:
    varbinds: dict[Oid, Value] = {
        HR_DEVICE_TYPE + (1,): HR_PROCESSOR,
        HR_DEVICE_TYPE + (4,): HR_DEVICE_PRINTER,
    }
    assert printer_index(varbinds) == 4


def test_printer_index_prefers_the_printer_row_the_printer_mib_uses() -> None:
    # two hrDevicePrinter rows; the Printer-MIB tables only use the second
    varbinds: dict[Oid, Value] = {
        HR_DEVICE_TYPE + (1,): HR_DEVICE_PRINTER,
        HR_DEVICE_TYPE + (7,): HR_DEVICE_PRINTER,
        PRT_MARKER_LIFE_COUNT + (7, 1): 10,
    }
    assert printer_index(varbinds) == 7


def test_printer_index_falls_back_to_the_printer_mib_tables() -> None:
    assert printer_index({PRT_MARKER_LIFE_COUNT + (3, 1): 10}) == 3
    assert printer_index({PRT_GENERAL_SERIAL + (5,): b"ABC123"}) == 5
    assert printer_index({SYS_DESCR: b"a switch"}) is None


# --- IEEE 1284 ------------------------------------------------------------------


def test_parse_1284_accepts_long_and_short_keys_in_any_case() -> None:
    fields = parse_1284(
        "MANUFACTURER:Lexmark;command set: PCL 6 ,PostScript;Model:CX725;cls:PRINTER;"
        "DES:desc;SERN:AB12;mfg:ignored-second;junk;EMPTY:;"
    )
    assert fields == {
        "MFG": "Lexmark",
        "CMD": "PCL 6 ,PostScript",
        "MDL": "CX725",
        "CLS": "PRINTER",
        "DES": "desc",
        "SN": "AB12",
    }
    assert parse_1284(None) == {}
    assert parse_1284("no pairs at all") == {}


# --- vendor and model ---------------------------------------------------------------


def test_vendor_is_the_sys_object_id_brand_even_if_1284_names_the_maker() -> None:
    # A Dell-branded laser built by another maker: the brand on the box is Dell.
    varbinds: dict[Oid, Value] = {
        SYS_OBJECT_ID: parse_oid("1.3.6.1.4.1.674.10898.2.100"),
        **printer_at(1),
        PPM_PRINTER_1284_ID + (1,): b"MFG:Lexmark International;MDL:Dell S5830dn;",
    }
    identity, _ = decode_identity(varbinds)
    assert identity.vendor == "Dell"
    assert identity.model == "S5830dn"
    assert identity.enterprise == 674


def test_generic_agent_defers_to_1284_mfg() -> None:
    varbinds: dict[Oid, Value] = {
        SYS_OBJECT_ID: parse_oid("1.3.6.1.4.1.8072.3.2.10"),
        **printer_at(1),
        PPM_PRINTER_1284_ID + (1,): b"MFG:KYOCERA;MDL:ECOSYS P2040dn;",
    }
    identity, _ = decode_identity(varbinds)
    assert identity.vendor == "Kyocera"
    assert identity.model == "ECOSYS P2040dn"


def test_unknown_maker_keeps_the_1284_spelling() -> None:
    varbinds: dict[Oid, Value] = {PPM_PRINTER_1284_ID + (1,): b"MFG:Acme Printers;MDL:X1;"}
    identity, _ = decode_identity(varbinds)
    assert identity.vendor == "Acme Printers"
    assert identity.model == "X1"


def test_vendor_from_descriptions_when_nothing_else_says() -> None:
    varbinds: dict[Oid, Value] = {
        **printer_at(1),
        HR_DEVICE_DESCR + (1,): b"KONICA MINOLTA bizhub C250i",
    }
    identity, _ = decode_identity(varbinds)
    assert identity.vendor == "Konica Minolta"
    assert identity.model == "bizhub C250i"


def test_model_range_in_mdl_yields_to_des() -> None:
    # HP answers a driver family in MDL; DES names the actual model.
    varbinds: dict[Oid, Value] = {
        SYS_OBJECT_ID: HP_JETDIRECT,
        HP_1284: b"MFG:HP;MDL:HP LaserJet MFP M129-M134;DES:HP LaserJet MFP M130nw;",
    }
    identity, _ = decode_identity(varbinds)
    assert identity.model == "LaserJet MFP M130nw"
    assert identity.device_id_1284 is not None


def test_model_falls_back_to_sys_descr() -> None:
    varbinds: dict[Oid, Value] = {
        SYS_OBJECT_ID: parse_oid("1.3.6.1.4.1.2385.3.1"),
        SYS_DESCR: b"SHARP MX-M266NV",
    }
    identity, _ = decode_identity(varbinds)
    assert (identity.vendor, identity.model) == ("Sharp", "MX-M266NV")


# --- serial ---------------------------------------------------------------------------


def test_serial_from_the_printer_row_not_row_1() -> None:
    varbinds: dict[Oid, Value] = {
        **printer_at(2),
        PRT_GENERAL_SERIAL + (1,): b"WRONGROW",
        PRT_GENERAL_SERIAL + (2,): b" cnb1k23456\x00",
    }
    identity, problems = decode_identity(varbinds)
    assert identity.serial == "CNB1K23456"
    assert problems == []


def test_serial_falls_back_to_the_vendor_oid_with_hp_control_prefix() -> None:
    varbinds: dict[Oid, Value] = {
        SYS_OBJECT_ID: HP_JETDIRECT,
        **printer_at(1),
        HP_SERIAL: b"\x01\x15VNCRC48198",
    }
    identity, problems = decode_identity(varbinds)
    assert identity.serial == "VNCRC48198"
    assert problems == []


def test_vendor_serial_of_another_maker_is_ignored() -> None:
    # An HP serial OID answered by a Ricoh is not trusted.
    varbinds: dict[Oid, Value] = {
        SYS_OBJECT_ID: parse_oid("1.3.6.1.4.1.367.1.1"),
        **printer_at(1),
        HP_SERIAL: b"VNCRC48198",
    }
    identity, problems = decode_identity(varbinds)
    assert identity.serial is None
    assert [(p.field, p.reason) for p in problems] == [("identity.serial", "missing")]


def test_placeholder_serial_is_skipped_for_the_next_source() -> None:
    varbinds: dict[Oid, Value] = {
        **printer_at(1),
        PRT_GENERAL_SERIAL + (1,): b"XXXXXXXX",
        ENT_PHYSICAL_SERIAL + (1,): b"E7412345",
    }
    identity, problems = decode_identity(varbinds)
    assert identity.serial == "E7412345"
    assert problems == []


def test_only_placeholders_give_a_placeholder_problem() -> None:
    varbinds: dict[Oid, Value] = {**printer_at(1), PRT_GENERAL_SERIAL + (1,): b"0000000000"}
    identity, problems = decode_identity(varbinds)
    assert identity.serial is None
    assert [(p.field, p.oid, p.reason) for p in problems] == [
        ("identity.serial", "1.3.6.1.2.1.43.5.1.1.17.1", "placeholder")
    ]


def test_serial_from_1284_as_last_resort() -> None:
    varbinds: dict[Oid, Value] = {
        **printer_at(1),
        PPM_PRINTER_1284_ID + (1,): b"MFG:Zebra;MDL:ZT410;SN:52J123456789;",
    }
    identity, _ = decode_identity(varbinds)
    assert identity.serial == "52J123456789"


def test_a_non_printer_without_serial_has_no_problem() -> None:
    identity, problems = decode_identity({SYS_DESCR: b"switch"})
    assert identity.serial is None
    assert not identity.is_printer
    assert problems == []


# --- firmware, MAC, uptime ---------------------------------------------------------------


def test_firmware_precedence() -> None:
    base: dict[Oid, Value] = {
        SYS_OBJECT_ID: parse_oid("1.3.6.1.4.1.367.1.1"),
        SYS_DESCR: b"RICOH Aficio, Firmware Ver.9.99",
        **printer_at(1),
    }
    assert decode_identity(base)[0].firmware == "9.99"
    with_vendor = {**base, RICOH_FIRMWARE: b"2.20"}
    assert decode_identity(with_vendor)[0].firmware == "2.20"
    with_entity = {**with_vendor, ENT_PHYSICAL_FIRMWARE_REV + (1,): b"V4.1"}
    assert decode_identity(with_entity)[0].firmware == "V4.1"


def test_a_hosts_sys_descr_version_is_not_printer_firmware() -> None:
    windows = {SYS_DESCR: b"Hardware: Intel64 - Software: Windows Version 6.3 (Build 9600)"}
    assert decode_identity(windows)[0].firmware is None


def test_firmware_from_sys_descr_forms() -> None:
    assert firmware_from_sys_descr("Brother NC-6800h, Firmware Ver.1.01  (08.12.12),MID 84U") == (
        "1.01 (08.12.12)"
    )
    assert firmware_from_sys_descr("Dell S5830dn version NH62.YS.N636 kernel") == "NH62.YS.N636"
    assert firmware_from_sys_descr("Xerox AltaLink C8045; SS 100.002.057.09608, NC") == (
        "100.002.057.09608"
    )
    assert firmware_from_sys_descr("EPSON Built-in") is None
    assert firmware_from_sys_descr(None) is None


def test_mac_prefers_ethernet_over_wifi_and_skips_zero_and_loopback() -> None:
    varbinds: dict[Oid, Value] = {
        IF_TYPE + (1,): 24,
        IF_PHYS_ADDRESS + (1,): bytes.fromhex("0a0000000001"),
        IF_TYPE + (2,): 71,
        IF_PHYS_ADDRESS + (2,): bytes.fromhex("0021b7aabbcc"),
        IF_TYPE + (3,): 6,
        IF_PHYS_ADDRESS + (3,): b"\x00" * 6,
        IF_TYPE + (4,): 6,
        IF_PHYS_ADDRESS + (4,): bytes.fromhex("0021b7123456"),
    }
    assert decode_identity(varbinds)[0].mac == "00:21:b7:12:34:56"
    del varbinds[IF_PHYS_ADDRESS + (4,)]
    assert decode_identity(varbinds)[0].mac == "00:21:b7:aa:bb:cc"  # Wi-Fi next
    del varbinds[IF_PHYS_ADDRESS + (2,)]
    assert decode_identity(varbinds)[0].mac is None  # only loopback left


def test_mac_without_if_type_takes_the_lowest_index() -> None:
    varbinds: dict[Oid, Value] = {
        IF_PHYS_ADDRESS + (3,): bytes.fromhex("5cfb3a0d7df0"),
        IF_PHYS_ADDRESS + (2,): bytes.fromhex("14cb19952ea0"),
    }
    assert decode_identity(varbinds)[0].mac == "14:cb:19:95:2e:a0"


def test_uptime_is_timeticks_in_seconds() -> None:
    assert decode_identity({SYS_UPTIME: 8640000})[0].uptime_seconds == 86400.0


# --- strange answers cost one field ---------------------------------------------------------


def test_wrong_types_become_problems_not_exceptions() -> None:
    varbinds: dict[Oid, Value] = {
        SYS_OBJECT_ID: b"1.3.6.1.4.1.11",
        SYS_DESCR: (1, 3, 6),
        SYS_UPTIME: b"yesterday",
        SYS_NAME: b"printer-1",
    }
    identity, problems = decode_identity(varbinds)
    assert identity.sys_object_id is None
    assert identity.sys_descr is None
    assert identity.uptime_seconds is None
    assert identity.sys_name == "printer-1"
    assert sorted((p.field, p.reason) for p in problems) == [
        ("identity.sys_descr", "wrong_type"),
        ("identity.sys_object_id", "wrong_type"),
        ("identity.uptime_seconds", "wrong_type"),
    ]


def test_huge_text_is_cut_and_flagged() -> None:
    identity, problems = decode_identity({SYS_DESCR: b"A" * 65536})
    assert identity.sys_descr is not None
    assert len(identity.sys_descr) == 1024
    assert [(p.field, p.reason) for p in problems] == [("identity.sys_descr", "truncated")]


# --- classification and stable ids --------------------------------------------------------------


def test_classify_device() -> None:
    assert classify_device(printer_at(3)) == "printer"
    assert classify_device({PRT_MARKER_LIFE_COUNT + (1, 1): 5}) == "printer"
    assert classify_device({SYS_OBJECT_ID: HP_JETDIRECT}) == "printer"
    assert classify_device({SYS_OBJECT_ID: parse_oid("1.3.6.1.4.1.2435.2.3.9.1")}) == "printer"
    # an HP ProCurve switch: HP enterprise, but outside the net-peripheral subtree
    assert classify_device({SYS_OBJECT_ID: parse_oid("1.3.6.1.4.1.11.2.3.7.11.36")}) == "other"
    assert classify_device({SYS_OBJECT_ID: parse_oid("1.3.6.1.4.1.8072.3.2.10")}) == "other"
    assert classify_device({HR_DEVICE_TYPE + (1,): HR_PROCESSOR}) == "other"
    assert classify_device({}) == "other"


def test_stable_device_id_prefers_serial_then_mac_then_named_model() -> None:
    full = Identity(vendor="Konica Minolta", serial="AA2M021115700", mac="00:20:6b:4a:f3:25")
    assert stable_device_id(full) == "sn:konica-minolta:AA2M021115700"
    assert stable_device_id(Identity(serial="AB1")) == "sn:-:AB1"
    assert stable_device_id(Identity(mac="00:20:6b:4a:f3:25")) == "mac:00:20:6b:4a:f3:25"
    named = Identity(sys_object_id="1.3.6.1.4.1.253.8", sys_name="prn-1")
    other = Identity(sys_object_id="1.3.6.1.4.1.253.8", sys_name="prn-2")
    assert stable_device_id(named) is not None
    assert stable_device_id(named).startswith("oid:")  # type: ignore[union-attr]
    assert stable_device_id(named) == stable_device_id(named.model_copy())
    assert stable_device_id(named) != stable_device_id(other)
    # a model-level id alone would merge every printer of that model
    assert stable_device_id(Identity(sys_object_id="1.3.6.1.4.1.253.8")) is None
    assert stable_device_id(Identity()) is None


def test_stable_id_survives_an_address_change() -> None:
    varbinds: dict[Oid, Value] = {
        SYS_OBJECT_ID: HP_JETDIRECT,
        **printer_at(1),
        PRT_GENERAL_SERIAL + (1,): b"VNCRC48198",
    }
    first = stable_device_id(decode_identity(varbinds)[0])
    again = stable_device_id(decode_identity(dict(reversed(list(varbinds.items()))))[0])
    assert first == again == "sn:hp:VNCRC48198"


# --- property: no input crashes the identity decoder -----------------------------------------

_PREFIXES: list[Oid] = [
    SYS_DESCR[:-1],
    HR_DEVICE_TYPE,
    HR_DEVICE_DESCR,
    PRT_GENERAL_SERIAL,
    PRT_MARKER_LIFE_COUNT,
    PPM_PRINTER_1284_ID,
    IF_TYPE,
    IF_PHYS_ADDRESS,
    ENT_PHYSICAL_SERIAL,
    ENT_PHYSICAL_FIRMWARE_REV,
    HP_SERIAL[:-1],
]
_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.binary(max_size=300),
    st.lists(st.integers(min_value=0, max_value=2**32), max_size=14).map(tuple),
    st.just(HR_DEVICE_PRINTER),
    st.just(HP_JETDIRECT),
)
_oids = st.tuples(
    st.sampled_from(_PREFIXES),
    st.lists(st.integers(min_value=0, max_value=9), min_size=0, max_size=3).map(tuple),
).map(lambda parts: parts[0] + parts[1])


@settings(max_examples=300)
@given(st.dictionaries(_oids, _values, max_size=25))
def test_decode_identity_never_raises(varbinds: dict[Oid, Value]) -> None:
    identity, problems = decode_identity(varbinds)
    assert classify_device(varbinds) in ("printer", "other")
    stable_device_id(identity)
    for problem in problems:
        assert problem.field.startswith("identity.")
