"""Manual meter reads: meters a person read off a device that does not report them.

``fleet-agent meter add`` enters one read, ``fleet-agent meter import FILE.csv``
many. Each becomes a :class:`mibs.models.PrinterRead` with ``source: manual``
and ``manual: {entered_by, reason, entered_at}``, signed and queued in the
agent's outbox like any read (``purpose: meters``), so the backend bills it like
any other (marked manual in the export).

The CSV has a header row with the columns ``device`` (device id or serial),
``read_at`` (ISO 8601 with a UTC offset, e.g. ``2026-11-30T17:00Z``),
``entered_by``, ``reason``, optionally ``vendor``, ``model``, ``location`` (for
devices the inventory does not know), and one column per device meter
(``total``, ``mono``, ``color``, ...: the read schema's counter names; an empty
cell means not read). Validated like the contacts import: UTF-8, every bad row
reported with its row number (the header is row 1), column and reason, and
nothing is queued unless the whole file is good.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.eligibility.contacts import RowError, column_name, decode_utf8
from agent.errors import ConfigError
from agent.inventory import Inventory, InventoryDevice
from agent.validation import describe
from mibs.identity import stable_device_id
from mibs.metering import METER_NAMES
from mibs.models import Counters, Identity, ManualEntry, PrinterRead

REQUIRED_COLUMNS = ("device", "read_at", "entered_by", "reason")
OPTIONAL_COLUMNS = ("vendor", "model", "location")
MAX_ROWS = 10_000
#: A read may be dated at most this far ahead of the agent's clock (clock skew).
FUTURE_SLACK = timedelta(minutes=5)


class MeterImportError(ConfigError):
    """A manual meter file was refused; ``errors`` lists every problem found."""

    def __init__(self, path: str, errors: list[RowError]) -> None:
        lines = "\n".join(f"  {error}" for error in errors)
        count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
        super().__init__(f"{path}: {count}, nothing queued:\n{lines}", path=path)
        self.errors = tuple(errors)


class ManualRead(BaseModel):
    """One manual read as entered: validated, not yet tied to the inventory."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    device: str = Field(min_length=1, description="Device id or serial.")
    read_at: datetime
    entered_by: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=500)
    vendor: str | None = None
    model: str | None = None
    location: str | None = None
    meters: dict[str, int] = Field(description="Device meter name -> value read.")

    @field_validator("read_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give the time with its UTC offset, e.g. 2026-11-30T17:00Z")
        if value > datetime.now(UTC) + FUTURE_SLACK:
            raise ValueError("is in the future")
        return value.astimezone(UTC)

    @field_validator("meters")
    @classmethod
    def _meters(cls, value: dict[str, int]) -> dict[str, int]:
        if not value:
            raise ValueError("give at least one meter value")
        unknown = sorted(set(value) - set(METER_NAMES))
        if unknown:
            raise ValueError(f"unknown meter {', '.join(unknown)}")
        negative = sorted(name for name, count in value.items() if count < 0)
        if negative:
            raise ValueError(f"{', '.join(negative)}: a meter is never negative")
        return value


def _find(inventory: Inventory | None, key: str) -> InventoryDevice | None:
    if inventory is None:
        return None
    wanted = key.casefold()
    for device in inventory.devices():
        if device.device_id.casefold() == wanted or (device.serial or "").casefold() == wanted:
            return device
    return None


def build_read(
    entry: ManualRead, inventory: Inventory | None, *, now: datetime
) -> tuple[str, PrinterRead]:
    """(device id, the ``source: manual`` read) of ``entry``, with what the inventory knows."""
    known = _find(inventory, entry.device)
    if known is not None:
        identity = Identity(
            vendor=entry.vendor or known.vendor,
            model=entry.model or known.model,
            serial=known.serial,
            mac=known.mac,
            location=entry.location,
            is_printer=True,
        )
        device_id, address = known.device_id, known.address or "manual"
    else:
        serial = None if ":" in entry.device else entry.device
        identity = Identity(
            vendor=entry.vendor,
            model=entry.model,
            serial=serial,
            location=entry.location,
            is_printer=True,
        )
        device_id = entry.device if serial is None else stable_device_id(identity) or entry.device
        address = "manual"
    read = PrinterRead(
        address=address,
        collected_at=entry.read_at,
        identity=identity,
        counters=Counters.model_validate(entry.meters),
        counter_sources=dict.fromkeys(entry.meters, "manual"),
        source="manual",
        manual=ManualEntry(entered_by=entry.entered_by, reason=entry.reason, entered_at=now),
    )
    return device_id, read


def parse_meter_csv(data: bytes, *, source: str) -> tuple[ManualRead, ...]:
    """Validate a whole manual meter CSV; raises :class:`MeterImportError` listing every problem."""
    text, decode_error = decode_utf8(data)
    if text is None:
        assert decode_error is not None
        raise MeterImportError(source, [decode_error])
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        records = list(reader)
    except csv.Error as exc:
        broken = RowError(reader.line_num, None, f"broken CSV quoting: {exc}")
        raise MeterImportError(source, [broken]) from exc
    if not records or not any(cell.strip() for cell in records[0]):
        raise MeterImportError(source, [RowError(1, None, "no header row")])
    header = [column_name(cell) for cell in records[0]]
    errors = [
        RowError(1, name, "required column is missing from the header")
        for name in REQUIRED_COLUMNS
        if name not in header
    ]
    known = {*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, *METER_NAMES}
    errors += [
        RowError(1, name or "(empty)", "unknown column") for name in header if name not in known
    ]
    errors += [
        RowError(1, name, "column appears twice in the header")
        for index, name in enumerate(header)
        if name in header[:index]
    ]
    if not any(name in METER_NAMES for name in header):
        errors.append(RowError(1, None, f"no meter column (one of {', '.join(METER_NAMES)})"))
    if errors:
        raise MeterImportError(source, errors)
    rows = [
        (n, cells) for n, cells in enumerate(records[1:], start=2) if any(c.strip() for c in cells)
    ]
    if not rows:
        raise MeterImportError(source, [RowError(None, None, "no reads after the header row")])
    if len(rows) > MAX_ROWS:
        raise MeterImportError(
            source, [RowError(None, None, f"{len(rows)} reads; at most {MAX_ROWS}")]
        )
    entries: list[ManualRead] = []
    seen: dict[tuple[str, datetime], int] = {}
    for number, cells in rows:
        if len(cells) > len(header):
            reason = f"{len(cells)} fields but the header has {len(header)}"
            errors.append(RowError(number, None, reason))
            continue
        values: dict[str, object] = {}
        meters: dict[str, str] = {}
        for name, cell in zip(header, cells, strict=False):
            if name in METER_NAMES:
                if cell.strip():
                    meters[name] = cell.strip()
            elif cell.strip() or name in REQUIRED_COLUMNS:
                values[name] = cell
        row_errors = [
            RowError(number, name, "not a whole number")
            for name, v in meters.items()
            if not v.isdigit() and not (v.startswith("-") and v[1:].isdigit())
        ]
        if row_errors:
            errors += row_errors
            continue
        try:
            entry = ManualRead.model_validate(
                {**values, "meters": {k: int(v) for k, v in meters.items()}}
            )
        except ValidationError as exc:
            for error in exc.errors():
                column = str(error["loc"][0]) if error["loc"] else None
                errors.append(RowError(number, column, describe(error)))
            continue
        key = (entry.device.casefold(), entry.read_at)
        if key in seen:
            errors.append(
                RowError(number, "device", f"duplicate of row {seen[key]} (same device and time)")
            )
            continue
        seen[key] = number
        entries.append(entry)
    if errors:
        raise MeterImportError(source, errors)
    return tuple(entries)


def load_meter_csv(path: Path) -> tuple[ManualRead, ...]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MeterImportError(str(path), [RowError(None, None, exc.strerror or str(exc))]) from exc
    return parse_meter_csv(data, source=str(path))
