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
"""

from __future__ import annotations

from dataclasses import dataclass

from mibs import identity, status, vendors_ids
from mibs.enterprises import GENERIC_AGENTS, enterprise_of
from mibs.values import Oid


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
    # counters and supplies import PlanItem from here: import them at call time.
    from mibs.counters import COUNTER_COLUMNS
    from mibs.supplies import SUPPLY_COLUMNS

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
    """The private identity scalars and meters of the maker behind ``sys_object_id``."""
    from mibs.cartridges import cartridge_plan
    from mibs.counters import vendor_counter_plan
    from mibs.supplies import vendor_supply_plan

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


def _dedupe(items: tuple[PlanItem, ...]) -> tuple[PlanItem, ...]:
    """Keep the first item per OID: a column walked once feeds every decoder."""
    seen: set[Oid] = set()
    kept: list[PlanItem] = []
    for item in items:
        if item.oid not in seen:
            seen.add(item.oid)
            kept.append(item)
    return tuple(kept)
