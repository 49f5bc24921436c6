"""Supplies contacts CSV import: all or nothing, every bad row named."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.eligibility.contacts import (
    MAX_CONTACTS,
    ContactImportError,
    RowError,
    load_contacts,
    parse_contacts,
)
from agent.errors import ConfigError

DATA = Path(__file__).resolve().parent.parent / "data" / "eligibility"
HEADER = "name,company,address,phone,email,country_code\n"


def _errors(data: bytes) -> list[str]:
    with pytest.raises(ContactImportError) as caught:
        parse_contacts(data, source="c.csv")
    return [str(error) for error in caught.value.errors]


def test_quoted_commas_escaped_quotes_and_non_ascii_names() -> None:
    contacts = load_contacts(DATA / "contacts_quoted.csv")
    assert [c.name for c in contacts] == ["Zoë Ångström", "José Núñez", "渡辺 真理"]
    assert contacts[0].company == "Müller, Schmidt & Söhne GmbH"
    assert contacts[0].address == "Hauptstraße 5, 10115 Berlin"
    assert contacts[1].company == 'Impresiones "El Rápido" S.A.'
    # Country codes are normalised to upper case; lists split on ';'.
    assert contacts[0].country_code == "DE"
    assert contacts[0].locations == ("Berlin/*",)
    assert contacts[1].devices == ("sn:hp:CNB1234567", "192.0.2.44")
    assert contacts[2].covers_everything


def test_utf8_bom_and_crlf_are_accepted() -> None:
    (contact,) = load_contacts(DATA / "contacts_bom.csv")
    # Without BOM stripping the first header would be "\ufeffname" and be missing.
    assert contact.name == "Anna Berg"
    assert contact.address == "Storgatan 1, Stockholm"


def test_latin1_file_is_refused_naming_row_and_byte() -> None:
    with pytest.raises(ContactImportError) as caught:
        load_contacts(DATA / "contacts_latin1.csv")
    (error,) = caught.value.errors
    assert error.row == 2
    assert "not UTF-8 (byte 0xE7" in error.reason
    assert "save the file as UTF-8" in error.reason
    assert str(DATA / "contacts_latin1.csv") in str(caught.value)
    assert isinstance(caught.value, ConfigError)


def test_utf16_is_refused() -> None:
    data = (HEADER + "A,B,C,+46 8 123 456,a@b.se,SE\n").encode("utf-16")
    assert _errors(data) == ["file is UTF-16; save it as UTF-8"]


def _rows(count: int) -> bytes:
    lines = [HEADER.strip()]
    lines += [
        f"Person {n},Company {n},Street {n},+46 8 {100000 + n},p{n}@example.se,SE"
        for n in range(count)
    ]
    return ("\n".join(lines) + "\n").encode()


def test_300_contacts_are_the_limit() -> None:
    assert len(parse_contacts(_rows(MAX_CONTACTS))) == 300


def test_301_contacts_are_refused_whole() -> None:
    assert _errors(_rows(301)) == ["301 contacts; at most 300 per file"]


def test_missing_column_names_the_column() -> None:
    with pytest.raises(ContactImportError) as caught:
        load_contacts(DATA / "contacts_missing_column.csv")
    assert [str(e) for e in caught.value.errors] == [
        "row 1, column phone: required column is missing from the header"
    ]


def test_unknown_and_repeated_columns_are_refused() -> None:
    data = b"name,company,adress,phone,email,country_code,email\n"
    assert _errors(data) == [
        "row 1, column address: required column is missing from the header",
        "row 1, column adress: unknown column",
        "row 1, column email: column appears twice in the header",
    ]


def test_every_bad_row_is_reported_with_row_column_and_reason() -> None:
    errors = _errors((DATA / "contacts_bad_rows.csv").read_bytes())
    assert errors == [
        "row 3, column phone: not a phone number (6 to 15 digits, optional leading +) (got '12')",
        "row 3, column email: not an email address (got 'bob-at-example')",
        "row 3, column country_code: not an ISO 3166-1 alpha-2 country code (got 'UK')",
        "row 4, column name: must not be empty (got '')",
        "row 6: 7 fields but the header has 6 (a comma in an unquoted value?)",
        "row 5, column email: duplicate of row 2 (ANNA@example.se)",
        "row 5, column name: duplicate of row 2 (Anna Berg, Berg AB)",
    ]


def test_nothing_is_half_imported(tmp_path: Path) -> None:
    good = _rows(3).decode()
    bad = good + "Late,Late Co,Street,+46 8 999999,not-an-email,SE\n"
    path = tmp_path / "c.csv"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ContactImportError) as caught:
        load_contacts(path)
    assert caught.value.errors == (
        RowError(5, "email", "not an email address (got 'not-an-email')"),
    )
    assert "1 problem, nothing imported" in str(caught.value)


def test_short_row_reports_the_missing_columns() -> None:
    data = (HEADER + "Anna,Berg AB,Street 1,+46 8 123 456\n").encode()
    assert _errors(data) == [
        "row 2, column email: is required",
        "row 2, column country_code: is required",
    ]


def test_blank_lines_are_skipped_but_keep_row_numbers() -> None:
    data = (HEADER + "\nAnna,Berg AB,Street 1,+46 8 123 456,bad,SE\n").encode()
    assert _errors(data) == ["row 3, column email: not an email address (got 'bad')"]


def test_broken_quoting_is_reported() -> None:
    data = (HEADER + 'Anna,"Berg" AB,Street,+46 8 123 456,a@b.se,SE\n').encode()
    (error,) = _errors(data)
    assert error.startswith("row 2: broken CSV quoting")


def test_empty_file_has_no_header() -> None:
    assert _errors(b"") == ["row 1: no header row"]


def test_header_without_contacts_is_refused() -> None:
    assert _errors(HEADER.encode() + b"\n,,,,,\n") == ["no contacts after the header row"]


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ContactImportError, match=r"nope\.csv"):
        load_contacts(tmp_path / "nope.csv")


def test_header_names_are_matched_loosely() -> None:
    data = b"Name,Company,Address,Phone,E-mail,Country Code\nA,B,C,+46 8 123 456,a@b.se,se\n"
    # "E-mail" normalises to "e_mail", which is not "email": refused, named.
    assert "row 1, column e_mail: unknown column" in _errors(data)
    fixed = data.replace(b"E-mail", b"Email")
    assert parse_contacts(fixed)[0].country_code == "SE"


@given(
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=20,
        ),
        min_size=6,
        max_size=6,
    )
)
def test_any_single_row_is_imported_or_refused_cleanly(cells: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["name", "company", "address", "phone", "email", "country_code"])
    writer.writerow(cells)
    errors: tuple[RowError, ...] = ()
    contacts: tuple[object, ...] = ()
    try:
        contacts = parse_contacts(buffer.getvalue().encode("utf-8"))
    except ContactImportError as exc:
        errors = exc.errors
        assert errors, "a refusal always says why"
    blank = not any(cell.strip() for cell in cells)  # skipped, so the file has no contacts
    assert all(error.row is not None for error in errors) or blank
    assert len(contacts) + bool(errors) == 1  # a blank row leaves no contacts: refused
