"""Supplies report of the reference backend: the agent's forecast, from stored messages.

The same rows as ``fleet-agent supplies --state-dir`` shows on the agent, computed
by the same pure code (:mod:`mibs.supply_report`, :mod:`mibs.forecast`) from the
reads the consumer stored: points are rebuilt with the agent's own rule, and a
cartridge counts as ordered when a ``supply_order_due`` event with its
``order_id`` was stored.
"""

from __future__ import annotations

from pydantic import ValidationError

from backend.store import SqlStore, StoreError
from mibs.events import SupplyOrderDue, parse_event
from mibs.forecast import ForecastSettings
from mibs.messages import ReadMessage
from mibs.supply_report import SupplyRow, histories_from_reads, report_rows

__all__ = ["stored_supply_rows"]


def stored_supply_rows(store: SqlStore, settings: ForecastSettings) -> list[SupplyRow]:
    """One row per device and consumable supply seen in the stored reads."""
    reads = []
    for agent_id, body in store.bodies("read"):
        try:
            message = ReadMessage.model_validate(body)
        except ValidationError as exc:
            raise StoreError(
                f"a stored read of agent {agent_id} no longer validates: {exc}"
            ) from exc
        reads.append((message.device_id, message))
    reads.sort(key=lambda pair: pair[1].collected_at)
    orders = set()
    for _, body in store.bodies("event"):
        if isinstance(body, dict) and body.get("event") == "supply_order_due":
            event = parse_event(body)
            if isinstance(event, SupplyOrderDue):
                orders.add(event.order_id)
    return report_rows(histories_from_reads(reads), settings, ordered=orders)
