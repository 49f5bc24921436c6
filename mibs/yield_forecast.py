"""Pages left in a cartridge from the pages printed with it and its yield (coarse sensors).

Pure, used by :func:`mibs.forecast.forecast` for supplies whose level sensor
says no percentage ("some remaining", Brother's 0-3 codes, Canon's three
stages). The cartridge's **yield** is estimated from, best first:

* ``learned``: the pages earlier cartridges of this supply printed from
  installation to their first "empty" reading (whole lives seen in the
  history). With the rated yields of those cartridges known, their achieved
  share of the rated yield is applied to the current cartridge's rated yield (a
  high-yield cartridge after standard ones); otherwise their median pages are
  the yield;
* ``rated``: the rated yield the device gives (a vendor MIB), else the rated
  yield of the part number the device names (:mod:`mibs.cartridge_yields`).

Rated yields are measured at ISO test coverage; an office prints more or less
toner per page, and a colour supply is used by only some of the pages the
device counts. The yield is therefore given with an interval, ``exp(+-Z sigma)``
around it: sigma is the spread of the achieved/rated (or achieved) log ratios once
:data:`MIN_SPREAD_SAMPLES` whole cartridges were seen, :data:`YIELD_SPREAD`
until then. The low end of the interval makes the earliest likely empty date
from which an order is placed (:data:`Z` = one-sided 95 %).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from typing import Literal

from mibs.cartridge_yields import rated_yield_of
from mibs.models import Frozen
from mibs.supply_history import Cartridge, SupplyPoint, pages_in_service

#: Sigma of log(achieved pages / rated yield) assumed until the supply shows its own.
YIELD_SPREAD = 0.2
#: Smallest sigma used, however alike the cartridges seen were.
MIN_SPREAD = 0.08
#: Whole cartridges needed before their own spread replaces :data:`YIELD_SPREAD`.
MIN_SPREAD_SAMPLES = 3
#: One-sided 95 % quantile of the normal distribution.
Z = 1.645

#: A cartridge of unknown age is ordered once the chance that it runs out within lead time
#: plus safety days reaches this (the in-time target's complement).
UNKNOWN_START_RISK = 0.05

YieldSource = Literal["learned", "rated"]


class YieldEstimate(Frozen):
    pages: float
    low: float
    high: float
    source: YieldSource
    rated: int | None
    samples: int


def rated_yield(points: Sequence[SupplyPoint]) -> tuple[int | None, str]:
    """(rated yield, where from) of the cartridge whose readings are ``points``."""
    for point in reversed(points):
        if point.rated_yield:
            return point.rated_yield, "device"
    for point in reversed(points):
        found = rated_yield_of(point.part_number)
        if found:
            return found, f"part {point.part_number}"
    return None, ""


def pages_to_empty(cartridge: Cartridge, following: Cartridge) -> int | None:
    """Pages a whole cartridge printed: to its first 'empty' reading, else to replacement."""
    if not cartridge.complete_start:
        return None
    first_empty = next((p for p in cartridge.points if p.state == "empty"), None)
    if first_empty is not None:
        if first_empty.pages_printed is not None:
            return first_empty.pages_printed
        start, end = cartridge.points[0].pages, first_empty.pages
        if start is not None and end is not None and end >= start:
            return end - start
    return pages_in_service(cartridge, following.points[0])


def estimate_yield(current: Cartridge, done: Sequence[Cartridge]) -> YieldEstimate | None:
    """The current cartridge's yield with its interval, or None with nothing to go on."""
    rated, _ = rated_yield(current.points)
    whole: list[tuple[int, int | None]] = []
    for old, new in itertools.pairwise([*done, current]):
        pages = pages_to_empty(old, new)
        if pages is not None and pages > 0:
            whole.append((pages, rated_yield(old.points)[0]))
    ratios = [pages / old_rated for pages, old_rated in whole if old_rated]
    source: YieldSource
    if rated and ratios:
        logs = [math.log(r) for r in ratios]
        expected, source = rated * statistics.median(ratios), "learned"
    elif whole:
        logs = [math.log(p) for p, _ in whole]
        expected, source = float(statistics.median(p for p, _ in whole)), "learned"
    elif rated:
        logs, expected, source = [], float(rated), "rated"
    else:
        return None
    sigma = (
        max(MIN_SPREAD, statistics.stdev(logs)) if len(logs) >= MIN_SPREAD_SAMPLES else YIELD_SPREAD
    )
    return YieldEstimate(
        pages=expected,
        low=expected * math.exp(-Z * sigma),
        high=expected * math.exp(Z * sigma),
        source=source,
        rated=rated,
        samples=len(logs),
    )


def pages_used(current: Cartridge) -> int | None:
    """Pages printed with the current cartridge: its own counter, else since it was seen new."""
    last = current.points[-1]
    if last.pages_printed is not None:
        return last.pages_printed
    if current.complete_start:
        return pages_in_service(current)
    return None


def unknown_start_risk(room: float, horizon: float) -> float:
    """The chance that a cartridge of unknown age runs out within ``horizon`` pages.

    A cartridge that was in use before the history began had, when the history
    began, anything from nothing to its whole yield left: taken as equally likely
    (nothing else is known of it). It has printed ``yield - room`` pages since and
    is not empty, so what is left is equally likely anywhere in ``[0, room]``: the
    chance it runs out within the next ``horizon`` pages is ``horizon / room``.
    """
    if room <= horizon:
        return 1.0
    return horizon / room
