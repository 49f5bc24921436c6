"""SNMP values as the decoders see them: plain Python, no pysnmp types.

The transport (``collectors``) converts each varbind it receives into one of
these before handing it over:

* ``int``   for INTEGER, Integer32, Unsigned32, Counter32, Gauge32, TimeTicks, Counter64
* ``bytes`` for OCTET STRING, Opaque and IpAddress (the raw octets)
* ``Oid``   (a tuple of ints) for OBJECT IDENTIFIER values

noSuchObject, noSuchInstance, endOfMibView and NULL never reach a decoder: the
transport leaves such OIDs out of the mapping, so "absent" means "the device
did not give it".
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping

Oid = tuple[int, ...]
Value = int | bytes | tuple[int, ...]
Varbinds = Mapping[Oid, Value]


def parse_oid(text: str) -> Oid:
    """``"1.3.6.1.2.1.1.2.0"`` (a leading dot allowed) to ``(1, 3, 6, 1, 2, 1, 1, 2, 0)``."""
    stripped = text.strip().lstrip(".")
    if not stripped:
        raise ValueError("empty OID")
    try:
        parts = tuple(int(part) for part in stripped.split("."))
    except ValueError as exc:
        raise ValueError(f"not a dotted OID: {text!r}") from exc
    if any(part < 0 for part in parts):
        raise ValueError(f"negative arc in OID: {text!r}")
    return parts


def format_oid(oid: Oid) -> str:
    """``(1, 3, 6)`` to ``"1.3.6"``."""
    return ".".join(str(part) for part in oid)


def is_under(oid: Oid, prefix: Oid) -> bool:
    """True when ``oid`` lies strictly inside the subtree rooted at ``prefix``."""
    return len(oid) > len(prefix) and oid[: len(prefix)] == prefix


class IndexedVarbinds(Mapping[Oid, Value]):
    """Varbinds sorted once, so that each :func:`column` lookup is a bisection.

    A full read holds a few hundred varbinds and the decoders look up a few
    dozen columns; scanning everything per column was most of the decode time.
    """

    def __init__(self, varbinds: Varbinds) -> None:
        self._values = dict(varbinds)
        self._keys = sorted(self._values)

    def __getitem__(self, oid: Oid) -> Value:
        return self._values[oid]

    def __iter__(self) -> Iterator[Oid]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def column(self, prefix: Oid) -> dict[Oid, Value]:
        start = bisect.bisect_right(self._keys, prefix)
        end = bisect.bisect_left(self._keys, (*prefix[:-1], prefix[-1] + 1)) if prefix else start
        size = len(prefix)
        return {oid[size:]: self._values[oid] for oid in self._keys[start:end]}


def column(varbinds: Varbinds, prefix: Oid) -> dict[Oid, Value]:
    """The rows of one table column: index suffix -> value, in OID order."""
    if isinstance(varbinds, IndexedVarbinds):
        return varbinds.column(prefix)
    rows = {oid[len(prefix) :]: value for oid, value in varbinds.items() if is_under(oid, prefix)}
    return dict(sorted(rows.items()))
