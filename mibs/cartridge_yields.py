"""Rated yields of known cartridges, by the part number a device names.

A device with a coarse level sensor ("some remaining", Brother's 0-3 codes,
Canon's three stages) says little about how much toner is left, but many name
the cartridge in ``prtMarkerSuppliesDescription`` (``"Black Cartridge HP
CF217A"``, ``"Canon Cartridge 719/719H"``). Its maker's rated yield, in pages at
ISO/IEC 19752 (monochrome) or 19798 (colour) test coverage, lets the forecast
count pages against it (:mod:`mibs.forecast`, method ``pages_rated_yield``).

Data, one entry a part number, each from the maker's supplies data sheet
(yields as printed on the box and in the product's supplies list). A
description that names alternatives (``719/719H``: either fits the printer) is
read as the smallest of their yields, so that a forecast from it errs towards
ordering early. A device that names no part in its toner's description (Brother's
"Black Toner Cartridge") is given the parts its model takes (:data:`MODEL_TONERS`,
:func:`mibs.cartridges.with_model_toner`), read the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Part number -> (rated yield in pages, source).
RATED_YIELDS: Mapping[str, tuple[int, str]] = {
    # HP LaserJet monochrome (HP supplies data sheets, ISO/IEC 19752)
    "CE285A": (1600, "HP 85A data sheet"),
    "CF217A": (1600, "HP 17A data sheet"),
    "CF226A": (3100, "HP 26A data sheet"),
    "CF226X": (9000, "HP 26X data sheet"),
    "CF280A": (2700, "HP 80A data sheet"),
    "CF280X": (6900, "HP 80X data sheet"),
    "CE505A": (2300, "HP 05A data sheet"),
    "CE505X": (6500, "HP 05X data sheet"),
    "CE255A": (6000, "HP 55A data sheet"),
    "CE255X": (12500, "HP 55X data sheet"),
    "CF287A": (9000, "HP 87A data sheet"),
    "CF287X": (18000, "HP 87X data sheet"),
    # HP Color LaserJet M452/M477 (HP 410A/410X data sheet, ISO/IEC 19798)
    "CF410A": (2300, "HP 410A data sheet"),
    "CF410X": (6500, "HP 410X data sheet"),
    "CF411A": (2300, "HP 410A data sheet"),
    "CF412A": (2300, "HP 410A data sheet"),
    "CF413A": (2300, "HP 410A data sheet"),
    "CF411X": (5000, "HP 410X data sheet"),
    "CF412X": (5000, "HP 410X data sheet"),
    "CF413X": (5000, "HP 410X data sheet"),
    # Canon i-SENSYS LBP6650/6670 (Canon Cartridge 719 data sheet, ISO/IEC 19752)
    "719": (2100, "Canon Cartridge 719 data sheet"),
    "719H": (6400, "Canon Cartridge 719H data sheet"),
    # Brother HL-5300 series (Brother supplies list, ISO/IEC 19752)
    "TN-620": (3000, "Brother TN-620 supplies list"),
    "TN-650": (8000, "Brother TN-650 supplies list"),
    # Brother HL-L2300 series (Brother supplies list, ISO/IEC 19752)
    "TN-630": (1200, "Brother TN-630 supplies list"),
    "TN-660": (2600, "Brother TN-660 supplies list"),
}

#: (maker, model) -> the toner cartridges that fit it (``A/B``: standard or high yield),
#: for devices whose supply descriptions name no part ("Black Toner Cartridge", as the
#: Brother HL-5370DW recording). From each maker's supplies list for the model.
MODEL_TONERS: Mapping[tuple[str, str], str] = {
    ("BROTHER", "HL-5340D"): "TN-620/TN-650",
    ("BROTHER", "HL-5350DN"): "TN-620/TN-650",
    ("BROTHER", "HL-5370DW"): "TN-620/TN-650",
    ("BROTHER", "HL-5380DN"): "TN-620/TN-650",
    ("BROTHER", "HL-L2340D"): "TN-630/TN-660",
    ("BROTHER", "HL-L2340DW"): "TN-630/TN-660",
}


def toner_of_model(vendor: str | None, model: str | None) -> str | None:
    """The toner part(s) that fit ``model`` ("HL-5370DW series" is the HL-5370DW), else None."""
    if not vendor or not model:
        return None
    name = model.upper().strip().removesuffix(" SERIES").strip()
    return MODEL_TONERS.get((vendor.upper(), name))


def rated_yield_of(part_number: str | None) -> int | None:
    """The rated yield of ``part_number`` (the smallest of ``A/B`` alternatives), else None."""
    if not part_number:
        return None
    found = [
        entry[0]
        for alternative in part_number.upper().split("/")
        if (entry := RATED_YIELDS.get(alternative.strip())) is not None
    ]
    return min(found) if found else None
