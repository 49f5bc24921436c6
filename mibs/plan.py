"""What to ask a printer for: named OIDs to GET and table columns to walk.

The collector executes a plan generically (GET for ``scalars``, a side-by-side
column walk for ``columns``) and hands every varbind it got to
:func:`mibs.decode.decode_read`. Names are the dotted read fields they feed
(``identity.serial``, ``counters.total``, ``supplies``) so that a transport
failure on one OID becomes a ``Problem`` on the right field.

Three plans:

* :func:`identity_plan`: the cheap subset discovery needs to tell a printer
  and who it is (one GET, one short walk).
* :func:`base_plan`: a full standard read: system scalars in one GET, and
  every standard column (Host Resources, IF-MIB, Printer-MIB, PWG, ENTITY-MIB)
  in one side-by-side GETBULK walk, so a typical printer needs a handful of
  requests.
* :func:`vendor_plan`: what only this maker's private MIB has (identity
  fallbacks, meters, private supply levels and cartridge data), asked
  once the sysObjectID is known.

This module is the one place a plan is assembled: the decoder modules export
their OIDs as data and import nothing from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from mibs import cartridges, counters, identity, status, supplies, vendors_ids
from mibs.enterprises import GENERIC_AGENTS, enterprise_of
from mibs.values import Oid, Value, Varbinds
from mibs.vendor_counters import VENDOR_RECORDS, VENDOR_SCALARS, VENDOR_TABLES


@dataclass(frozen=True)
class PlanItem:
    name: str
    oid: Oid


@dataclass(frozen=True)
class PollPlan:
    scalars: tuple[PlanItem, ...] = ()
    columns: tuple[PlanItem, ...] = ()

    def __add__(self, other: PollPlan) -> PollPlan:
        return PollPlan(self.scalars + other.scalars, self.columns + other.columns)


Stage = Callable[[Varbinds], PollPlan]


@dataclass(frozen=True)
class ReadPlan:
    """A whole device read: stages asked in order, each chosen from what the ones before answered.

    ``kind`` says how the varbinds are decoded: ``full`` into a complete read,
    ``identity`` into the identity alone (discovery).
    """

    kind: Literal["full", "identity"]
    stages: tuple[Stage, ...]


def _sys_object_id(varbinds: Varbinds) -> Oid | None:
    value: Value | None = varbinds.get(identity.SYS_OBJECT_ID)
    return value if isinstance(value, tuple) else None


def full_read_plan() -> ReadPlan:
    """Identity, counters, supplies and status: the base plan, then the maker's own OIDs."""
    return ReadPlan(
        "full", (lambda _: base_plan(), lambda varbinds: vendor_plan(_sys_object_id(varbinds)))
    )


#: Walked first by discovery: enough to tell a printer from any other SNMP device.
CLASSIFY_COLUMNS: tuple[Oid, ...] = (identity.HR_DEVICE_TYPE, identity.PRT_GENERAL_SERIAL)


def identity_read_plan() -> ReadPlan:
    """Discovery's read: who is this, and is it a printer? Printers only get the rest.

    The system scalars (the probe), then hrDeviceType and prtGeneralSerialNumber; a
    printer (:func:`mibs.identity.classify_device`) then gets the rest of
    :func:`identity_plan`, the maker's private identity OIDs and the hrDeviceDescr of
    its printer row.
    """
    first = PollPlan(
        scalars=_system_scalars(),
        columns=tuple(PlanItem("identity", oid) for oid in CLASSIFY_COLUMNS),
    )
    return ReadPlan("identity", (lambda _: first, _printer_identity))


def _printer_identity(varbinds: Varbinds) -> PollPlan:
    if identity.classify_device(varbinds) != "printer":
        return PollPlan()
    columns = tuple(item for item in _identity_columns() if item.oid not in CLASSIFY_COLUMNS)
    enterprise = enterprise_of(_sys_object_id(varbinds))
    scalars = [PlanItem("identity", item.oid) for item in identity.vendor_identity_oids(enterprise)]
    index = identity.printer_index(varbinds)
    if index is not None:
        scalars.append(PlanItem("identity.hr_device_descr", identity.HR_DEVICE_DESCR + (index,)))
    return PollPlan(scalars=tuple(scalars), columns=columns)


def _system_scalars() -> tuple[PlanItem, ...]:
    return tuple(PlanItem(name, oid) for name, oid in identity.SYSTEM_SCALARS) + (
        PlanItem("identity.uptime_seconds", identity.HR_SYSTEM_UPTIME),
    )


def _identity_columns() -> tuple[PlanItem, ...]:
    return (
        PlanItem("identity.hr_device_index", identity.HR_DEVICE_TYPE),
        PlanItem("identity.serial", identity.PRT_GENERAL_SERIAL),
        PlanItem("identity.device_id_1284", identity.PPM_PRINTER_1284_ID),
        PlanItem("identity.mac", identity.IF_TYPE),
        PlanItem("identity.mac", identity.IF_PHYS_ADDRESS),
    )


def identity_plan() -> PollPlan:
    """System scalars, hrDeviceType, prtGeneralSerialNumber, the PWG 1284 id, MACs."""
    return PollPlan(scalars=_system_scalars(), columns=_identity_columns())


def base_plan() -> PollPlan:
    """Everything standard: identity, status, alerts, counters and supplies."""
    columns = (
        *_identity_columns(),
        PlanItem("identity.hr_device_descr", identity.HR_DEVICE_DESCR),
        PlanItem("identity.serial", identity.ENT_PHYSICAL_SERIAL),
        PlanItem("identity.firmware", identity.ENT_PHYSICAL_FIRMWARE_REV),
        PlanItem("identity.firmware", identity.ENT_PHYSICAL_SOFTWARE_REV),
        PlanItem("status.device_status", status.HR_DEVICE_STATUS),
        PlanItem("status.printer_status", status.HR_PRINTER_STATUS),
        PlanItem("status.errors", status.HR_PRINTER_ERROR_STATE),
        *(PlanItem("status.alerts", oid) for oid in status.ALERT_COLUMNS),
        *COUNTER_COLUMNS,
        *SUPPLY_COLUMNS,
    )
    return PollPlan(scalars=_system_scalars(), columns=_dedupe(columns))


def vendor_plan(sys_object_id: Oid | None) -> PollPlan:
    """The maker's private identity, meters, supply levels and cartridge data, by sysObjectID."""
    enterprise = enterprise_of(sys_object_id)
    if enterprise is None or enterprise in GENERIC_AGENTS:
        return PollPlan()
    tables = (
        ("identity.device_id_1284", vendors_ids.VENDOR_1284_IDS),
        ("identity.serial", vendors_ids.VENDOR_SERIALS),
        ("identity.firmware", vendors_ids.VENDOR_FIRMWARE),
        ("identity.model", vendors_ids.VENDOR_MODELS),
    )
    scalars = tuple(
        PlanItem(name, item.oid)
        for name, table in tables
        for item in table
        if item.enterprise == enterprise
    )
    return (
        PollPlan(scalars=scalars)
        + vendor_counter_plan(enterprise)
        + vendor_supply_plan(enterprise)
        + cartridge_plan(enterprise)
    )


COUNTER_COLUMNS: tuple[PlanItem, ...] = tuple(
    PlanItem(name, oid) for name, oid in counters.COUNTER_COLUMNS
)
SUPPLY_COLUMNS: tuple[PlanItem, ...] = tuple(
    PlanItem("supplies", oid) for oid in supplies.SUPPLY_COLUMNS
)


def vendor_counter_plan(enterprise: int | None) -> PollPlan:
    """Scalars to GET and typed tables to walk for this vendor's meters (empty if none)."""
    if enterprise is None:
        return PollPlan()
    scalars = tuple(
        PlanItem(f"counters.{entry.counter}", oid)
        for entry in VENDOR_SCALARS.get(enterprise, ())
        for oid in entry.oids
    ) + tuple(PlanItem("counters", records.oid) for records in VENDOR_RECORDS.get(enterprise, ()))
    columns = tuple(
        PlanItem("counters", oid)
        for table in VENDOR_TABLES.get(enterprise, ())
        for oid in (table.type_column, table.value_column)
    )
    return PollPlan(scalars=scalars, columns=columns)


def vendor_supply_plan(enterprise: int | None) -> PollPlan:
    """Vendor supply columns to walk besides :data:`SUPPLY_COLUMNS` (Ricoh's private table)."""
    if enterprise == supplies.RICOH:
        return PollPlan(
            columns=tuple(PlanItem("supplies", oid) for oid in supplies.RICOH_PRIVATE_COLUMNS)
        )
    return PollPlan()


def cartridge_plan(enterprise: int | None) -> PollPlan:
    """The vendor cartridge columns and scalars to ask the maker behind ``enterprise``."""
    columns = cartridges.CARTRIDGE_COLUMNS.get(enterprise) if enterprise is not None else None
    scalars = cartridges.CARTRIDGE_SCALARS.get(enterprise) if enterprise is not None else None
    return PollPlan(
        scalars=tuple(PlanItem("supplies", oid) for oid in scalars or ()),
        columns=tuple(PlanItem("supplies", oid) for oid in columns or ()),
    )


def _dedupe(items: tuple[PlanItem, ...]) -> tuple[PlanItem, ...]:
    """Keep the first item per OID: a column walked once feeds every decoder."""
    seen: set[Oid] = set()
    kept: list[PlanItem] = []
    for item in items:
        if item.oid not in seen:
            seen.add(item.oid)
            kept.append(item)
    return tuple(kept)
