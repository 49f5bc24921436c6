"""The session seam: GET and side-by-side column walks of one device with one credential.

Everything above it (the reader, discovery) speaks plain OIDs and values from
:mod:`mibs.values`. :class:`collectors.walk.Session` implements it over a
request seam with two implementations (v1/v2c UDP, pysnmp v3; see
:mod:`collectors.transport`); unit tests implement it with a fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mibs.reasons import Reason
from mibs.values import Oid, Value


@dataclass
class WalkResult:
    """Rows per requested column prefix, in OID order, and the columns that failed.

    A column that failed midway keeps the rows read before the failure; its
    entry in ``failed`` says why (``timeout``, ``not_increasing``, ...).
    """

    rows: dict[Oid, list[tuple[Oid, Value]]] = field(default_factory=dict)
    failed: dict[Oid, Reason] = field(default_factory=dict)


class SnmpSession(Protocol):
    """Requests to one device with one credential.

    ``get`` returns only the OIDs the device had (noSuch*/endOfMibView are left
    out). ``walk`` reads several columns side by side (GETBULK over all of
    them at once where the version allows, GETNEXT otherwise). Both raise
    :class:`collectors.errors.SnmpError` subclasses when the device does not
    answer at all.
    """

    address: str

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]: ...

    async def walk(self, columns: Sequence[Oid]) -> WalkResult: ...
