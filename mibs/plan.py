"""What to ask a printer for: named OIDs to GET and table columns to walk.

The collector executes a plan generically (GET for ``scalars``, a side-by-side
column walk for ``columns``) and hands every varbind it got to
:func:`mibs.decode.decode_read`. Names are the dotted read fields they feed
(``identity.serial``, ``counters.total``, ``supplies``) so that a transport
failure on one OID becomes a ``Problem`` on the right field.
"""

from __future__ import annotations

from dataclasses import dataclass

from mibs.values import Oid


@dataclass(frozen=True)
class PlanItem:
    name: str
    oid: Oid


@dataclass(frozen=True)
class PollPlan:
    scalars: tuple[PlanItem, ...] = ()
    columns: tuple[PlanItem, ...] = ()

    def __add__(self, other: PollPlan) -> PollPlan:
        return PollPlan(self.scalars + other.scalars, self.columns + other.columns)
