"""Page counters: Printer-MIB marker counts, the PWG Imaging System Counter MIB, vendor meters.

Precedence, per counter, first source that answers wins:

1. Printer-MIB (RFC 3805) ``prtMarkerTable`` ``1.3.6.1.2.1.43.10.2.1``:
   ``total`` = prtMarkerLifeCount (.4), ``power_on`` = prtMarkerPowerOnCount
   (.5), ``unit`` = prtMarkerCounterUnit (.3). Rows are indexed
   ``hrDeviceIndex.prtMarkerIndex``. RFC 3805 keeps one row per marker and
   every marker counts the same pages in its own unit, so the counts are
   never summed (a two-marker device would be counted twice); the marker used
   is ``prtMarkerDefaultIndex`` (``43.5.1.1.8``) when the device names one,
   else the lowest marker index. Devices with several markers are rare and
   their default marker is the one the RFC says to report.
2. PWG 5106.1 Imaging System Counter MIB ``1.3.6.1.4.1.2699.1.3``: the key
   table maps a key to a service (systemTotals 3, copy 4, faxIn 7, print 11,
   scan 12); impressions ``icImpressionTable`` (.1.8) and scanned images
   ``icImageTable`` (.1.7) are read for ``workTotals(3)`` and ``lifetime(3)``,
   two-sided impressions ``icTwoSidedTable`` (.1.9) for ``duplex``. Where a
   service has several keys, the lowest key index is used.
3. Vendor meters (:mod:`mibs.vendor_counters`), only for the device's vendor.

Decisions:

* When a lower-precedence ``total`` disagrees with prtMarkerLifeCount, the
  RFC value is kept and a ``source_disagreement`` Problem names the other OID
  and both values (glpi-agent #1155: a Xerox vendor total 4 pages low). The
  comparison is made only when prtMarkerCounterUnit is impressions or not
  given: PWG and vendor meters count impressions, and a count in sheets or
  metres legitimately differs.
* ``mono``/``color`` (and ``print``/``copy``) are derived from the four
  print/copy x mono/colour splits only when those four add up exactly to
  ``total``; otherwise another category (fax prints, reports, two-colour)
  exists and the sum would be a made-up number. The source of a derived or
  summed counter is its OIDs joined with ``+``.
* A value that is not an integer (``wrong_type``), is negative or above
  ``MAX_COUNTER`` (``out_of_range``) is dropped with a Problem naming the
  OID and the raw value; a lower-precedence source may then fill the field.
* 0 is a real reading (a new device): it is kept. A device without a marker
  row has no prtMarkerLifeCount at all, which is "missing".
* Only ``total`` is required: when no source gives it, a ``missing`` Problem
  is recorded. Per-kind counters a device does not have are simply ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mibs.cartridges import brother_records
from mibs.models import CounterName, Counters, Problem
from mibs.values import Oid, Value, Varbinds, column, format_oid
from mibs.vendor_counters import VENDOR_RECORDS, VENDOR_SCALARS, VENDOR_TABLES

MAX_COUNTER = 10**10  # above any real lifetime meter; Counter64 garbage beyond this

PRT_MARKER_DEFAULT_INDEX: Oid = (1, 3, 6, 1, 2, 1, 43, 5, 1, 1, 8)
PRT_MARKER_COUNTER_UNIT: Oid = (1, 3, 6, 1, 2, 1, 43, 10, 2, 1, 3)
PRT_MARKER_LIFE_COUNT: Oid = (1, 3, 6, 1, 2, 1, 43, 10, 2, 1, 4)
PRT_MARKER_POWER_ON_COUNT: Oid = (1, 3, 6, 1, 2, 1, 43, 10, 2, 1, 5)

_IC: Oid = (1, 3, 6, 1, 4, 1, 2699, 1, 3, 1)
IC_KEY_SERVICE_TYPE: Oid = _IC + (2, 1, 1, 2)
IC_IMAGE_TOTAL: Oid = _IC + (7, 1, 1, 4)
IC_IMPRESSION_TOTAL: Oid = _IC + (8, 1, 1, 4)
IC_IMPRESSION_MONO: Oid = _IC + (8, 1, 1, 5)
IC_IMPRESSION_FULL_COLOR: Oid = _IC + (8, 1, 1, 7)
IC_TWO_SIDED_TOTAL: Oid = _IC + (9, 1, 1, 4)
IC_SHEET_TOTAL: Oid = _IC + (10, 1, 1, 4)
_WORK_TOTALS = 3  # IcWorkTypeTC workTotals(3)
_LIFETIME = 3  # IcPersistenceTC lifetime(3)

# RFC 3805 PrtMarkerCounterUnitTC, names in snake_case.
COUNTER_UNITS: Mapping[int, str] = {
    3: "ten_thousandths_of_inches",
    4: "micrometers",
    5: "characters",
    6: "lines",
    7: "impressions",
    8: "sheets",
    9: "dot_row",
    11: "hours",
    16: "feet",
    17: "meters",
}

# IcServiceTypeTC -> (column, counter) pairs read at workTotals/lifetime. Every
# column counts impressions except icSheet (sheets) and icImage (scanned images);
# each counter is filled from one column of one unit, never from a mix.
_SYSTEM_TOTALS, _COPY, _FAX_IN, _PRINT, _SCAN = 3, 4, 7, 11, 12
_PWG_METERS: Mapping[int, tuple[tuple[Oid, CounterName], ...]] = {
    _SYSTEM_TOTALS: (
        (IC_IMPRESSION_TOTAL, "total"),
        (IC_IMPRESSION_TOTAL, "impressions"),
        (IC_IMPRESSION_MONO, "mono"),
        (IC_IMPRESSION_FULL_COLOR, "color"),
        (IC_SHEET_TOTAL, "sheets"),
        (IC_TWO_SIDED_TOTAL, "duplex"),
        (IC_IMAGE_TOTAL, "scan_images"),
    ),
    _PRINT: (
        (IC_IMPRESSION_TOTAL, "print"),
        (IC_IMPRESSION_MONO, "print_mono"),
        (IC_IMPRESSION_FULL_COLOR, "print_color"),
    ),
    _COPY: (
        (IC_IMPRESSION_TOTAL, "copy"),
        (IC_IMPRESSION_MONO, "copy_mono"),
        (IC_IMPRESSION_FULL_COLOR, "copy_color"),
    ),
    _FAX_IN: ((IC_IMPRESSION_TOTAL, "fax"), (IC_IMPRESSION_MONO, "fax_mono")),
    _SCAN: ((IC_IMAGE_TOTAL, "scan"),),
}

#: The standard counter columns to walk, with the read field each one feeds
#: (:mod:`mibs.plan` turns them into plan items).
COUNTER_COLUMNS: tuple[tuple[str, Oid], ...] = (
    ("counters.total", PRT_MARKER_DEFAULT_INDEX),
    ("counters.unit", PRT_MARKER_COUNTER_UNIT),
    ("counters.total", PRT_MARKER_LIFE_COUNT),
    ("counters.power_on", PRT_MARKER_POWER_ON_COUNT),
    ("counters", IC_KEY_SERVICE_TYPE),
    ("counters", IC_IMPRESSION_TOTAL),
    ("counters", IC_IMPRESSION_MONO),
    ("counters", IC_IMPRESSION_FULL_COLOR),
    ("counters", IC_IMAGE_TOTAL),
    ("counters.duplex", IC_TWO_SIDED_TOTAL),
    ("counters.sheets", IC_SHEET_TOTAL),
)


@dataclass(frozen=True)
class CounterResult:
    counters: Counters
    sources: dict[str, str]
    problems: list[Problem]


@dataclass
class _Reading:
    value: int
    source: str


@dataclass
class _Collected:
    """Candidates per counter, in precedence order, and the problems seen."""

    candidates: dict[str, list[_Reading]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, name: str, value: int, source: str) -> None:
        self.candidates.setdefault(name, []).append(_Reading(value, source))

    def first(self, name: str) -> _Reading | None:
        found = self.candidates.get(name)
        return found[0] if found else None


def counter_value(value: Value, oid: Oid, name: str) -> int | Problem:
    """A usable counter, or the Problem that says why this raw value is not one."""
    field_name = f"counters.{name}"
    if isinstance(value, bool) or not isinstance(value, int):
        return Problem(
            field=field_name,
            oid=format_oid(oid),
            reason="wrong_type",
            detail=f"expected an integer counter, got {type(value).__name__} {value!r:.80}",
        )
    if value < 0 or value > MAX_COUNTER:
        return Problem(
            field=field_name,
            oid=format_oid(oid),
            reason="out_of_range",
            detail=f"counter value {value} outside 0..{MAX_COUNTER}",
        )
    return value


def printer_row_index(
    varbinds: Varbinds, prefixes: Iterable[Oid], hr_device_index: int | None
) -> int | None:
    """The hrDeviceIndex whose rows to read in Printer-MIB tables under ``prefixes``.

    The given index when any row has it; otherwise (index unknown, or the
    device indexes its Printer-MIB rows differently from hrDeviceTable) the
    lowest first index present; ``None`` when the columns are empty.
    """
    firsts: set[int] = set()
    for prefix in prefixes:
        firsts.update(suffix[0] for suffix in column(varbinds, prefix) if suffix)
    if hr_device_index is not None and hr_device_index in firsts:
        return hr_device_index
    return min(firsts) if firsts else None


def _printer_mib(varbinds: Varbinds, hr_device_index: int | None, out: _Collected) -> str | None:
    """Collect total/power_on from the default marker; return the unit name."""
    columns = (PRT_MARKER_LIFE_COUNT, PRT_MARKER_POWER_ON_COUNT, PRT_MARKER_COUNTER_UNIT)
    device = printer_row_index(varbinds, columns, hr_device_index)
    if device is None:
        return None
    markers = sorted(
        {
            suffix[1]
            for prefix in columns
            for suffix in column(varbinds, prefix)
            if len(suffix) == 2 and suffix[0] == device
        }
    )
    if not markers:
        return None
    default = varbinds.get(PRT_MARKER_DEFAULT_INDEX + (device,))
    marker = default if isinstance(default, int) and default in markers else markers[0]
    raw_unit = varbinds.get(PRT_MARKER_COUNTER_UNIT + (device, marker))
    unit = None
    if isinstance(raw_unit, int) and not isinstance(raw_unit, bool):
        unit = COUNTER_UNITS.get(raw_unit, "other" if raw_unit == 1 else "unknown")
    life = PRT_MARKER_LIFE_COUNT + (device, marker)
    if life in varbinds:
        _offer(out, "total", varbinds[life], life)
        if unit in ("impressions", "sheets"):  # the same count, named by its declared unit
            _offer(out, "impressions" if unit == "impressions" else "sheets", varbinds[life], life)
    power_on = PRT_MARKER_POWER_ON_COUNT + (device, marker)
    if power_on in varbinds:
        _offer(out, "power_on", varbinds[power_on], power_on)
    return unit


def _offer(out: _Collected, name: str, raw: Value, oid: Oid) -> None:
    checked = counter_value(raw, oid, name)
    if isinstance(checked, Problem):
        out.problems.append(checked)
    else:
        out.add(name, checked, format_oid(oid))


def _pwg(varbinds: Varbinds, out: _Collected) -> None:
    keys: dict[int, int] = {}
    for suffix, service in column(varbinds, IC_KEY_SERVICE_TYPE).items():
        if len(suffix) == 1 and isinstance(service, int) and not isinstance(service, bool):
            keys.setdefault(service, suffix[0])  # column() is in OID order: lowest key first
    for service, meters in _PWG_METERS.items():
        if service not in keys:
            continue
        for prefix, name in meters:
            oid = prefix + (keys[service], _WORK_TOTALS, _LIFETIME)
            if oid in varbinds:
                _offer(out, name, varbinds[oid], oid)


def _vendor(varbinds: Varbinds, enterprise: int | None, out: _Collected) -> None:
    if enterprise is None:
        return
    for entry in VENDOR_SCALARS.get(enterprise, ()):
        present = [oid for oid in entry.oids if oid in varbinds]
        if entry.how == "first":
            if present:
                _offer(out, entry.counter, varbinds[present[0]], present[0])
            continue
        if len(present) != len(entry.oids):
            continue  # a sum with a part missing would be a made-up number
        parts = [counter_value(varbinds[oid], oid, entry.counter) for oid in present]
        bad = [part for part in parts if isinstance(part, Problem)]
        if bad:
            out.problems.extend(bad)
            continue
        total = sum(part for part in parts if isinstance(part, int))
        _offer_sum(out, entry.counter, total, present)
    for records in VENDOR_RECORDS.get(enterprise, ()):
        raw = varbinds.get(records.oid)
        if raw is None:
            continue
        found = brother_records(raw)
        if not found:
            out.problems.append(
                Problem(
                    field="counters",
                    oid=format_oid(records.oid),
                    reason="wrong_type",
                    detail=f"no 7-byte counter records in {raw!r:.80}",
                )
            )
            continue
        for code, counter in records.codes.items():
            if code in found:
                _offer(out, counter, found[code], records.oid)
    for table in VENDOR_TABLES.get(enterprise, ()):
        values = column(varbinds, table.value_column)
        sums: dict[CounterName, tuple[int, list[Oid]]] = {}
        for suffix, kind in column(varbinds, table.type_column).items():
            name = table.types.get(kind) if isinstance(kind, int) else None
            if name is None or suffix not in values:
                continue
            oid = table.value_column + suffix
            checked = counter_value(values[suffix], oid, name)
            if isinstance(checked, Problem):
                out.problems.append(checked)
                continue
            running, oids = sums.get(name, (0, []))
            sums[name] = (running + checked, [*oids, oid])
        for name, (total, oids) in sums.items():
            _offer_sum(out, name, total, oids)


def _offer_sum(out: _Collected, name: str, total: int, oids: list[Oid]) -> None:
    if total > MAX_COUNTER:
        out.problems.append(
            Problem(
                field=f"counters.{name}",
                oid=format_oid(oids[0]),
                reason="out_of_range",
                detail=f"sum {total} of {len(oids)} counters outside 0..{MAX_COUNTER}",
            )
        )
        return
    out.add(name, total, "+".join(format_oid(oid) for oid in oids))


def _derive(chosen: dict[str, _Reading]) -> None:
    """Fill mono/color/print/copy from the four splits when they sum exactly to total."""
    parts = [chosen.get(n) for n in ("print_mono", "copy_mono", "print_color", "copy_color")]
    total = chosen.get("total")
    if total is None or any(part is None for part in parts):
        return
    pm, cm, pc, cc = (part for part in parts if part is not None)
    if pm.value + cm.value + pc.value + cc.value != total.value:
        return
    for name, first, second in (
        ("mono", pm, cm),
        ("color", pc, cc),
        ("print", pm, pc),
        ("copy", cm, cc),
    ):
        if name not in chosen:
            chosen[name] = _Reading(first.value + second.value, f"{first.source}+{second.source}")


def _total_unit(total: _Reading | None, marker_unit: str | None) -> str | None:
    """The unit of the chosen total: the marker's, PWG's impressions, or unknown for vendors."""
    if total is None:
        return None
    if total.source.startswith(format_oid(PRT_MARKER_LIFE_COUNT)):
        return marker_unit
    if total.source.startswith(format_oid(IC_IMPRESSION_TOTAL)):
        return "impressions"
    return None


def decode_counters(
    varbinds: Varbinds, *, enterprise: int | None, hr_device_index: int | None
) -> CounterResult:
    """Lifetime meters with the OID each came from, and what was wrong."""
    collected = _Collected()
    unit = _printer_mib(varbinds, hr_device_index, collected)
    _pwg(varbinds, collected)
    _vendor(varbinds, enterprise, collected)

    chosen = {name: readings[0] for name, readings in collected.candidates.items()}
    problems = collected.problems
    total = chosen.get("total")
    if total is None:
        problems.append(
            Problem(
                field="counters.total",
                oid=format_oid(PRT_MARKER_LIFE_COUNT),
                reason="missing",
                detail="no prtMarkerLifeCount, no PWG systemTotals impressions, no vendor total",
            )
        )
    elif total.source.startswith(format_oid(PRT_MARKER_LIFE_COUNT)) and unit in (
        None,
        "impressions",
    ):
        for other in collected.candidates["total"][1:]:
            if other.value != total.value:
                problems.append(
                    Problem(
                        field="counters.total",
                        oid=other.source,
                        reason="source_disagreement",
                        detail=(
                            f"{other.value} at {other.source} differs from prtMarkerLifeCount "
                            f"{total.value} at {total.source}; kept prtMarkerLifeCount (RFC 3805)"
                        ),
                    )
                )
    _derive(chosen)
    values: dict[str, object] = {name: reading.value for name, reading in chosen.items()}
    values["unit"] = _total_unit(total, unit)
    return CounterResult(
        counters=Counters.model_validate(values),
        sources={name: reading.source for name, reading in sorted(chosen.items())},
        problems=problems,
    )
