"""Synthetic printers written from the specs (RFC 1213, RFC 2790, RFC 3805, PWG 5106.1).

The demo, the daemon's integration tests and the scale benchmark need fleets
of printers the project owns: a :class:`PrinterSpec` renders to an snmpsim
``.snmprec`` recording with the objects a real printer of that kind answers.
The Printer-MIB tables are indexed by ``hr_index`` (deliberately not 1 by
default) to keep the hrDeviceIndex rule honest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# RFC 3805 PrtMarkerSuppliesTypeTC and PrtMarkerSuppliesClassTC values.
_SUPPLY_TYPE = {"toner": 3, "waste_toner": 4, "opc": 9, "fuser": 15, "toner_cartridge": 21}
_CLASS_CONSUMED = 3
_CLASS_RECEPTACLE = 4
_UNIT_PERCENT = 19  # PrtMarkerSuppliesSupplyUnitTC percent(19)
_UNIT_IMPRESSIONS = 7  # PrtMarkerCounterUnitTC impressions(7)

ENTERPRISE = {
    "HP": 11,
    "Lexmark": 641,
    "Xerox": 253,
    "Ricoh": 367,
    "Canon": 1602,
    "Kyocera": 1347,
    "Brother": 2435,
}


@dataclass(frozen=True)
class SupplySpec:
    description: str
    kind: str  # key of _SUPPLY_TYPE
    level: int  # percent remaining (consumed) or remaining space (receptacle); RFC specials allowed
    colorant: str | None = None
    max_capacity: int = 100


@dataclass(frozen=True)
class PrinterSpec:
    name: str  # file stem: the snmpsim community
    vendor: str
    model: str
    serial: str
    lifetime_pages: int
    location: str
    mac: str  # 12 hex digits
    color: bool = False
    hr_index: int = 1
    supplies: tuple[SupplySpec, ...] = ()
    error_bits: bytes = b"\x00"
    printer_status: int = 3  # idle
    device_status: int = 2  # running
    extra: tuple[tuple[str, str, str], ...] = field(default=())  # raw (oid, tag, value) lines


def _line(oid: str, tag: int | str, value: object) -> str:
    return f"{oid}|{tag}|{value}"


def to_snmprec(spec: PrinterSpec) -> str:
    """The recording as snmprec text, lines in OID order (snmpsim needs them sorted)."""
    i = spec.hr_index
    enterprise = ENTERPRISE[spec.vendor]
    lines = [
        _line("1.3.6.1.2.1.1.1.0", 4, f"{spec.vendor} {spec.model}"),
        _line("1.3.6.1.2.1.1.2.0", 6, f"1.3.6.1.4.1.{enterprise}.2.3.9.1"),
        _line("1.3.6.1.2.1.1.3.0", 67, 8_640_000),
        _line("1.3.6.1.2.1.1.4.0", 4, "helpdesk@example.com"),
        _line("1.3.6.1.2.1.1.5.0", 4, spec.name),
        _line("1.3.6.1.2.1.1.6.0", 4, spec.location),
        _line("1.3.6.1.2.1.2.2.1.3.1", 2, 6),  # ifType ethernetCsmacd
        _line("1.3.6.1.2.1.2.2.1.6.1", "4x", spec.mac),
        _line(f"1.3.6.1.2.1.25.3.2.1.2.{i}", 6, "1.3.6.1.2.1.25.3.1.5"),  # hrDevicePrinter
        _line(f"1.3.6.1.2.1.25.3.2.1.3.{i}", 4, f"{spec.vendor} {spec.model}"),
        _line(f"1.3.6.1.2.1.25.3.2.1.5.{i}", 2, spec.device_status),
        _line(f"1.3.6.1.2.1.25.3.5.1.1.{i}", 2, spec.printer_status),
        _line(f"1.3.6.1.2.1.25.3.5.1.2.{i}", "4x", spec.error_bits.hex().upper()),
        _line(f"1.3.6.1.2.1.43.5.1.1.17.{i}", 4, spec.serial),
        _line(f"1.3.6.1.2.1.43.10.2.1.3.{i}.1", 2, _UNIT_IMPRESSIONS),
        _line(f"1.3.6.1.2.1.43.10.2.1.4.{i}.1", 65, spec.lifetime_pages),
    ]
    colorants: dict[str, int] = {}
    for supply in spec.supplies:
        if supply.colorant and supply.colorant not in colorants:
            colorants[supply.colorant] = len(colorants) + 1
    columns: dict[int, list[str]] = {col: [] for col in range(2, 10)}
    for s_index, supply in enumerate(spec.supplies, start=1):
        receptacle = supply.kind.startswith("waste")
        row = f"{i}.{s_index}"
        base = "1.3.6.1.2.1.43.11.1.1"
        columns[2].append(_line(f"{base}.2.{row}", 2, 1))
        columns[3].append(_line(f"{base}.3.{row}", 2, colorants.get(supply.colorant or "", 0)))
        columns[4].append(
            _line(f"{base}.4.{row}", 2, _CLASS_RECEPTACLE if receptacle else _CLASS_CONSUMED)
        )
        columns[5].append(_line(f"{base}.5.{row}", 2, _SUPPLY_TYPE[supply.kind]))
        columns[6].append(_line(f"{base}.6.{row}", 4, supply.description))
        columns[7].append(_line(f"{base}.7.{row}", 2, _UNIT_PERCENT))
        columns[8].append(_line(f"{base}.8.{row}", 2, supply.max_capacity))
        columns[9].append(_line(f"{base}.9.{row}", 2, supply.level))
    for col in range(2, 10):
        lines.extend(columns[col])
    for name, c_index in colorants.items():
        lines.append(_line(f"1.3.6.1.2.1.43.12.1.1.4.{i}.{c_index}", 4, name))
    mfg_mdl = f"MFG:{spec.vendor};MDL:{spec.model};CLS:PRINTER;"
    lines.append(_line("1.3.6.1.4.1.2699.1.2.1.2.1.1.3.1", 4, mfg_mdl))
    lines.extend(_line(*raw) for raw in spec.extra)

    def key(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split("|", 1)[0].split("."))

    return "\n".join(sorted(lines, key=key)) + "\n"


def _mono_supplies(toner: int, drum: int = 80) -> tuple[SupplySpec, ...]:
    return (
        SupplySpec("Black Toner Cartridge", "toner_cartridge", toner, "black"),
        SupplySpec("Imaging Drum", "opc", drum),
    )


def _color_supplies(k: int, c: int, m: int, y: int, waste_space: int) -> tuple[SupplySpec, ...]:
    return (
        SupplySpec("Black Toner", "toner", k, "black"),
        SupplySpec("Cyan Toner", "toner", c, "cyan"),
        SupplySpec("Magenta Toner", "toner", m, "magenta"),
        SupplySpec("Yellow Toner", "toner", y, "yellow"),
        SupplySpec("Fuser Kit", "fuser", 64),
        SupplySpec("Waste Toner Box", "waste_toner", waste_space),
    )


# The demo fleet: several vendors; some eligible under agent/demo/demo-policy.yaml, some not;
# one low on toner. Serials are made up.
DEMO_FLEET: tuple[PrinterSpec, ...] = (
    PrinterSpec(
        name="hp-m404-floor1",
        vendor="HP",
        model="LaserJet Pro M404dn",
        serial="PHBQA12345",
        lifetime_pages=48_211,
        location="HQ Floor 1",
        mac="3C2AF4A1B201",
        hr_index=1,
        supplies=_mono_supplies(toner=62),
    ),
    PrinterSpec(
        name="hp-m404-floor2",
        vendor="HP",
        model="LaserJet Pro M404dn",
        serial="PHBQA12346",
        lifetime_pages=91_870,
        location="HQ Floor 2",
        mac="3C2AF4A1B202",
        hr_index=1,
        supplies=_mono_supplies(toner=7),  # low on toner: the replenishment case
        error_bits=b"\x20",  # bit 2 lowToner (RFC 2790 hrPrinterDetectedErrorState)
    ),
    PrinterSpec(
        name="lexmark-cx725-finance",
        vendor="Lexmark",
        model="CX725",
        serial="50061234ABCD",
        lifetime_pages=132_004,
        location="HQ Finance",
        mac="00216B0C7725",
        color=True,
        hr_index=2,
        supplies=_color_supplies(55, 71, 68, 80, waste_space=90),
    ),
    PrinterSpec(
        name="xerox-c8045-print-room",
        vendor="Xerox",
        model="AltaLink C8045",
        serial="XRX3TB012345",
        lifetime_pages=1_480_112,  # over the demo policy's maximum: not eligible
        location="HQ Print Room",
        mac="9C934E3C8045",
        color=True,
        hr_index=1,
        supplies=_color_supplies(35, 48, 51, 44, waste_space=20),
    ),
    PrinterSpec(
        name="brother-hl-reception",
        vendor="Brother",
        model="HL-L2350DW",  # not in the demo policy's supported models
        serial="E78123K9N456",
        lifetime_pages=12_450,
        location="Reception",
        mac="3C2AF4B2C301",
        hr_index=1,
        supplies=_mono_supplies(toner=-3, drum=88),  # -3: "some remaining" (RFC 3805)
    ),
)
