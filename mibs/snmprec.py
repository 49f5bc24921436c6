"""Parse snmpsim ``.snmprec`` recordings (``OID|TAG|VALUE`` a line) into varbinds.

Used by the tests, the benchmarks and the demo responder to feed decoders and
simulators with real device data. Tags are BER type numbers; a trailing ``x``
means the value is hex. Lines with a variation module (``TAG:module``) keep
their static value where one is given and are otherwise skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleet_errors import LocalError
from mibs.values import Oid, Value, parse_oid

# BER tag -> kind, from RFC 2578 (SMIv2) application types.
_INTEGER_TAGS = {2, 65, 66, 67, 70}  # INTEGER, Counter32, Gauge32, TimeTicks, Counter64
_OCTET_TAGS = {4, 64, 68}  # OCTET STRING, IpAddress, Opaque
_OID_TAG = 6
_NULL_TAG = 5


@dataclass(frozen=True)
class Record:
    oid: Oid
    tag: int
    value: Value | None  # None for NULL


class SnmprecError(LocalError):
    """A line of a .snmprec recording is malformed; ``line`` is its number."""

    line: int

    def __init__(self, message: str, *, line: int) -> None:
        super().__init__(f"line {line}: {message}", line=line)


def _parse_value(tag: int, hexed: bool, raw: str, line: int) -> Value | None:
    if tag == _NULL_TAG:
        return None
    if hexed:
        try:
            data = bytes.fromhex(raw)
        except ValueError as exc:
            raise SnmprecError(f"bad hex value {raw!r}", line=line) from exc
    else:
        data = raw.encode("utf-8", "surrogateescape")
    if tag in _OCTET_TAGS:
        if tag == 64 and not hexed and raw.count(".") == 3:
            try:
                return bytes(int(part) for part in raw.split("."))
            except ValueError as exc:
                raise SnmprecError(f"bad IpAddress {raw!r}", line=line) from exc
        return data
    if tag in _INTEGER_TAGS:
        text = data.decode("ascii", "replace").strip()
        try:
            return int(text)
        except ValueError as exc:
            raise SnmprecError(f"tag {tag} needs an integer, got {raw!r}", line=line) from exc
    if tag == _OID_TAG:
        try:
            return parse_oid(data.decode("ascii", "replace"))
        except ValueError as exc:
            raise SnmprecError(str(exc), line=line) from exc
    raise SnmprecError(f"unknown tag {tag}", line=line)


def parse_snmprec(text: str) -> list[Record]:
    """All records of a recording, in file order."""
    records: list[Record] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("|", 2)
        if len(parts) != 3:
            raise SnmprecError(f"expected OID|TAG|VALUE, got {line[:80]!r}", line=number)
        oid_text, tag_text, raw = parts
        tag_text, _, module = tag_text.partition(":")
        hexed = tag_text.endswith("x")
        try:
            tag = int(tag_text.rstrip("x"))
            oid = parse_oid(oid_text)
        except ValueError as exc:
            raise SnmprecError(str(exc), line=number) from exc
        if module:
            continue  # dynamic value from a variation module: nothing static to replay
        records.append(Record(oid=oid, tag=tag, value=_parse_value(tag, hexed, raw, number)))
    return records


def load_varbinds(text: str) -> dict[Oid, Value]:
    """The recording as the decoders see it: NULLs left out, sorted by OID."""
    found = {r.oid: r.value for r in parse_snmprec(text) if r.value is not None}
    return dict(sorted(found.items()))
