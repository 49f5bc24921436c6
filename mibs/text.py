"""Turning SNMP OCTET STRINGs (and worse) into clean display text.

Printers fill text objects (``DisplayString``, ``SnmpAdminString``, the
Printer-MIB's localized ``OCTET STRING`` columns) with whatever their firmware
had: UTF-8, Latin-1, UTF-16, C strings padded with NULs and garbage, HP's
leading control bytes, multi-line ``sysDescr``. The rules here are applied in
this order, and none of them ever raises:

1. Values that are not bytes: an ``int`` becomes its decimal text, an OID
   (tuple) its dotted form. Some devices answer a text column with a number.
2. Input is capped at ``max_len * 4 + 16`` bytes before any work (a 64 KiB
   string costs no more than a short one).
3. UTF-16: a byte-order mark (``FF FE`` / ``FE FF``) selects UTF-16; so does an
   even-length value of at least 4 bytes where every other byte is NUL and
   the others are printable ASCII (the BOM-less UTF-16 some Windows-based
   controllers send). No other guessing of UTF-16.
4. Otherwise leading NUL and control bytes are dropped (HP JetDirect
   prefixes some strings with them), and the value is a C string: it ends
   at the first NUL (firmware pads fixed buffers with NULs followed by
   stale memory).
5. Decoding: strict UTF-8 first (RFC 3411 SnmpAdminString and the
   Printer-MIB's ``prtGeneralCurrentLocalization`` are UTF-8 on modern
   firmware, librenms PR #19379), else Latin-1 (ISO 8859-1 is the
   ``DisplayString`` charset of older devices and decodes every byte).
6. Hex text: a value made only of two-digit hex groups separated by single
   spaces or colons (at least two groups, the net-snmp ``Hex-STRING`` print
   form, which some middleware and firmware forward as ASCII;
   check_snmp_printer #26, printercounters #81) is decoded when the bytes it
   spells are themselves printable UTF-8 or Latin-1 text containing a letter
   or digit. Unseparated hex digits are never decoded: ``"12345678"`` is far
   more likely a serial number than hex.
7. Every run of control characters and whitespace (C0, DEL, C1, line breaks)
   collapses to one space; the result is stripped and cut to ``max_len``
   characters. Empty text is ``None``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_HEX_GROUPS = re.compile(r"[0-9A-Fa-f]{2}(?:[ :][0-9A-Fa-f]{2})+")
_SPACE_RUN = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")
_LEADING_JUNK = bytes(range(0x20)) + b"\x7f "


class DecodedText(NamedTuple):
    """The outcome of :func:`decode_text_detail`."""

    text: str | None
    truncated: bool = False
    from_hex: bool = False


def _is_printable_ascii(byte: int) -> bool:
    return 0x20 <= byte < 0x7F


def _looks_utf16(data: bytes) -> str | None:
    """The UTF-16 codec to use, or None (rule 3)."""
    if data[:2] == b"\xff\xfe":
        return "utf-16-le"
    if data[:2] == b"\xfe\xff":
        return "utf-16-be"
    if len(data) < 4 or len(data) % 2:
        return None
    evens, odds = data[0::2], data[1::2]
    if all(b == 0 for b in odds) and all(_is_printable_ascii(b) for b in evens):
        return "utf-16-le"
    if all(b == 0 for b in evens) and all(_is_printable_ascii(b) for b in odds):
        return "utf-16-be"
    return None


def _decode_bytes(data: bytes) -> str:
    codec = _looks_utf16(data)
    if codec is not None:
        body = data[2:] if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data
        return body.decode(codec, "replace").lstrip("\x00").split("\x00", 1)[0]
    data = data.lstrip(_LEADING_JUNK).split(b"\x00", 1)[0]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _clean(text: str) -> str:
    return _SPACE_RUN.sub(" ", text).strip()


def _from_hex(text: str) -> str | None:
    """Rule 6: the text a spaced/colon-separated hex dump spells, when it is text."""
    if not _HEX_GROUPS.fullmatch(text):
        return None
    data = bytes.fromhex(text.replace(":", " "))
    decoded = _decode_bytes(data)
    printable = all(ch.isprintable() or ch in "\t\r\n" for ch in decoded)
    if not printable or not any(ch.isalnum() for ch in decoded):
        return None
    return _clean(decoded)


def decode_text_detail(raw: bytes | int | tuple[int, ...], *, max_len: int = 1024) -> DecodedText:
    """Like :func:`decode_text`, also saying whether the text was cut or hex-decoded."""
    limit = max(max_len, 0)
    if isinstance(raw, bool | int):
        text = str(int(raw))
        return DecodedText(text[:limit] or None, truncated=len(text) > limit)
    if isinstance(raw, tuple):
        text = ".".join(str(part) for part in raw)
        return DecodedText(text[:limit] or None, truncated=len(text) > limit)
    if not isinstance(raw, bytes | bytearray | memoryview):
        return DecodedText(None)
    data = bytes(raw[: limit * 4 + 16])
    capped = len(raw) > len(data)
    text = _clean(_decode_bytes(data))
    from_hex = False
    hexed = _from_hex(text)
    if hexed is not None:
        text, from_hex = hexed, True
    truncated = capped or len(text) > limit
    text = text[:limit].rstrip()
    return DecodedText(text or None, truncated=truncated, from_hex=from_hex)


def decode_text(raw: bytes | int | tuple[int, ...], *, max_len: int = 1024) -> str | None:
    """Clean display text from an SNMP value, ``None`` when nothing is left.

    See the module docstring for the rules. Never raises.
    """
    return decode_text_detail(raw, max_len=max_len).text


# Placeholders firmware puts where it has no serial number (GLPI rejects
# all-"X"; fusioninventory/sysobject.ids #70 and glpi-agent #935 show the
# empty and dummy forms). Compared after upper-casing and separator removal.
_SERIAL_PLACEHOLDERS = frozenset(
    {
        "UNKNOWN",
        "NONE",
        "NULL",
        "NA",
        "NOTAVAILABLE",
        "NOTSET",
        "NOSERIAL",
        "SERIAL",
        "SERIALNUMBER",
        "SN",
        "DEFAULT",
        "INVALID",
        "0123456789",
        "123456789",
        "1234567890",
        "TBD",
    }
)
_SERIAL_SEPARATORS = re.compile(r"[\s\-_.:/#*?]+")


def normalise_serial(text: str | None) -> str | None:
    """A serial number fit to identify a device, or ``None``.

    Decisions: surrounding whitespace is trimmed, inner whitespace runs become
    one space, and the result is upper-cased. Vendors print serials in upper
    case on the label; some firmware answers the same serial in lower case
    from one OID and upper case from another, and a device id must not change
    with that. Placeholders are ``None``: empty text, a value made of one
    repeated character (``XXXXXXXX``, ``00000000``, ``????``), and the words
    in ``_SERIAL_PLACEHOLDERS`` (``unknown``, ``N/A``, ``none``, ...), all
    compared with separators removed.
    """
    if text is None:
        return None
    cleaned = _clean(text).upper()
    compact = _SERIAL_SEPARATORS.sub("", cleaned)
    if not compact or len(set(compact)) == 1 or compact in _SERIAL_PLACEHOLDERS:
        return None
    return cleaned


_MAC_TEXT = re.compile(r"[0-9A-Fa-f]{2}(?:([:\- ])[0-9A-Fa-f]{2})(?:\1[0-9A-Fa-f]{2}){4}")


def format_mac(raw: bytes | int | tuple[int, ...]) -> str | None:
    """``b"\\x00\\x1b\\xa9\\x0b\\xa7\\x52"`` to ``"00:1b:a9:0b:a7:52"``.

    ``ifPhysAddress`` is a ``PhysAddress`` OCTET STRING (RFC 2863); an
    Ethernet address has 6 octets. A 17-character text form
    (``00-1B-A9-0B-A7-52``) is accepted too, as some agents answer that.
    ``None`` for anything else, for the all-zero address (no hardware
    address, RFC 2863 ``ifPhysAddress`` for interfaces without one) and for
    the broadcast address.
    """
    if not isinstance(raw, bytes):
        return None
    data = raw
    if len(raw) == 17 and _MAC_TEXT.fullmatch(raw.decode("latin-1")):
        data = bytes.fromhex(re.sub(r"[:\- ]", "", raw.decode("latin-1")))
    if len(data) != 6 or data in (b"\x00" * 6, b"\xff" * 6):
        return None
    return ":".join(f"{byte:02x}" for byte in data)
