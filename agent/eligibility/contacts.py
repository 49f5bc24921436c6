"""Supplies delivery contacts: the model, and the all-or-nothing CSV import.

A contacts CSV has a header row with the columns ``name``, ``company``,
``address``, ``phone``, ``email`` and ``country_code`` (header names are
matched case-insensitively; ``Country Code`` works too), and optionally
``locations`` and ``devices``: ``;``-separated location patterns and device
ids/serials/addresses the contact covers. A contact that names neither covers
every device of the site.

Rows are numbered as a spreadsheet numbers them: the header is row 1. Every bad
row is reported (row, column, reason) and nothing is imported unless the whole
file is good.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.errors import ConfigError
from agent.validation import describe

MAX_CONTACTS = 300
REQUIRED_COLUMNS = ("name", "company", "address", "phone", "email", "country_code")
OPTIONAL_COLUMNS = ("locations", "devices")

# ISO 3166-1 alpha-2, all 249 officially assigned codes (source: ISO 3166 Maintenance Agency,
# as shipped in tzdata's iso3166.tab).
COUNTRY_CODES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905 - a block of codes is easier to check than 249 quoted strings
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s.][^@\s]*\.[^@\s.]+$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]+$")


class Contact(BaseModel):
    """Who receives supplies for the devices and locations listed (all devices if none)."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    company: str = Field(min_length=1, max_length=200)
    address: str = Field(min_length=1, max_length=500)
    phone: str = Field(min_length=1, max_length=40)
    email: str = Field(min_length=1, max_length=254)
    country_code: str = Field(min_length=1)
    locations: tuple[str, ...] = Field(
        default=(), description="Location patterns (shell-style, case-insensitive) covered."
    )
    devices: tuple[str, ...] = Field(
        default=(), description="Device ids, serials or addresses covered."
    )

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        digits = sum(char.isdigit() for char in value)
        if not _PHONE.match(value) or not 6 <= digits <= 15:
            raise ValueError("not a phone number (6 to 15 digits, optional leading +)")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise ValueError("not an email address")
        return value

    @field_validator("country_code")
    @classmethod
    def _country(cls, value: str) -> str:
        code = value.upper()
        if code not in COUNTRY_CODES:
            raise ValueError("not an ISO 3166-1 alpha-2 country code")
        return code

    @property
    def covers_everything(self) -> bool:
        return not self.locations and not self.devices


@dataclass(frozen=True)
class RowError:
    """One problem in a contacts file. ``row`` is None for whole-file problems."""

    row: int | None
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


class ContactImportError(ConfigError):
    """The contacts file was refused; ``errors`` lists every problem found."""

    def __init__(self, path: str, errors: list[RowError]) -> None:
        lines = "\n".join(f"  {error}" for error in errors)
        count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
        super().__init__(f"{path}: {count}, nothing imported:\n{lines}", path=path)
        self.errors = tuple(errors)


def column_name(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().casefold())


def decode_utf8(data: bytes) -> tuple[str | None, RowError | None]:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None, RowError(None, None, "file is UTF-16; save it as UTF-8")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start]
        reason = (
            f"not UTF-8 (byte 0x{byte:02X} at offset {exc.start}); save the file as UTF-8 "
            "(it looks like a Latin-1 or Windows-1252 export)"
        )
        return None, RowError(row, None, reason)


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


def parse_contacts(data: bytes, *, source: str = "contacts.csv") -> tuple[Contact, ...]:
    """Validate a whole contacts CSV; raises :class:`ContactImportError` listing every problem."""
    text, decode_error = decode_utf8(data)
    if text is None:
        assert decode_error is not None
        raise ContactImportError(source, [decode_error])
    errors: list[RowError] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        records = list(reader)
    except csv.Error as exc:
        raise ContactImportError(
            source, [RowError(reader.line_num, None, f"broken CSV quoting: {exc}")]
        ) from exc
    if not records or not any(cell.strip() for cell in records[0]):
        raise ContactImportError(source, [RowError(1, None, "no header row")])
    header = [column_name(cell) for cell in records[0]]
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    for name in REQUIRED_COLUMNS:
        if name not in header:
            errors.append(RowError(1, name, "required column is missing from the header"))
    for name in header:
        if name not in known:
            errors.append(RowError(1, name or "(empty)", "unknown column"))
    seen_columns: set[str] = set()
    for name in header:
        if name in seen_columns:
            errors.append(RowError(1, name, "column appears twice in the header"))
        seen_columns.add(name)
    if errors:
        raise ContactImportError(source, errors)

    rows = [
        (number, cells)
        for number, cells in enumerate(records[1:], start=2)
        if any(cell.strip() for cell in cells)
    ]
    if not rows:
        raise ContactImportError(source, [RowError(None, None, "no contacts after the header row")])
    if len(rows) > MAX_CONTACTS:
        errors.append(
            RowError(None, None, f"{len(rows)} contacts; at most {MAX_CONTACTS} per file")
        )
    contacts: list[tuple[int, Contact]] = []
    for number, cells in rows:
        if len(cells) > len(header):
            errors.append(
                RowError(
                    number,
                    None,
                    f"{len(cells)} fields but the header has {len(header)} "
                    "(a comma in an unquoted value?)",
                )
            )
            continue
        values: dict[str, object] = {}
        for name, cell in zip(header, cells, strict=False):
            values[name] = _split_list(cell) if name in OPTIONAL_COLUMNS else cell
        try:
            contacts.append((number, Contact.model_validate(values)))
        except ValidationError as exc:
            for error in exc.errors():
                column = str(error["loc"][0]) if error["loc"] else None
                errors.append(RowError(number, column, describe(error)))
    errors.extend(_duplicates(contacts))
    if errors:
        raise ContactImportError(source, errors)
    return tuple(contact for _, contact in contacts)


def _duplicates(contacts: list[tuple[int, Contact]]) -> list[RowError]:
    errors: list[RowError] = []
    by_email: dict[str, int] = {}
    by_person: dict[tuple[str, str], int] = {}
    for number, contact in contacts:
        email = contact.email.casefold()
        person = (contact.name.casefold(), contact.company.casefold())
        if email in by_email:
            errors.append(
                RowError(number, "email", f"duplicate of row {by_email[email]} ({contact.email})")
            )
        else:
            by_email[email] = number
        if person in by_person:
            errors.append(
                RowError(
                    number,
                    "name",
                    f"duplicate of row {by_person[person]} ({contact.name}, {contact.company})",
                )
            )
        else:
            by_person[person] = number
    return errors


def load_contacts(path: Path) -> tuple[Contact, ...]:
    """Read and validate a contacts CSV file (see :func:`parse_contacts`)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContactImportError(
            str(path), [RowError(None, None, exc.strerror or str(exc))]
        ) from exc
    return parse_contacts(data, source=str(path))
