"""A session over varbinds saved from a device: ``scan --file WALK`` reads with no network.

:class:`RecordedSession` implements :class:`collectors.base.SnmpSession` over a
mapping of OID to value (a parsed ``snmpwalk -On`` output, :mod:`mibs.snmpwalk`,
or an snmpsim ``.snmprec`` recording, :mod:`mibs.snmprec`), so that an offline
read goes through the same reader, plan and decoders as a live one
(:func:`collectors.reader.read_session`). A GET answers the OIDs the walk holds;
a column walk returns every saved row under the column, in OID order.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence

from collectors.base import WalkResult
from mibs.values import Oid, Value, is_under


class RecordedSession:
    """Answers GETs and walks from saved varbinds, as the device answered when it was walked."""

    def __init__(self, address: str, varbinds: Mapping[Oid, Value]) -> None:
        self.address = address
        self._values = dict(varbinds)
        self._oids = sorted(self._values)

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
        return {oid: self._values[oid] for oid in oids if oid in self._values}

    async def walk(self, columns: Sequence[Oid]) -> WalkResult:
        rows: dict[Oid, list[tuple[Oid, Value]]] = {}
        for prefix in dict.fromkeys(columns):
            found: list[tuple[Oid, Value]] = []
            position = bisect.bisect_right(self._oids, prefix)
            while position < len(self._oids) and is_under(self._oids[position], prefix):
                oid = self._oids[position]
                found.append((oid, self._values[oid]))
                position += 1
            rows[prefix] = found
        return WalkResult(rows=rows)
