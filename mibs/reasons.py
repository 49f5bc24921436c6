"""The one vocabulary of reasons: why a field, a read or a device came out the way it did.

Every :class:`mibs.models.Problem` carries one of these words, and so do the
outcome of a device read (``collectors.reader``), the log events and the
metrics labels: a reason is spelled once, here. The read schema
(``docs/schema/read.schema.json``) lists them; consumers treat a word they do
not know as "this field is unreliable".
"""

from __future__ import annotations

from typing import Literal, get_args

#: Why a field is missing or unreliable, or why a device read ended as it did.
Reason = Literal[
    # -- the transport: the device fell silent, refused us, or the read ran out of time
    "timeout",  # no answer after every retry (device silent, or fell silent midway)
    "deadline",  # the per-device read deadline ran out
    "port_closed",  # ICMP port unreachable: no SNMP agent listens
    "auth_failed",  # SNMPv3 user, authentication or privacy refused
    "protocol_error",  # the agent answered, but nothing usable (error-status without index)
    "unresolvable",  # the host name does not resolve
    # -- the column walk
    "not_increasing",  # an answer went backwards: the walk of that column stops
    "too_many_rows",  # a column longer than any printer table
    "too_big",  # tooBig even for one varbind
    "bad_index",  # a varbind name that is not an OID
    "no_progress",  # an answer that moved no column
    "short_response",  # a GETNEXT answer with fewer varbinds than asked for
    "unexpected_exception",  # noSuchObject/noSuchInstance in a GETNEXT/GETBULK answer
    # -- an error-status naming a varbind (RFC 3416 section 3)
    "error_status:tooBig",
    "error_status:noSuchName",
    "error_status:badValue",
    "error_status:readOnly",
    "error_status:genErr",
    "error_status:noAccess",
    "error_status:wrongType",
    "error_status:wrongLength",
    "error_status:wrongEncoding",
    "error_status:wrongValue",
    "error_status:noCreation",
    "error_status:inconsistentValue",
    "error_status:resourceUnavailable",
    "error_status:commitFailed",
    "error_status:undoFailed",
    "error_status:authorizationError",
    "error_status:notWritable",
    "error_status:inconsistentName",
    # -- the decoders
    "missing",  # a column or value the device does not have
    "wrong_type",  # a value of the wrong SMI type
    "out_of_range",  # a value outside what the MIB allows
    "unknown_enum",  # an enumeration value the MIB does not define
    "truncated",  # text longer than the field allows
    "placeholder",  # e.g. a serial "XXXXXXXX"
    "source_disagreement",  # two sources of one meter disagree
    "decoder_error",  # our decoder failed on this input (our bug; logged loudly)
]

REASONS: tuple[Reason, ...] = get_args(Reason)


def error_status_reason(name: str) -> Reason:
    """The reason for an error-status by its RFC 3416 name (unknown numbers: protocol_error)."""
    reason = f"error_status:{name}"
    for known in REASONS:
        if known == reason:
            return known
    return "protocol_error"
