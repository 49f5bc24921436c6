"""The supplies report's rows, computed the same way from any source of history.

``fleet-agent supplies`` shows one :class:`SupplyRow` per device and supply:
from the agent's state database (``--state-dir``), from the reference backend's
store (``--store``), or from a file of reads (``--reads``). The agent keeps
compact points as reads arrive; the backend and the file give whole reads,
which :func:`histories_from_reads` turns into the very same points with the
same rule (:func:`mibs.supply_history.add_point`). Orders are matched by
:func:`order_id`, which the agent's ``supply_order_due`` event carries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from pydantic import Field

from mibs.forecast import ForecastMethod, ForecastSettings, ForecastState, forecast
from mibs.models import Frozen, PrinterRead, Supply
from mibs.supply_history import SupplyPoint, add_point, point_from_supply


def order_id(device_id: str, supply_index: int, cartridge_since: datetime) -> str:
    """The id of the order for one cartridge: device, supply, day it was first seen."""
    return f"{device_id}/{supply_index}/{cartridge_since.date().isoformat()}"


def tracked(supply: Supply) -> bool:
    """Consumables are tracked; receptacles (waste toner) and unknown classes are not."""
    return supply.supply_class == "consumed"


class SupplyRow(Frozen):
    device_id: str
    address: str | None
    supply_index: int
    description: str | None
    type: str
    colorant: str | None
    part_number: str | None
    level: float | None = Field(description="Remaining percent (fitted, or estimated from pages).")
    history_days: float
    pages_per_day: float | None
    predicted_empty: date | None
    empty_earliest: date | None
    empty_latest: date | None
    state: ForecastState
    method: ForecastMethod
    more_history_days: float | None
    note: str


@dataclass
class History:
    """One supply's points and what it last was."""

    device_id: str
    address: str | None
    supply: Supply
    points: list[SupplyPoint] = field(default_factory=list)


def histories_from_reads(reads: Iterable[tuple[str, PrinterRead]]) -> list[History]:
    """Per device and supply, the points the agent would have kept (reads oldest first)."""
    found: dict[tuple[str, int], History] = {}
    for device_id, read in reads:
        for supply in read.supplies:
            if not tracked(supply):
                continue
            key = (device_id, supply.index)
            history = found.setdefault(key, History(device_id, read.address, supply))
            new = point_from_supply(supply, read.collected_at, read.counters.total)
            history.points = add_point(history.points, new)
            history.supply, history.address = supply, read.address
    return [found[key] for key in sorted(found)]


def supply_row(
    history: History, settings: ForecastSettings, *, ordered: Iterable[str] = ()
) -> SupplyRow | None:
    """The report row of one supply; ``ordered`` holds the order ids already sent."""
    outlook = forecast(history.points, settings)
    if outlook is None:
        return None
    if order_id(history.device_id, history.supply.index, outlook.cartridge_since) in set(ordered):
        outlook = forecast(history.points, settings, ordered=True)
        assert outlook is not None
    supply = history.supply
    part = next((p.part_number for p in reversed(history.points) if p.part_number), None)
    return SupplyRow(
        device_id=history.device_id,
        address=history.address,
        supply_index=supply.index,
        description=supply.description,
        type=supply.type,
        colorant=supply.colorant,
        part_number=part,
        level=outlook.level,
        history_days=outlook.history_days,
        pages_per_day=outlook.pages_per_day,
        predicted_empty=outlook.predicted_empty,
        empty_earliest=outlook.empty_earliest,
        empty_latest=outlook.empty_latest,
        state=outlook.state,
        method=outlook.method,
        more_history_days=outlook.more_history_days,
        note=outlook.note,
    )


def report_rows(
    histories: Iterable[History], settings: ForecastSettings, *, ordered: Iterable[str] = ()
) -> list[SupplyRow]:
    orders = set(ordered)
    rows = (supply_row(history, settings, ordered=orders) for history in histories)
    return [row for row in rows if row is not None]
