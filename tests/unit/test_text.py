from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mibs.text import decode_text, decode_text_detail, format_mac, normalise_serial


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"HP LaserJet M130nw", "HP LaserJet M130nw"),
        # C string padded with NULs and stale memory (rule 5)
        (b"Black Cartridge\x00\x00\xffjunk", "Black Cartridge"),
        # trailing NUL in colorant names (Checkmk PR #369)
        (b"cyan\x00", "cyan"),
        # HP's leading control bytes
        (b"\x00\x01\x02HP Color LaserJet", "HP Color LaserJet"),
        # multi-line sysDescr collapses to one line
        (b"  KONICA MINOLTA\r\n bizhub C250i \t", "KONICA MINOLTA bizhub C250i"),
        # UTF-8 CJK survives (librenms PR #19379)
        ("ブラック トナー".encode(), "ブラック トナー"),
        # Latin-1 fallback when not UTF-8 (Polish/German DisplayString)
        ("Gelb Tonerkassette für".encode("latin-1"), "Gelb Tonerkassette für"),
        # UTF-16 with and without BOM
        ("\ufeffMagenta".encode("utf-16-le"), "Magenta"),
        ("Yellow".encode("utf-16-be"), "Yellow"),
        ("Toner".encode("utf-16-le"), "Toner"),
        # the Hex-STRING print form forwarded as ASCII (check_snmp_printer #26)
        (b"48 50 20 4C 61 73 65 72 4A 65 74", "HP LaserJet"),
        (b"42:6C:61:63:6B:00", "Black"),
        # unseparated hex digits are a serial, not hex
        (b"12345678", "12345678"),
        (b"CAFE0123", "CAFE0123"),
        # spaced hex that spells control bytes is left alone
        (b"01 02 03", "01 02 03"),
        # empty forms
        (b"", None),
        (b"\x00\x00\x00", None),
        (b"   \r\n", None),
        # non-bytes values
        (42, "42"),
        ((1, 3, 6, 1), "1.3.6.1"),
    ],
)
def test_decode_text_rules(raw: bytes | int | tuple[int, ...], expected: str | None) -> None:
    assert decode_text(raw) == expected


def test_huge_text_is_truncated_and_flagged() -> None:
    raw = b"A" * 65536
    detail = decode_text_detail(raw, max_len=100)
    assert detail.text == "A" * 100
    assert detail.truncated
    assert not decode_text_detail(b"short", max_len=100).truncated


def test_hex_decoding_is_flagged() -> None:
    assert decode_text_detail(b"41 42 43").from_hex
    assert not decode_text_detail(b"ABC").from_hex


@given(st.binary(max_size=4096), st.integers(min_value=0, max_value=2048))
def test_decode_text_never_raises_on_bytes(raw: bytes, max_len: int) -> None:
    text = decode_text(raw, max_len=max_len)
    if text is not None:
        assert 0 < len(text) <= max_len
        assert text == text.strip()
        assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in text)


@given(
    st.one_of(
        st.integers(),
        st.tuples(st.integers(min_value=0, max_value=2**32)),
        st.lists(st.integers(min_value=0, max_value=2**32)).map(tuple),
        st.text().map(lambda s: s.encode("utf-8", "surrogatepass")),
    )
)
def test_decode_text_never_raises_on_any_value(raw: bytes | int | tuple[int, ...]) -> None:
    decode_text(raw)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  cnb1k23456 ", "CNB1K23456"),
        ("VNB3R12345", "VNB3R12345"),
        (None, None),
        ("", None),
        ("XXXXXXXXXX", None),
        ("xxxx-xxxx", None),
        ("0000000000", None),
        ("Unknown", None),
        ("N/A", None),
        ("none", None),
        ("serial number", None),
        ("123456789", None),
        ("0123456789", None),
        ("E74123A5N123456", "E74123A5N123456"),
    ],
)
def test_normalise_serial(text: str | None, expected: str | None) -> None:
    assert normalise_serial(text) == expected


@given(st.one_of(st.none(), st.text()))
def test_normalise_serial_never_raises(text: str | None) -> None:
    result = normalise_serial(text)
    if result is not None:
        assert result == result.strip().upper()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (bytes.fromhex("001BA90BA752"), "00:1b:a9:0b:a7:52"),
        (b"00-1B-A9-0B-A7-52", "00:1b:a9:0b:a7:52"),
        (b"00:1b:a9:0b:a7:52", "00:1b:a9:0b:a7:52"),
        (b"\x00" * 6, None),
        (b"\xff" * 6, None),
        (b"\x00\x1b\xa9", None),
        (b"", None),
        (7, None),
    ],
)
def test_format_mac(raw: bytes | int, expected: str | None) -> None:
    assert format_mac(raw) == expected


@given(st.binary(max_size=64))
def test_format_mac_never_raises(raw: bytes) -> None:
    mac = format_mac(raw)
    assert mac is None or len(mac) == 17
