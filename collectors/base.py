"""The session seam (GET and column walks of one device) and RecordedSession, its offline side."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mibs.reasons import Reason
from mibs.values import Oid, Value


@dataclass
class WalkResult:
    """Rows per requested column prefix, in OID order; a failed column keeps its rows so far."""

    rows: dict[Oid, list[tuple[Oid, Value]]] = field(default_factory=dict)
    failed: dict[Oid, Reason] = field(default_factory=dict)


class SnmpSession(Protocol):
    """Requests to one device with one credential; :class:`~collectors.errors.SnmpError` if silent.

    ``get`` returns only the OIDs the device had; ``walk`` reads columns side by side.
    """

    address: str

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]: ...

    async def walk(self, columns: Sequence[Oid]) -> WalkResult: ...


class RecordedSession:
    """Answers as the device did when it was walked: an offline read, same reader and decoders."""

    def __init__(self, address: str, varbinds: Mapping[Oid, Value]) -> None:
        self.address = address
        self._values = dict(varbinds)
        self._oids = sorted(self._values)

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
        return {oid: self._values[oid] for oid in oids if oid in self._values}

    async def walk(self, columns: Sequence[Oid]) -> WalkResult:
        rows: dict[Oid, list[tuple[Oid, Value]]] = {}
        for prefix in dict.fromkeys(columns):
            start = bisect.bisect_right(self._oids, prefix)
            end = bisect.bisect_left(self._oids, (*prefix[:-1], prefix[-1] + 1))  # next sibling
            rows[prefix] = [(oid, self._values[oid]) for oid in self._oids[start:end]]
        return WalkResult(rows=rows)
