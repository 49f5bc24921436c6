"""Supply usage simulator: months of printing, read daily, through the agent's real supply code.

Simulated printers print every day (weekday/weekend pattern, public holidays
and shutdown weeks, random bursts), consume cartridges of different yields
with a per-cartridge coverage, get shaken when low (the sensor reads a few
points fuller for a day or two), and have cartridges replaced once empty.
Sensors differ: integer percent, impressions out of the yield, noisy percent,
Canon's three stages (100/10/1), Brother's 0-3 codes, and -3 "some remaining".

Every simulated morning each printer is read as the daemon reads it: each
printer has its own fake agent (:mod:`collectors.fake_agent`) on a loopback
address serving that day's varbinds (Printer-MIB supplies table,
prtMarkerLifeCount, descriptions with HP part numbers or Xerox PN/SN suffixes)
over real UDP, and :func:`collectors.reader.read_device` reads it with the full
read plan (BER codec, SnmpTransport, :func:`mibs.decode.decode_read`). The read
goes to the agent's :class:`agent.supplies.SupplyTracker` on a real state
database (SQLite, in a temporary directory): history, replacements, forecast,
orders. Time is simulated (the reader's clock is the simulated morning);
nothing sleeps.

    .venv/bin/python -m bench.supply_sim --printers 200 --days 180 --seed 1

Prints the measures docs/benchmarks.md records: median absolute error of the
predicted empty date 14 and 7 days before each cartridge ran out, the share of
cartridges whose order came at least the lead time before empty (of all that
ran out, and of those that ran out once the policy allowed forecast orders:
``min_history_days + lead`` days after the history began), how many days before
empty and at what true level orders came, duplicate orders, and orders made
while learning above the emergency level. The in-time counts are broken down by
sensor and by whether the cartridge was already in use when the history began;
``--misses FILE`` writes every cartridge ordered late or never (after the
minimum history) as a JSON line, with the forecast the agent had the day before
the lead time, to see where misses come from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import statistics
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import structlog
from pydantic import SecretStr

from agent.eligibility.policy import ReplenishmentPolicy
from agent.inventory import Inventory
from agent.supplies import SupplyTracker
from agent.supply_store import SupplyStore
from collectors.credentials import Credential, SnmpSettings
from collectors.fake_agent import FakeAgent, start_fake_agent
from collectors.reader import read_device
from collectors.transport import SnmpTransport
from mibs.events import SupplyOrderDue, SupplyReplaced
from mibs.forecast import SupplyForecast
from mibs.models import PrinterRead
from mibs.plan import full_read_plan
from mibs.values import Oid, Value

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
POLICY = ReplenishmentPolicy()  # the defaults: lead 5 days, safety 3, history 30, emergency 5 %
SENSORS = ("percent", "percent", "percent", "impressions", "noisy", "canon", "brother", "some")
#: Cartridge families: (standard, high-yield) part numbers and rated yields. HP parts are
#: real ones (their yields are in mibs.cartridge_yields, the HP data sheets); the HP
#: devices name them as the JetDirect M130nw recording does ("Black Cartridge HP CF217A").
#: Canon devices name both cartridges that fit, as the LBP6670 recording does ("Canon
#: Cartridge 719/719H"); Brother devices name none ("Black Toner Cartridge", as the
#: HL-5370DW recording), but give their model in hrDeviceDescr as that recording does
#: ("Brother HL-5370DW series": TN-620 or TN-650). Xerox devices name a part the yield
#: table does not know.
Family = tuple[tuple[str, int], tuple[str, int] | None]
HP_MONO: tuple[Family, ...] = (
    (("CF217A", 1600), None),
    (("CF226A", 3100), ("CF226X", 9000)),
    (("CF280A", 2700), ("CF280X", 6900)),
    (("CE255A", 6000), ("CE255X", 12500)),
    (("CF287A", 9000), ("CF287X", 18000)),
)
HP_COLOUR: dict[str, Family] = {
    "black": (("CF410A", 2300), ("CF410X", 6500)),
    "cyan": (("CF411A", 2300), ("CF411X", 5000)),
    "yellow": (("CF412A", 2300), ("CF412X", 5000)),
    "magenta": (("CF413A", 2300), ("CF413X", 5000)),
}
CANON: Family = (("719/719H", 2100), ("719/719H", 6400))
BROTHER: Family = (("", 3000), ("", 8000))
HIGH_YIELD_SHARE = 0.25  # cartridges bought in the high-yield size, where there is one
HOLIDAYS = {date(2026, 1, 1), date(2026, 4, 3), date(2026, 4, 6), date(2026, 5, 1),
            date(2026, 5, 14), date(2026, 5, 25), date(2026, 10, 3), date(2026, 12, 25),
            date(2026, 12, 26)}  # fmt: skip
COLOURS = ("black", "cyan", "magenta", "yellow")
ENTERPRISE = {"canon": 1602, "brother": 2435}
MIB = (1, 3, 6, 1, 2, 1)
SUPPLY = MIB + (43, 11, 1, 1)


@dataclass
class Cartridge:
    number: int
    installed: datetime
    yield_pages: int
    per_page: float  # percent per page actually used (coverage varies per cartridge)
    serial: str
    part: str
    level: float = 100.0
    empty_at: datetime | None = None
    replaced: datetime | None = None
    bump: float = 0.0
    forecasts: dict[date, SupplyForecast | None] = field(default_factory=dict)
    orders: list[tuple[datetime, SupplyOrderDue]] = field(default_factory=list)
    level_at_order: float | None = None  # the true level when the first order was placed


@dataclass
class SimSupply:
    index: int
    colour: str
    share: float  # share of the printer's pages that use this colorant
    family: Family
    cartridges: list[Cartridge] = field(default_factory=list)

    @property
    def current(self) -> Cartridge:
        return self.cartridges[-1]


@dataclass
class Printer:
    device_id: str
    address: str
    sensor: str
    vendor: str
    weekday_pages: float
    weekend_factor: float
    shutdown: set[date]
    burst_p: float
    supplies: list[SimSupply]
    pages: int = 0


def _new_cartridge(rng: random.Random, supply: SimSupply, at: datetime) -> None:
    number = len(supply.cartridges) + 1
    coverage = rng.lognormvariate(0, 0.15)
    standard, high = supply.family
    part, yield_pages = high if high is not None and rng.random() < HIGH_YIELD_SHARE else standard
    supply.cartridges.append(
        Cartridge(
            number=number,
            installed=at,
            yield_pages=yield_pages,
            per_page=100.0 / yield_pages * coverage,
            serial=f"SN{rng.getrandbits(40):010X}",
            part=part,
        )
    )


def _families(rng: random.Random, sensor: str, vendor: str, colour: bool) -> list[Family]:
    """The cartridge family of each supply (black first), as its maker sells them."""
    if sensor == "canon":
        return [CANON]
    if sensor == "brother":
        return [BROTHER]
    if vendor == "xerox":  # a part the yield table does not know, a yield of its size class
        size = rng.choice((3000, 6000, 9000, 12000, 20000))
        return [
            ((f"006R0{rng.randint(1000, 1999)}", size if c == "black" else size // 2), None)
            for c in (COLOURS if colour else COLOURS[:1])
        ]
    return [HP_COLOUR[c] for c in COLOURS] if colour else [rng.choice(HP_MONO)]


def make_printer(rng: random.Random, number: int) -> Printer:
    sensor = rng.choice(SENSORS)
    colour = rng.random() < 0.35 and sensor not in ("canon", "brother")
    vendor = "xerox" if sensor in ("percent", "noisy") and rng.random() < 0.4 else "hp"
    families = _families(rng, sensor, vendor, colour)
    base_yield = families[0][0][1]  # the black standard cartridge
    weekday = rng.lognormvariate(math.log(base_yield / 45), 0.6)  # cartridge life ~2 months
    shutdown: set[date] = set()
    if rng.random() < 0.3:  # a two-week winter shutdown, a summer week
        shutdown |= {date(2026, 12, 21) + timedelta(days=d) for d in range(14)}
        shutdown |= {date(2026, 8, 3) + timedelta(days=d) for d in range(7)}
    supplies = [
        SimSupply(
            index=i + 1,
            colour=c,
            share=1.0 if c == "black" else rng.uniform(0.15, 0.4),
            family=families[i],
        )
        for i, c in enumerate(COLOURS if colour else COLOURS[:1])
    ]
    printer = Printer(
        device_id=f"sim:{number:04d}",
        address=address_of(number),
        sensor=sensor,
        vendor=vendor,
        weekday_pages=weekday,
        weekend_factor=rng.choice((0.0, 0.0, 0.05, 0.2)),
        shutdown=shutdown,
        burst_p=rng.choice((0.0, 0.01, 0.03)),
        supplies=supplies,
        pages=rng.randint(1000, 200000),
    )
    for supply in supplies:
        _new_cartridge(rng, supply, START - timedelta(days=rng.randint(0, 40)))
        supply.current.level = rng.uniform(30, 100)  # the first one was in use already
    return printer


def _day_pages(rng: random.Random, printer: Printer, day: date) -> int:
    if day in HOLIDAYS or day in printer.shutdown:
        return 0
    mean = printer.weekday_pages * (printer.weekend_factor if day.weekday() >= 5 else 1.0)
    if mean <= 0:
        return 0
    pages = rng.gammavariate(6.0, mean / 6.0)
    if rng.random() < printer.burst_p:
        pages *= rng.uniform(3, 8)
    return int(pages)


def print_day(rng: random.Random, printer: Printer, start: datetime) -> None:
    """One working day (09:00-18:00): pages, toner used, cartridges running out."""
    pages = _day_pages(rng, printer, start.date())
    printer.pages += pages
    for supply in printer.supplies:
        cartridge = supply.current
        cartridge.bump = max(0.0, cartridge.bump - 4.0)
        used = pages * supply.share * cartridge.per_page * rng.lognormvariate(0, 0.05)
        if cartridge.level > 0 and used > 0 and cartridge.empty_at is None:
            if used >= cartridge.level:
                fraction = cartridge.level / used
                cartridge.empty_at = start + timedelta(hours=9 + 9 * fraction)
                cartridge.level = 0.0
            else:
                cartridge.level -= used
        if 0 < cartridge.level < 15 and rng.random() < 0.08:
            cartridge.bump = rng.uniform(3, 10)  # shaken: reads fuller for a day or two


def replace_empties(rng: random.Random, printer: Printer, morning: datetime) -> None:
    for supply in printer.supplies:
        cartridge = supply.current
        if cartridge.empty_at is not None and rng.random() < 0.7:
            cartridge.replaced = morning
            _new_cartridge(rng, supply, morning)


def _reported(rng: random.Random, printer: Printer, cartridge: Cartridge) -> tuple[int, int, int]:
    """(max capacity, level, unit) as the printer's sensor reports the cartridge."""
    shown = min(100.0, cartridge.level + (cartridge.bump if cartridge.level > 0 else 0.0))
    sensor = printer.sensor
    if sensor == "impressions":
        return cartridge.yield_pages, round(shown / 100 * cartridge.yield_pages), 7
    if sensor == "noisy":
        noisy = shown + rng.gauss(0, 1.5) if shown > 0 else 0.0
        return 100, max(0, min(100, round(noisy))), 19
    if sensor == "canon":
        return 100, (0 if shown <= 0 else 1 if shown <= 5 else 10 if shown <= 15 else 100), 19
    if sensor == "brother":
        return -2, (2 if shown <= 0 else 1 if shown <= 10 else 0), 7
    if sensor == "some":
        return -2, (0 if shown <= 0 else -3), 19
    return 100, max(0, min(100, round(shown))), 19


def varbinds(rng: random.Random, printer: Printer) -> dict[Oid, Value]:
    enterprise = ENTERPRISE.get(printer.sensor, 253 if printer.vendor == "xerox" else 11)
    found: dict[Oid, Value] = {
        MIB + (1, 2, 0): (1, 3, 6, 1, 4, 1, enterprise, 1),
        MIB + (25, 3, 2, 1, 2, 1): MIB + (25, 3, 1, 5),
        MIB + (43, 10, 2, 1, 4, 1, 1): printer.pages,
    }
    if printer.sensor == "brother":  # hrDeviceDescr, as the HL-5370DW recording says it
        found[MIB + (25, 3, 2, 1, 3, 1)] = b"Brother HL-5370DW series"
    for supply in printer.supplies:
        cartridge, row = supply.current, (1, supply.index)
        maximum, level, unit = _reported(rng, printer, cartridge)
        name = f"{supply.colour.capitalize()} Toner"
        if printer.vendor == "xerox":
            name += f", PN {cartridge.part};SN{cartridge.serial}"
        elif printer.sensor == "canon":
            name = f"Canon Cartridge {cartridge.part}"
        elif printer.sensor == "brother":
            name = "Black Toner Cartridge"
        else:
            name = f"{supply.colour.capitalize()} Cartridge HP {cartridge.part}"
        found |= {
            SUPPLY + (3, *row): supply.index,
            SUPPLY + (4, *row): 3,
            SUPPLY + (5, *row): 3,
            SUPPLY + (6, *row): name.encode(),
            SUPPLY + (7, *row): unit,
            SUPPLY + (8, *row): maximum,
            SUPPLY + (9, *row): level,
            MIB + (43, 12, 1, 1, 4, 1, supply.index): supply.colour.encode(),
        }
    return found


@dataclass
class Result:
    cartridges: int = 0
    emptied: int = 0
    errors14: list[float] = field(default_factory=list)
    errors7: list[float] = field(default_factory=list)
    no_forecast14: int = 0
    in_time: int = 0
    late: int = 0
    never_ordered: int = 0
    duplicate_orders: int = 0
    learning_orders: int = 0
    replaced_events: int = 0
    after_learning: int = 0
    after_learning_in_time: int = 0
    timing_by_sensor: dict[str, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0])
    )
    eligible_by_sensor: dict[str, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0])
    )
    days_ahead: list[float] = field(default_factory=list)
    level_at_order: list[float] = field(default_factory=list)
    true_replacements: int = 0
    false_replacements: int = 0
    by_sensor: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    snmp_reads: int = 0
    snmp_requests: int = 0
    eligible_by_age: dict[str, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0])
    )
    misses: list[dict[str, object]] = field(default_factory=list)


def _error_at(cartridge: Cartridge, days_before: int) -> float | None:
    assert cartridge.empty_at is not None
    day = (cartridge.empty_at - timedelta(days=days_before)).date()
    outlook = cartridge.forecasts.get(day)
    if outlook is None or outlook.predicted_empty is None:
        return None
    return float(abs((outlook.predicted_empty - cartridge.empty_at.date()).days))


def address_of(number: int) -> str:
    """The loopback address printer ``number`` is served on (250 a /24, from 127.0.40.1)."""
    third, fourth = divmod(number, 250)
    return f"127.0.{40 + third}.{fourth + 1}"


class Fleet:
    """Every simulated printer served by its own fake agent over UDP, read as the daemon reads.

    Each morning a printer's agent is handed that day's varbinds
    (:meth:`collectors.fake_agent.FakeAgent.set_varbinds`); the read then goes
    through the agent's whole read path: :func:`collectors.reader.read_device`
    with the full read plan on :class:`collectors.transport.SnmpTransport` (BER
    over real UDP, SNMPv2c), and :func:`mibs.decode.decode_read` inside it.
    """

    def __init__(self, printers: list[Printer], concurrency: int) -> None:
        self.printers = printers
        self.concurrency = concurrency
        self.agents: dict[str, FakeAgent] = {}
        self.requests = 0
        self.reads = 0

    async def __aenter__(self) -> Fleet:
        port = 0
        for printer in self.printers:
            agent = await start_fake_agent({}, address=printer.address, port=port)
            port = agent.port
            self.agents[printer.address] = agent
        self.settings = SnmpSettings(port=port, timeout=5.0, retries=2, read_deadline=120.0)
        self.credential = Credential(name="sim", version="v2c", community=SecretStr("public"))
        self.transport = SnmpTransport(self.settings)
        await self.transport.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.transport.__aexit__(None, None, None)
        for agent in self.agents.values():
            self.requests += agent.requests
            agent.close()

    async def read_all(
        self, values: dict[str, dict[Oid, Value]], morning: datetime
    ) -> dict[str, PrinterRead]:
        """Serve ``values`` (address -> varbinds) and read every printer once, at ``morning``."""
        for address, varbinds in values.items():
            self.agents[address].set_varbinds(varbinds)
        semaphore = asyncio.Semaphore(self.concurrency)
        reads: dict[str, PrinterRead] = {}

        async def one(address: str) -> None:
            async with semaphore:
                outcome = await read_device(
                    address,
                    [self.credential],
                    full_read_plan(),
                    self.settings.read_deadline,
                    sessions=self.transport,
                    settings=self.settings,
                    clock=lambda: morning,  # simulated time
                )
            if outcome.read is None:
                raise SystemExit(f"{address}: {outcome.kind} ({outcome.reason})")
            reads[address] = outcome.read

        async with asyncio.TaskGroup() as group:
            for address in values:
                group.create_task(one(address))
        self.reads += len(reads)
        return reads


async def simulate(
    printers: int, days: int, seed: int, lead: float, concurrency: int = 32
) -> Result:
    rng = random.Random(seed)
    fleet = [make_printer(rng, n) for n in range(printers)]
    result = Result()
    order_ids: dict[str, int] = defaultdict(int)
    with tempfile.TemporaryDirectory() as work, Inventory(Path(work) / "inventory.db") as inv:
        tracker = SupplyTracker(SupplyStore(inv))
        async with Fleet(fleet, concurrency) as served:
            for day in range(days):
                morning = START + timedelta(days=day, hours=8, minutes=rng.randint(0, 90))
                values = {}
                for printer in fleet:
                    replace_empties(rng, printer, morning)
                    values[printer.address] = varbinds(rng, printer)
                reads = await served.read_all(values, morning)
                for printer in fleet:
                    read = reads[printer.address]
                    _observe(tracker, printer, read, morning, result, order_ids)
                    print_day(rng, printer, morning.replace(hour=9, minute=0))
        result.snmp_reads, result.snmp_requests = served.reads, served.requests
    result.duplicate_orders = sum(n - 1 for n in order_ids.values())
    _score(fleet, days, lead, result)
    return result


def _observe(
    tracker: SupplyTracker,
    printer: Printer,
    read: PrinterRead,
    morning: datetime,
    result: Result,
    order_ids: dict[str, int],
) -> None:
    """The agent's supply tracking of one read; orders and replacements noted for scoring."""
    pending = tracker.observe(printer.device_id, read)
    tracker.sent(pending)
    for supply in printer.supplies:
        outlook = tracker.outlooks.get((printer.device_id, supply.index))
        supply.current.forecasts[morning.date()] = outlook
    for item in pending:
        if isinstance(item.event, SupplyOrderDue):
            order_ids[item.event.order_id] += 1
            supply = printer.supplies[item.event.supply_index - 1]
            supply.current.orders.append((morning, item.event))
            if supply.current.level_at_order is None:
                supply.current.level_at_order = supply.current.level
            outlook = supply.current.forecasts[morning.date()]
            level = item.event.level
            if (
                outlook is not None
                and outlook.history_days < POLICY.min_history_days
                and (level is None or level > POLICY.emergency_percent)
            ):
                result.learning_orders += 1
        elif isinstance(item.event, SupplyReplaced):
            result.replaced_events += 1


def _score(fleet: list[Printer], days: int, lead: float, result: Result) -> None:
    eligible_from = START + timedelta(days=POLICY.min_history_days + lead)
    for printer in fleet:
        for supply in printer.supplies:
            result.true_replacements += sum(1 for c in supply.cartridges if c.replaced)
            for cartridge in supply.cartridges:
                result.cartridges += 1
                if cartridge.empty_at is None or cartridge.empty_at > START + timedelta(days=days):
                    continue
                result.emptied += 1
                for before, errors in ((14, result.errors14), (7, result.errors7)):
                    error = _error_at(cartridge, before)
                    if error is not None:
                        errors.append(error)
                        if before == 14:
                            result.by_sensor[printer.sensor].append(error)
                    elif before == 14:
                        result.no_forecast14 += 1
                timing = result.timing_by_sensor[printer.sensor]
                eligible = cartridge.empty_at >= eligible_from
                result.after_learning += eligible
                by_age = [0, 0, 0]  # scored only for the cartridges after the minimum history
                if eligible:
                    timing = result.eligible_by_sensor[printer.sensor]
                    by_age = result.eligible_by_age[f"{printer.sensor}/{_age(cartridge)}"]
                if not cartridge.orders:
                    result.never_ordered += 1
                    timing[2] += 1
                    by_age[2] += 1
                    if eligible:
                        result.misses.append(_miss(printer, supply, cartridge, lead))
                    continue
                ahead = (cartridge.empty_at - cartridge.orders[0][0]) / timedelta(days=1)
                if eligible:
                    result.days_ahead.append(ahead)
                    if cartridge.level_at_order is not None:
                        result.level_at_order.append(cartridge.level_at_order)
                if ahead >= lead:
                    result.in_time += 1
                    result.after_learning_in_time += eligible
                    timing[0] += 1
                    by_age[0] += 1
                else:
                    result.late += 1
                    timing[1] += 1
                    by_age[1] += 1
                    if eligible:
                        result.misses.append(_miss(printer, supply, cartridge, lead))
    result.false_replacements = max(0, result.replaced_events - result.true_replacements)


def _age(cartridge: Cartridge) -> str:
    """Whether the cartridge was in use before the history began (its start unseen)."""
    return "in_use_before_history" if cartridge.number == 1 else "installed_in_history"


def _miss(
    printer: Printer, supply: SimSupply, cartridge: Cartridge, lead: float
) -> dict[str, object]:
    """What a cartridge ordered late or never looked like: for finding where misses come from."""
    assert cartridge.empty_at is not None
    empty = cartridge.empty_at
    before = cartridge.forecasts.get((empty - timedelta(days=lead + 1)).date())
    return {
        "device": printer.device_id,
        "sensor": printer.sensor,
        "vendor": printer.vendor,
        "colour": supply.colour,
        "age": _age(cartridge),
        "part": cartridge.part,
        "yield": cartridge.yield_pages,
        "coverage": round(cartridge.per_page * cartridge.yield_pages / 100, 3),
        "weekday_pages": round(printer.weekday_pages, 1),
        "installed_day": (cartridge.installed - START) / timedelta(days=1),
        "empty_day": round((empty - START) / timedelta(days=1), 2),
        "ordered_day": round((cartridge.orders[0][0] - START) / timedelta(days=1), 2)
        if cartridge.orders
        else None,
        "lead_plus_one_before": before.model_dump(mode="json") if before is not None else None,
    }


def _spread(values: list[float]) -> list[float] | None:
    if len(values) < 2:
        return None
    deciles = statistics.quantiles(values, n=10)
    return [round(statistics.median(values), 1), round(deciles[0], 1), round(deciles[-1], 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--printers", type=int, default=150)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lead", type=float, default=POLICY.lead_time_days)
    parser.add_argument("--concurrency", type=int, default=32, help="reads in flight")
    parser.add_argument(
        "--misses", type=Path, help="write every late or never ordered cartridge (JSON lines)"
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    started, cpu = time.perf_counter(), time.process_time()
    r = asyncio.run(simulate(args.printers, args.days, args.seed, args.lead, args.concurrency))
    emptied = max(1, r.emptied)
    summary = {
        "printers": args.printers,
        "days": args.days,
        "cartridges": r.cartridges,
        "cartridges_emptied": r.emptied,
        "median_abs_error_days_at_14": statistics.median(r.errors14) if r.errors14 else None,
        "p90_abs_error_days_at_14": statistics.quantiles(r.errors14, n=10)[-1]
        if len(r.errors14) > 1
        else None,
        "median_abs_error_days_at_7": statistics.median(r.errors7) if r.errors7 else None,
        "forecasts_at_14": len(r.errors14),
        "no_forecast_at_14": r.no_forecast14,
        "ordered_at_least_lead_time_before_empty": round(r.in_time / emptied, 4),
        "emptied_after_min_history_and_lead": r.after_learning,
        "ordered_in_time_after_min_history": round(
            r.after_learning_in_time / max(1, r.after_learning), 4
        ),
        "days_ordered_before_empty_median_p10_p90": _spread(r.days_ahead),
        "true_level_at_order_median_p10_p90": _spread(r.level_at_order),
        "ordered_late": r.late,
        "never_ordered": r.never_ordered,
        "duplicate_orders": r.duplicate_orders,
        "orders_while_learning_above_emergency": r.learning_orders,
        "replacement_events": r.replaced_events,
        "true_replacements": r.true_replacements,
        "median_error_at_14_by_sensor": {
            k: statistics.median(v) for k, v in sorted(r.by_sensor.items())
        },
        "in_time_late_never_by_sensor_in_learning": dict(sorted(r.timing_by_sensor.items())),
        "in_time_late_never_by_sensor_after": dict(sorted(r.eligible_by_sensor.items())),
        "in_time_late_never_by_sensor_and_age_after": dict(sorted(r.eligible_by_age.items())),
        "snmp_reads": r.snmp_reads,
        "snmp_requests_per_read": round(r.snmp_requests / max(1, r.snmp_reads), 2),
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(summary, indent=2))
    if args.misses is not None:
        args.misses.write_text("".join(json.dumps(miss) + "\n" for miss in r.misses))


if __name__ == "__main__":
    main()
