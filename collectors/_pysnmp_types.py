"""Internal value types shared by the SNMP wire codec, the pysnmp v3 adapter and the walker.

A varbind as the transport sees it before it is handed over: the plain values of
:mod:`mibs.values`, or one :class:`Special` marker for what never reaches a decoder
(NULL, the three SNMPv2 exceptions, a value or name we could not decode).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from mibs.values import Oid, Value


class Special(enum.Enum):
    NULL = "null"
    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB_VIEW = "endOfMibView"
    UNSUPPORTED = "unsupported"  # a value type outside SMIv2 (left out like NULL)
    BAD_NAME = "badName"  # the varbind name was not an OBJECT IDENTIFIER


RawValue = Value | Special
RawVarbind = tuple[Oid, RawValue]


class PduKind(enum.Enum):
    GET = "get"
    NEXT = "getnext"
    BULK = "getbulk"


# RFC 3416 section 3 error-status values, by number.
ERROR_STATUS_NAMES = {
    0: "noError",
    1: "tooBig",
    2: "noSuchName",
    3: "badValue",
    4: "readOnly",
    5: "genErr",
    6: "noAccess",
    7: "wrongType",
    8: "wrongLength",
    9: "wrongEncoding",
    10: "wrongValue",
    11: "noCreation",
    12: "inconsistentValue",
    13: "resourceUnavailable",
    14: "commitFailed",
    15: "undoFailed",
    16: "authorizationError",
    17: "notWritable",
    18: "inconsistentName",
}
TOO_BIG = 1
NO_SUCH_NAME = 2


def error_status_name(status: int) -> str:
    return ERROR_STATUS_NAMES.get(status, f"errorStatus{status}")


@dataclass(frozen=True, slots=True)
class Response:
    """A decoded response PDU: error fields and varbinds, values already plain."""

    error_status: int = 0
    error_index: int = 0
    varbinds: list[RawVarbind] = field(default_factory=list)
    request_id: int = 0
