"""Parse net-snmp ``snmpwalk -On`` output (what a support engineer asks a customer for).

    snmpwalk -v2c -c public -On 192.0.2.7 .1 > printer.walk

One varbind a line, ``.OID = TYPE: VALUE``, as net-snmp prints it (checked
against Debian's snmpwalk 5.9):

* ``STRING: "..."``: printable text in double quotes, ``"`` and ``\\`` escaped
  with a backslash; a string with a newline goes on over the following lines.
  Text with other bytes is printed as ``Hex-STRING: 4A 6F ...`` (16 bytes a
  line); an empty string is ``= ""``.
* ``INTEGER``, ``Counter32``, ``Gauge32``, ``Counter64``, ``UInteger32``:
  a number, or with MIBs loaded ``idle(3)`` and a trailing unit word.
* ``Timeticks: (12345) 0:02:03.45``; ``OID: .1.3.6...``; ``IpAddress: 10.1.2.3``;
  ``OPAQUE``/``Network Address``/``BITS`` as hex bytes.
* ``NULL``, ``No Such Object ...``, ``No Such Instance ...`` and the closing
  ``No more variables left in this MIB View ...`` carry no value and are left
  out, as the decoders never see them either.

OIDs must be numeric (``-On``); ``iso.3.6.1...`` (net-snmp without MIBs and
without ``-On``) is accepted too. Anything else is a :class:`WalkError`
naming the line. Display hints applied by loaded MIBs (a MAC address shown as
``STRING: 0:1b:...``) cannot be undone: ask for ``-On`` without MIBs (Debian's
default) or with ``-Ox`` (every string as hex).
"""

from __future__ import annotations

import re

from fleet_errors import LocalError
from mibs.values import Oid, Value, parse_oid

_LINE = re.compile(r"^(?P<oid>\.?(?:iso|\d+)(?:\.\d+)*)\s+=\s+(?P<rest>.*)$")
_WRONG_TYPE = re.compile(r"^Wrong Type \(should be [^)]*\):\s*")
_NO_VALUE = ("NULL", "No Such Object", "No Such Instance", "No more variables left")
_INTEGER_TYPES = {"INTEGER", "Counter32", "Gauge32", "Counter64", "UInteger32", "Unsigned32"}
_HEX_TYPES = {"Hex-STRING", "OPAQUE", "Opaque", "Network Address", "BITS"}
_ENUM = re.compile(r"^[A-Za-z][\w-]*\((-?\d+)\)")
_NUMBER = re.compile(r"^-?\d+")
_HEX_BYTE = re.compile(r"^[0-9A-Fa-f]{2}$")


class WalkError(LocalError):
    """A line of a walk is not net-snmp ``-On`` output; ``line`` is its number."""

    line: int

    def __init__(self, message: str, *, line: int) -> None:
        super().__init__(f"line {line}: {message}", line=line)


def _integer(text: str, line: int) -> int:
    text = text.strip()
    found = _ENUM.match(text) or _NUMBER.match(text)
    if found is None:
        raise WalkError(f"expected a number, got {text[:40]!r}", line=line)
    return int(found.group(1) if found.re is _ENUM else found.group(0))


def _hex(text: str, line: int, *, named_bits: bool = False) -> bytes:
    words = text.split()
    data: list[str] = []
    for word in words:
        if not _HEX_BYTE.match(word):
            break
        data.append(word)
    # BITS appends the set bits' names ("lowToner(2)"): only the leading hex bytes count.
    if len(data) != len(words) and not (named_bits and data):
        raise WalkError(f"expected hex bytes, got {text[:40]!r}", line=line)
    return bytes.fromhex("".join(data))


def _quoted(body: str, line: int) -> tuple[bytes, str] | None:
    """The unescaped string opening ``body`` and what follows it; None when unterminated."""
    if not body.startswith('"'):
        raise WalkError(f"expected a quoted string, got {body[:40]!r}", line=line)
    out: list[str] = []
    position = 1
    while position < len(body):
        char = body[position]
        if char == "\\" and position + 1 < len(body):
            out.append(body[position + 1])
            position += 2
            continue
        if char == '"':
            return "".join(out).encode("utf-8"), body[position + 1 :]
        out.append(char)
        position += 1
    return None


def _value(kind: str, text: str, line: int) -> Value:
    if kind == "STRING":
        if not text.startswith('"'):
            return text.encode("utf-8")  # -Oq style or a hinted string without quotes
        found = _quoted(text, line)
        if found is None:
            raise WalkError("string without its closing quote", line=line)
        return found[0]
    if kind in _INTEGER_TYPES:
        return _integer(text, line)
    if kind == "Timeticks":
        ticks = re.match(r"^\((\d+)\)", text.strip())
        return int(ticks.group(1)) if ticks else _integer(text, line)
    if kind == "OID":
        return _oid(text.strip(), line)
    if kind == "IpAddress":
        parts = text.strip().split(".")
        if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
            raise WalkError(f"IpAddress {text.strip()!r} is not a dotted quad", line=line)
        return bytes(int(p) for p in parts)
    if kind in _HEX_TYPES:
        return _hex(text, line, named_bits=kind == "BITS")
    raise WalkError(f"unknown value type {kind!r}", line=line)


def _oid(text: str, line: int) -> Oid:
    text = text.lstrip(".")
    if text.startswith("iso"):
        text = "1" + text[3:]
    try:
        return parse_oid(text)
    except ValueError as exc:
        raise WalkError(f"OID {text!r} is not numeric (walk with -On)", line=line) from exc


def _complete(rest: str) -> bool:
    """Does a ``STRING: "...`` value end on this line (its closing quote seen)?"""
    kind, _, text = rest.partition(": ")
    if _WRONG_TYPE.match(rest):
        kind, _, text = _WRONG_TYPE.sub("", rest).partition(": ")
    if kind != "STRING" or not text.startswith('"'):
        return True
    return _quoted(text, 0) is not None


def _entries(text: str) -> list[tuple[int, str, str]]:
    """(line number, OID text, value text) per varbind, continuation lines joined."""
    entries: list[tuple[int, str, str]] = []
    open_string = False
    for number, raw in enumerate(text.splitlines(), start=1):
        if open_string:
            start, oid_text, rest = entries[-1]
            entries[-1] = (start, oid_text, rest + "\n" + raw)
            open_string = not _complete(entries[-1][2])
            continue
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if match is None:
            if entries and re.fullmatch(r"(?:[0-9A-Fa-f]{2} )*[0-9A-Fa-f]{2} ?", raw):
                start, oid_text, rest = entries[-1]  # Hex-STRING goes on, 16 bytes a line
                entries[-1] = (start, oid_text, rest + " " + raw)
                continue
            if "::" in raw.split(" = ", 1)[0]:
                raise WalkError(
                    f"OID {raw.split(' = ', 1)[0]!r} is a MIB name: walk with -On (numeric OIDs)",
                    line=number,
                )
            raise WalkError(f"not a '.OID = TYPE: VALUE' line: {raw[:60]!r}", line=number)
        entries.append((number, match.group("oid"), match.group("rest")))
        open_string = not _complete(match.group("rest"))
    if open_string:
        raise WalkError("string without its closing quote", line=entries[-1][0])
    return entries


def parse_walk(text: str) -> dict[Oid, Value]:
    """The varbinds of a walk, sorted by OID, as the decoders see them."""
    found: dict[Oid, Value] = {}
    for number, oid_text, raw in _entries(text):
        oid = _oid(oid_text, number)
        rest = _WRONG_TYPE.sub("", raw)
        if rest.startswith(_NO_VALUE):
            continue
        if rest == '""':
            found[oid] = b""
            continue
        kind, colon, value_text = rest.partition(":")
        if not colon:
            raise WalkError(f"expected 'TYPE: VALUE', got {rest[:40]!r}", line=number)
        found[oid] = _value(kind.strip(), value_text.removeprefix(" "), number)
    return dict(sorted(found.items()))


def looks_like_walk(text: str) -> bool:
    """Does the first line that says anything look like ``.OID = ...``?"""
    for raw in text.splitlines():
        if raw.strip() and not raw.startswith("#"):
            return _LINE.match(raw) is not None
    return False
