"""pysnmp/pyasn1 values to the plain values of :mod:`mibs.values` (the v3 path).

Order matters: in pyasn1 ``Null`` (and so noSuchObject, noSuchInstance and
endOfMibView) is a subclass of ``OctetString``, so the SNMPv2 exceptions and
NULL are recognised before any octet string.
"""

from __future__ import annotations

from typing import Any

from pyasn1.type import univ
from pysnmp.proto import rfc1905

from collectors._pysnmp_types import RawValue, RawVarbind, Special
from mibs.values import Oid

_EXCEPTIONS: tuple[tuple[type[Any], Special], ...] = (
    (rfc1905.NoSuchObject, Special.NO_SUCH_OBJECT),
    (rfc1905.NoSuchInstance, Special.NO_SUCH_INSTANCE),
    (rfc1905.EndOfMibView, Special.END_OF_MIB_VIEW),
)


def to_raw(value: Any) -> RawValue:
    """One pysnmp value as ``int``, ``bytes``, OID tuple, or a :class:`Special` marker."""
    for kind, special in _EXCEPTIONS:
        if isinstance(value, kind):
            return special
    if isinstance(value, univ.Null):
        return Special.NULL
    if not getattr(value, "isValue", False):
        return Special.UNSUPPORTED
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.OctetString):
        return bytes(value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):
        return tuple(value.asTuple())
    return Special.UNSUPPORTED


def to_oid(name: Any) -> Oid | None:
    if isinstance(name, univ.ObjectIdentifier) and name.isValue:
        return tuple(name.asTuple())
    return None


def varbind_to_raw(name: Any, value: Any) -> RawVarbind:
    oid = to_oid(name)
    if oid is None:
        return (), Special.BAD_NAME
    return oid, to_raw(value)
