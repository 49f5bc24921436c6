"""Supplies decoded from real printer recordings (../shared/recordings, LibreNMS test data).

Each row is (index, type, class, percent, state, quirk). The recordings are
trimmed: none carries prtMarkerSuppliesClass (.4), so the class is inferred
from the type and one 'missing' Problem says so; Xerox and Canon also lack
the type (.5).
"""

from __future__ import annotations

from pathlib import Path

from mibs.models import Problem, Supply
from mibs.snmprec import load_varbinds
from mibs.supplies import decode_supplies
from mibs.values import Oid, Value

HR_DEVICE_TYPE = (1, 3, 6, 1, 2, 1, 25, 3, 2, 1, 2)
HR_DEVICE_PRINTER = (1, 3, 6, 1, 2, 1, 25, 3, 1, 5)
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)
CLASS_COLUMN = "1.3.6.1.2.1.43.11.1.1.4"
TYPE_COLUMN = "1.3.6.1.2.1.43.11.1.1.5"

Row = tuple[int, str, str, float | None, str, str | None]


def load(shared: Path, name: str) -> tuple[dict[Oid, Value], int | None, int | None]:
    varbinds = load_varbinds((shared / f"librenms__{name}.snmprec").read_text(errors="replace"))
    sys_oid = varbinds.get(SYS_OBJECT_ID)
    enterprise = sys_oid[6] if isinstance(sys_oid, tuple) and len(sys_oid) > 6 else None
    printers = [
        oid[-1]
        for oid, value in varbinds.items()
        if oid[:-1] == HR_DEVICE_TYPE and value == HR_DEVICE_PRINTER
    ]
    return varbinds, enterprise, min(printers) if printers else None


def decode(shared: Path, name: str) -> tuple[list[Supply], list[Problem]]:
    varbinds, enterprise, hr = load(shared, name)
    return decode_supplies(varbinds, enterprise=enterprise, hr_device_index=hr)


def rows(supplies: list[Supply]) -> list[Row]:
    return [(s.index, s.type, s.supply_class, s.percent, s.state, s.quirk) for s in supplies]


def missing_columns(problems: list[Problem]) -> list[str | None]:
    return [p.oid for p in problems if p.reason == "missing"]


def test_brother_hl5370dw(shared_recordings: Path) -> None:
    supplies, problems = decode(shared_recordings, "brother_hl5370dw")
    assert rows(supplies) == [
        # max -2 with level 0: a Brother status code (0 = OK), not "empty" — the
        # device reports hrDeviceStatus running(2) and no noToner/lowToner bit.
        (1, "toner", "consumed", None, "ok", "brother_level_code"),
        # RFC -3: at least some remaining, amount unknown
        (2, "toner", "consumed", None, "some_remaining", None),
        # drum: 17208 of 25000 impressions left = 68.83 %
        (3, "opc", "consumed", 68.83, "ok", None),
    ]
    assert [s.description for s in supplies] == [
        "Black Toner Cartridge",
        "Black Toner Cartridge",
        "Drum Unit",
    ]
    assert missing_columns(problems) == [CLASS_COLUMN]


def test_canonprinter_lbp(shared_recordings: Path) -> None:
    supplies, problems = decode(shared_recordings, "canonprinter_lbp")
    # 70 of 100: not one of Canon's three stages (100/10/1), so a real
    # percentage and no canon_three_stage quirk. Type absent -> unknown/other.
    assert rows(supplies) == [(1, "unknown", "other", 70.0, "ok", None)]
    assert supplies[0].description == "Canon Cartridge 719/719H"
    assert missing_columns(problems) == [TYPE_COLUMN, CLASS_COLUMN]


def test_dell_laser_s5830dn(shared_recordings: Path) -> None:
    supplies, problems = decode(shared_recordings, "dell-laser_s5830dn")
    # level / max x 100; types toner(3), opc(9), other(1)
    assert rows(supplies) == [
        (1, "toner", "consumed", 49.0, "ok", None),  # 22050 / 45000
        (2, "opc", "consumed", 72.0, "ok", None),  # 72000 / 100000
        (3, "other", "other", 83.0, "ok", None),  # maintenance kit 166000 / 200000
        (4, "other", "other", 89.0, "ok", None),  # roller kit 267000 / 300000
    ]
    assert missing_columns(problems) == [CLASS_COLUMN]


def test_epson(shared_recordings: Path) -> None:
    supplies, _ = decode(shared_recordings, "epson")
    # four ink(5) supplies at 1 of 100: 1 % <= LOW_PERCENT -> low; consistent
    # with hrDeviceStatus warning(3) in the same recording.
    assert rows(supplies) == [(i, "ink", "consumed", 1.0, "low", None) for i in (1, 2, 3, 4)]


def test_jetdirect_m130nw(shared_recordings: Path) -> None:
    supplies, _ = decode(shared_recordings, "jetdirect_m130nw")
    # supply indexes 1 and 5 (not contiguous): 28 and 71 of 100
    assert rows(supplies) == [
        (1, "toner", "consumed", 28.0, "ok", None),
        (5, "opc", "consumed", 71.0, "ok", None),
    ]


def test_konica_c250i(shared_recordings: Path) -> None:
    supplies, _ = decode(shared_recordings, "konica_c250i")
    assert rows(supplies) == [
        (1, "toner", "consumed", 76.0, "ok", None),
        (2, "toner", "consumed", 78.0, "ok", None),
        (3, "toner", "consumed", 77.0, "ok", None),
        (4, "toner", "consumed", 86.0, "ok", None),
        # wasteToner(4) is a receptacle; -3 = at least some space remaining
        (13, "waste_toner", "receptacle", None, "some_remaining", None),
    ]


def test_ricoh_mpc3002(shared_recordings: Path) -> None:
    supplies, _ = decode(shared_recordings, "ricoh_mpc3002")
    assert rows(supplies) == [
        (1, "toner", "consumed", 40.0, "ok", None),
        # receptacle level 100 of 100 is free space: the box is 0 % filled
        (2, "waste_toner", "receptacle", 0.0, "ok", None),
        (3, "toner", "consumed", 20.0, "ok", None),
        (4, "toner", "consumed", 50.0, "ok", None),
        (5, "toner", "consumed", 50.0, "ok", None),
    ]


def test_sharp_mxm266nv(shared_recordings: Path) -> None:
    supplies, _ = decode(shared_recordings, "sharp_mxm266nv")
    assert rows(supplies) == [
        (1, "toner", "consumed", 75.0, "ok", None),
        # max -2 (unknown): space/level > 0 says only "some remaining"
        (2, "waste_toner", "receptacle", None, "some_remaining", None),
        (3, "opc", "consumed", None, "some_remaining", None),
        (4, "developer", "consumed", None, "some_remaining", None),
        (5, "fuser", "consumed", None, "unknown", None),  # level -2
    ]


def test_xerox(shared_recordings: Path) -> None:
    supplies, problems = decode(shared_recordings, "xerox")
    # No type or class columns: every row is unknown/other and read as a
    # container (level = amount left). Toners: 1060/5300, 1980/3000,
    # 2160/3000, 1830/3050. The waste container (row 10) cannot be known to be
    # a receptacle from the data, so its 5 reads as 5 % left (low).
    percents = [s.percent for s in supplies]
    assert percents == [20.0, 66.0, 72.0, 60.0, 50.0, 92.0, 93.0, 93.0, 90.0, 5.0, 65.0, 86.0]
    assert [s.state for s in supplies].count("low") == 1
    assert {(s.type, s.supply_class) for s in supplies} == {("unknown", "other")}
    assert supplies[0].description == "Black Toner, PN 006R01509;SN48178080E0000481"
    assert supplies[0].max_capacity == 5300
    assert missing_columns(problems) == [TYPE_COLUMN, CLASS_COLUMN]
