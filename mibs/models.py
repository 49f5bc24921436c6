"""The typed read of one printer: what every other package consumes.

These models are the contract between the decoders (``mibs``), the collector
(``collectors``), eligibility and upload (``agent``). Their JSON form is the
read schema documented in ``docs/schema/read.schema.json``; field names follow
that schema exactly.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from mibs.reasons import Reason

READ_SCHEMA_VERSION = "1.1"


class Frozen(BaseModel):
    """Base for every model that crosses a package boundary."""

    model_config = ConfigDict(frozen=True, extra="forbid")


SupplyState = Literal["ok", "low", "empty", "full", "some_remaining", "unknown", "unrestricted"]
SupplyClass = Literal["consumed", "receptacle", "other"]


class Problem(Frozen):
    """One field the device did not answer sensibly. The rest of the read survives."""

    field: str = Field(description="Dotted name of the affected field, e.g. 'counters.total'.")
    oid: str | None = Field(description="The OID concerned, dotted, when there is one.")
    reason: Reason = Field(
        description="Stable machine-readable reason, e.g. 'wrong_type' (see mibs.reasons)."
    )
    detail: str | None = Field(default=None, description="Human explanation with the raw value.")


class Identity(Frozen):
    vendor: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    sys_object_id: str | None = None
    sys_descr: str | None = None
    mac: str | None = None
    sys_name: str | None = None
    location: str | None = None
    contact: str | None = None
    enterprise: int | None = Field(default=None, description="IANA enterprise number.")
    hr_device_index: int | None = Field(
        default=None, description="hrDeviceIndex of the printer row the Printer-MIB tables use."
    )
    hr_device_descr: str | None = None
    device_id_1284: str | None = Field(default=None, description="Raw IEEE 1284 device id.")
    is_printer: bool = Field(
        default=False,
        description="hrDeviceType is hrDevicePrinter, or a Printer-MIB table answered.",
    )
    uptime_seconds: float | None = None


class Counters(Frozen):
    """Lifetime meters. ``None`` means the device does not report that meter.

    The copy meter is the attribute ``copies`` (``copy`` is a pydantic method)
    and is named ``copy`` in JSON and in ``counter_sources``.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", populate_by_name=True, serialize_by_alias=True
    )

    total: int | None = Field(default=None, description="Lifetime page count (prtMarkerLifeCount).")
    power_on: int | None = None
    mono: int | None = None
    color: int | None = None
    print: int | None = None
    print_mono: int | None = None
    print_color: int | None = None
    copies: int | None = Field(default=None, alias="copy")
    copy_mono: int | None = None
    copy_color: int | None = None
    fax: int | None = None
    scan: int | None = None
    duplex: int | None = Field(default=None, description="Two-sided impressions.")
    impressions: int | None = Field(
        default=None, description="Total impressions (one side of a sheet marked once)."
    )
    sheets: int | None = Field(default=None, description="Sheets (media units) used.")
    duplex_sheets: int | None = Field(default=None, description="Sheets printed on both sides.")
    large: int | None = Field(
        default=None, description="Impressions on large media (A3, 11x17 or larger)."
    )
    small: int | None = Field(default=None, description="Impressions on small media (A4, Letter).")
    large_mono: int | None = None
    large_color: int | None = None
    color_tier_1: int | None = Field(
        default=None,
        description="Colour impressions of the lowest coverage tier (Xerox colour level 1, "
        "HP coverage category 1).",
    )
    color_tier_2: int | None = None
    color_tier_3: int | None = Field(
        default=None, description="Colour impressions of the highest coverage tier."
    )
    a4_equivalent: int | None = Field(
        default=None, description="A4-equivalent impressions (HP FutureSmart equivalent count)."
    )
    a4_equivalent_mono: int | None = None
    a4_equivalent_color: int | None = None
    fax_mono: int | None = Field(default=None, description="Monochrome fax impressions.")
    scan_images: int | None = Field(default=None, description="Images scanned, all services.")
    unit: str | None = Field(default=None, description="prtMarkerCounterUnit of the total.")


CounterName = Literal[
    "total",
    "power_on",
    "mono",
    "color",
    "print",
    "print_mono",
    "print_color",
    "copy",
    "copy_mono",
    "copy_color",
    "fax",
    "scan",
    "duplex",
    "impressions",
    "sheets",
    "duplex_sheets",
    "large",
    "small",
    "large_mono",
    "large_color",
    "color_tier_1",
    "color_tier_2",
    "color_tier_3",
    "a4_equivalent",
    "a4_equivalent_mono",
    "a4_equivalent_color",
    "fax_mono",
    "scan_images",
]


class Supply(Frozen):
    index: int = Field(description="prtMarkerSuppliesIndex.")
    description: str | None = None
    type: str = Field(description="prtMarkerSuppliesType name, e.g. 'toner', 'opc', 'fuser'.")
    supply_class: SupplyClass
    colorant: str | None = None
    unit: str | None = None
    max_capacity: int | None = Field(description="None when the device says -1 or -2.")
    level: int | None = Field(description="Raw prtMarkerSuppliesLevel as the device sent it.")
    percent: float | None = Field(
        description="Remaining (consumed) or filled (receptacle) share, 0-100."
    )
    state: SupplyState
    quirk: str | None = Field(
        default=None, description="Name of the vendor quirk applied to decode the level, if any."
    )
    # Cartridge identity (schema 1.1): null where the device does not say.
    part_number: str | None = Field(
        default=None, description="Order number of the cartridge, e.g. 'CF217A', '006R01509'."
    )
    cartridge_serial: str | None = Field(
        default=None, description="Serial number of the installed cartridge itself."
    )
    installed_on: date | None = Field(
        default=None, description="Date the cartridge was first installed, as the device says."
    )
    pages_printed: int | None = Field(
        default=None, description="Pages printed with this cartridge, as the device counts them."
    )
    rated_yield: int | None = Field(
        default=None, description="Rated yield of the cartridge in pages, as the device says."
    )
    identity_sources: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Cartridge field -> where it came from: 'description' (parsed from "
            "prtMarkerSuppliesDescription), the dotted OID of a vendor MIB, or 'model' "
            "(the parts the device's model takes, when its description names none)."
        ),
    )


class Alert(Frozen):
    index: int
    severity: str
    group: str | None = None
    group_index: int | None = None
    location: int | None = None
    code: str | None = None
    description: str | None = None
    training_level: str | None = None
    time_ticks: int | None = None


class Status(Frozen):
    printer_status: str | None = None
    device_status: str | None = None
    errors: list[str] = Field(default_factory=list)
    alerts: list[Alert] = Field(default_factory=list)


ReadSource = Literal["device", "manual"]


class ManualEntry(Frozen):
    """Who entered a manual meter read, when, and why (``source: manual`` reads only)."""

    entered_by: str = Field(min_length=1, description="Who read the meters off the device.")
    reason: str = Field(min_length=1, description="Why the read is manual.")
    entered_at: datetime = Field(description="When the read was entered into the agent.")


class PrinterRead(Frozen):
    """One complete read of one printer."""

    schema_version: str = READ_SCHEMA_VERSION
    address: str
    collected_at: datetime
    identity: Identity
    counters: Counters
    counter_sources: dict[str, str] = Field(
        default_factory=dict, description="Counter name -> OID the value came from."
    )
    supplies: list[Supply] = Field(default_factory=list)
    status: Status = Field(default_factory=Status)
    problems: list[Problem] = Field(default_factory=list)
    source: ReadSource = Field(
        default="device",
        description="device: read over SNMP; manual: meters a person entered (meter add/import).",
    )
    manual: ManualEntry | None = Field(
        default=None, description="Who entered a manual read and why; null for device reads."
    )
