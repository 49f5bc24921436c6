"""Supplies intelligence at the edge: history, replacements, forecast and orders per read.

:class:`SupplyTracker` is called with every read the daemon delivers. It adds the
read's consumables to their history (:mod:`agent.supply_store`), and returns the
events that read causes, each with the key that marks it as sent:

* ``supply_replaced`` for every replacement in the history not sent before
  (key ``replaced/<device>/<supply>/<day of the new cartridge>``);
* ``supply_order_due`` when the forecast (:mod:`mibs.forecast`) says order and no
  order was sent for this cartridge (key ``order/<device>/<supply>/<day the
  cartridge was first seen>``, which is also the event's ``order_id``). A new
  cartridge is a new key, so the next order comes only after a replacement.

The caller submits the events to the durable outbox and then calls
:meth:`SupplyTracker.sent`: a crash in between sends an event again after the
restart (at least once), with the same ``order_id``, which a backend counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agent.eligibility.contacts import Contact
from agent.eligibility.policy import Policy, ReplenishmentPolicy
from agent.eligibility.rules import DeviceFacts, covers
from agent.supply_store import SupplyStore
from mibs.events import DeliveryContact, SupplyOrderDue, SupplyReplaced
from mibs.forecast import SupplyForecast, forecast
from mibs.models import PrinterRead, Supply
from mibs.supply_history import Replacement, SupplyPoint, cartridges, replacements
from mibs.supply_report import order_id


def replaced_key(device_id: str, supply_index: int, replaced_at: datetime) -> str:
    return f"replaced/{device_id}/{supply_index}/{replaced_at.date().isoformat()}"


@dataclass(frozen=True)
class Pending:
    """An event to submit, and the mark that says it was sent."""

    event: SupplyReplaced | SupplyOrderDue
    key: str
    kind: str


def delivery_contact(
    read: PrinterRead, device_id: str, policy: Policy | None, contacts: tuple[Contact, ...] | None
) -> DeliveryContact | None:
    """The first supplies contact covering the device (contacts import, else the policy's)."""
    if policy is None:
        return None
    candidates = policy.contacts if contacts is None else contacts
    facts = DeviceFacts(read=read, policy=policy, device_id=device_id, contacts=candidates)
    for contact in candidates:
        if covers(contact, facts):
            return DeliveryContact.model_validate(
                contact.model_dump(exclude={"locations", "devices"})
            )
    return None


class SupplyTracker:
    def __init__(self, store: SupplyStore) -> None:
        self.store = store
        #: The latest forecast of every supply observed (what ``observe`` decided on).
        self.outlooks: dict[tuple[str, int], SupplyForecast | None] = {}

    def observe(
        self,
        device_id: str,
        read: PrinterRead,
        *,
        policy: Policy | None = None,
        contacts: tuple[Contact, ...] | None = None,
    ) -> list[Pending]:
        """Record ``read`` and return the events it causes (not yet marked as sent)."""
        settings = policy.replenishment if policy is not None else ReplenishmentPolicy()
        pending: list[Pending] = []
        contact: DeliveryContact | None = None
        contact_known = False
        for supply in self.store.record(device_id, read):
            points = self.store.points(device_id, supply.index)
            pending.extend(self._replaced(device_id, read.address, supply, points))
            since, outlook = self.outlook(device_id, supply.index, points, settings)
            self.outlooks[(device_id, supply.index)] = outlook
            if supply.type not in settings.supply_types:
                continue
            if outlook is None or outlook.state != "order_due":
                continue
            if not contact_known:
                contact, contact_known = delivery_contact(read, device_id, policy, contacts), True
            key = order_id(device_id, supply.index, since)
            event = SupplyOrderDue(
                device_id=device_id,
                address=read.address,
                supply_index=supply.index,
                description=supply.description,
                type=supply.type,
                colorant=supply.colorant,
                order_id=key,
                part_number=supply.part_number,
                level=outlook.level,
                predicted_empty=outlook.predicted_empty,
                empty_earliest=outlook.empty_earliest,
                emergency=outlook.emergency,
                lead_time_days=settings.lead_time_days,
                cartridge_since=outlook.cartridge_since,
                contact=contact,
            )
            pending.append(Pending(event, f"order/{key}", "order"))
        return pending

    def outlook(
        self,
        device_id: str,
        supply_index: int,
        points: list[SupplyPoint],
        settings: ReplenishmentPolicy,
    ) -> tuple[datetime, SupplyForecast | None]:
        """(start of the current cartridge, its forecast) with ``ordered`` from the marks."""
        if not points:
            return datetime.min, None
        since = cartridges(points)[-1].since  # the forecast's cartridge_since
        ordered = self.store.marked(f"order/{order_id(device_id, supply_index, since)}")
        return since, forecast(points, settings.settings(), ordered=ordered)

    def _replaced(
        self, device_id: str, address: str, supply: Supply, points: list[SupplyPoint]
    ) -> list[Pending]:
        found = []
        for replacement in replacements(points):
            key = replaced_key(device_id, supply.index, replacement.at)
            if not self.store.marked(key):
                found.append(
                    Pending(
                        _replaced_event(device_id, address, supply, replacement), key, "replaced"
                    )
                )
        return found

    def sent(self, pending: list[Pending]) -> None:
        """Mark events as sent, once they are durable in the outbox."""
        if pending:
            self.store.mark((item.key, item.kind) for item in pending)


def _replaced_event(
    device_id: str, address: str, supply: Supply, replacement: Replacement
) -> SupplyReplaced:
    return SupplyReplaced(
        device_id=device_id,
        address=address,
        supply_index=supply.index,
        description=supply.description,
        type=supply.type,
        colorant=supply.colorant,
        replaced_at=replacement.at,
        reason=replacement.reason,
        old_level=replacement.old_level,
        new_level=replacement.new_level,
        old_part_number=replacement.old_part_number,
        new_part_number=replacement.new_part_number,
        old_serial=replacement.old_serial,
        new_serial=replacement.new_serial,
        days_in_service=replacement.days_in_service,
        pages_in_service=replacement.pages_in_service,
        whole_life_seen=replacement.whole_life_seen,
        rated_yield=replacement.rated_yield,
        yield_ratio=replacement.yield_ratio,
    )
