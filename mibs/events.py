"""The events the agent uploads (envelope kind ``event``): one frozen model per event kind.

Every event is a flat JSON object naming its kind in ``"event"`` and the device
in ``"device_id"`` and ``"address"``; the rest depends on the kind. :data:`Event`
is the union of every kind, discriminated on ``event``: the agent builds one of
these models and hands it to the outbox (the models satisfy the uploader's
``Outgoing`` protocol: ``kind`` and ``to_body()``), and the reference backend
parses a received body back with :func:`parse_event` (an unknown kind or a
missing or extra field is refused there, as ``bad_schema``).

Adding an event kind is a one-model change in this module:

1. write the model, a subclass of :class:`EventBase` with the literal name::

       class SupplyReplaced(EventBase):
           \"\"\"A supply's level went back up: it was replaced.\"\"\"

           event: Literal["supply_replaced"] = "supply_replaced"
           supply_index: int

2. add it to the :data:`Event` union at the bottom of the module.

Then ``python -m agent.schema`` regenerates ``docs/schema/event.schema.json``
(a unit test fails while it is stale) and the new kind is known to the agent,
the outbox, the backend and the schema. Field names are the wire names; a
field that may be unknown is ``X | None`` and is written as ``null``, never
left out.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import Field, JsonValue, TypeAdapter

from mibs.models import Frozen, SupplyState
from mibs.reasons import Reason
from mibs.verdict import ReasonCode

__all__ = [
    "EVENT_ADAPTER",
    "EVENT_SCHEMA_VERSION",
    "DeliveryContact",
    "DeviceBack",
    "DeviceFound",
    "DeviceMoved",
    "DeviceSilent",
    "DuplicateSerial",
    "EligibilityChanged",
    "Event",
    "EventBase",
    "ImplausibleJump",
    "MeterBackwards",
    "SerialChanged",
    "SupplyLow",
    "SupplyOrderDue",
    "SupplyReplaced",
    "parse_event",
]

#: Version of the event body format (docs/schema/event.schema.json); a new event kind
#: or a new optional field bumps the minor number, a removed or retyped field the major.
EVENT_SCHEMA_VERSION = "1.3"


class EventBase(Frozen):
    """Fields every event carries; subclasses add ``event`` (their name) and their own."""

    kind: ClassVar[Literal["event"]] = "event"

    device_id: str = Field(description="Stable device id, as in the read's device_id.")
    address: str = Field(description="The device's address when the event happened.")

    def to_body(self) -> dict[str, JsonValue]:
        """The JSON object uploaded as the envelope body."""
        body: dict[str, JsonValue] = self.model_dump(mode="json")
        return body


class _Sighting(EventBase):
    """What discovery saw of the device (any of it may be unknown)."""

    serial: str | None
    vendor: str | None
    model: str | None


class DeviceFound(_Sighting):
    """Discovery found a printer the inventory did not know."""

    event: Literal["device_found"] = "device_found"


class DeviceMoved(_Sighting):
    """A known printer answered at another address."""

    event: Literal["device_moved"] = "device_moved"
    moved_from: str = Field(description="The address the device had before.")


class DuplicateSerial(_Sighting):
    """Another device reports the same serial number (it breaks billing by serial)."""

    event: Literal["duplicate_serial"] = "duplicate_serial"


class EligibilityChanged(EventBase):
    """A device's verdict (eligible, or its reason codes) changed since its previous read."""

    event: Literal["eligibility_changed"] = "eligibility_changed"
    eligible: bool
    was_eligible: bool
    reasons: tuple[ReasonCode, ...] = Field(description="Reason codes of the new verdict.")
    policy_version: str


class SupplyLow(EventBase):
    """A supply became low, empty (consumable) or full (waste receptacle)."""

    event: Literal["supply_low"] = "supply_low"
    supply_index: int = Field(description="prtMarkerSuppliesIndex.")
    description: str | None
    type: str
    colorant: str | None
    state: SupplyState
    percent: float | None


class _MeterAnomaly(EventBase):
    """A meter anomaly between the device's previous read and this one
    (:mod:`mibs.meter_anomalies`): flagged, never billed silently."""

    serial: str | None = Field(description="The serial in the later read.")
    meter: str | None = Field(description="The device meter (counters name); null for serials.")
    previous_at: datetime = Field(description="collected_at of the earlier read.")
    at: datetime = Field(description="collected_at of the later read.")
    previous: int | str | None = Field(description="Value (or serial) in the earlier read.")
    current: int | str | None = Field(description="Value (or serial) in the later read.")
    limit: int | None = Field(
        description="implausible_jump: the most pages the engine could print; else null."
    )
    detail: str = Field(description="A sentence for people.")


class MeterBackwards(_MeterAnomaly):
    """A meter is lower than in the previous read (reset, board swap, firmware)."""

    event: Literal["meter_backwards"] = "meter_backwards"


class ImplausibleJump(_MeterAnomaly):
    """A printed-page meter grew more than the engine could print since the previous read."""

    event: Literal["implausible_jump"] = "implausible_jump"


class SerialChanged(_MeterAnomaly):
    """The serial number behind one device id changed."""

    event: Literal["serial_changed"] = "serial_changed"


class _SupplyEvent(EventBase):
    supply_index: int = Field(description="prtMarkerSuppliesIndex.")
    description: str | None
    type: str
    colorant: str | None


class SupplyReplaced(_SupplyEvent):
    """A cartridge was replaced (mibs/supply_history.py says how it is recognised)."""

    event: Literal["supply_replaced"] = "supply_replaced"
    replaced_at: datetime = Field(description="The first reading of the new cartridge.")
    reason: Literal["serial", "part_number", "cartridge_counter", "level_rise", "state_rise"]
    old_level: float | None
    new_level: float | None
    old_part_number: str | None
    new_part_number: str | None
    old_serial: str | None
    new_serial: str | None
    days_in_service: float
    pages_in_service: int | None
    whole_life_seen: bool = Field(
        description="False when the old cartridge was installed before the history began: "
        "days and pages in service are then lower bounds."
    )
    rated_yield: int | None
    yield_ratio: float | None = Field(description="Pages in service / rated yield.")


class DeliveryContact(Frozen):
    """Who receives the cartridge (from the contacts import or the policy)."""

    name: str
    company: str
    address: str
    phone: str
    email: str
    country_code: str


class SupplyOrderDue(_SupplyEvent):
    """Time to ship a cartridge: sent once per cartridge (``order_id`` is stable)."""

    event: Literal["supply_order_due"] = "supply_order_due"
    order_id: str = Field(
        description="device/supply/cartridge: the same order, however often sent."
    )
    part_number: str | None
    level: float | None = Field(description="Remaining percent (fitted) when the order was made.")
    predicted_empty: date | None
    empty_earliest: date | None
    emergency: bool = Field(description="Ordered by the emergency level, not by the forecast.")
    lead_time_days: float
    cartridge_since: datetime
    contact: DeliveryContact | None = Field(description="None when no contact covers the device.")


class _Outage(EventBase):
    """A device that stopped answering its scheduled reads (:mod:`agent.liveness`)."""

    since: datetime = Field(
        description="When the first missed read of this outage happened: with device_id, "
        "the outage's identity (its device_silent and device_back carry the same)."
    )
    missed_reads: int = Field(ge=1, description="Scheduled reads missed in a row so far.")
    last_answered_at: datetime | None = Field(
        description="The device's last answered read before the outage (null: never)."
    )


class DeviceSilent(_Outage):
    """A device missed ``liveness.device_silent_after`` scheduled reads in a row.

    Sent once per outage (a restart of the agent does not send it again)."""

    event: Literal["device_silent"] = "device_silent"
    reason: Reason | None = Field(
        description="Why the last read failed: timeout, port_closed, auth_failed, ..."
    )


class DeviceBack(_Outage):
    """A device that was reported silent answered a scheduled read again."""

    event: Literal["device_back"] = "device_back"
    back_at: datetime = Field(description="The first answered read after the outage.")


#: Every event kind, discriminated on ``event``. Add a new model here.
Event = Annotated[
    DeviceFound
    | DeviceMoved
    | DuplicateSerial
    | EligibilityChanged
    | SupplyLow
    | MeterBackwards
    | ImplausibleJump
    | SerialChanged
    | SupplyReplaced
    | SupplyOrderDue
    | DeviceSilent
    | DeviceBack,
    Field(discriminator="event"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(body: object) -> Event:
    """The event a received body holds; ``pydantic.ValidationError`` when it is none."""
    return EVENT_ADAPTER.validate_python(body)
