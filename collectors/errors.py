"""Errors raised by the SNMP side.

Root of this package's tree is :class:`SnmpError`. A device that answers
garbage is *not* an exception here: decoders record it as a ``Problem`` on the
read. These exceptions mean the request itself failed.
"""

from __future__ import annotations


class SnmpError(Exception):
    """An SNMP request to ``address`` failed."""

    def __init__(self, message: str, *, address: str, oid: str | None = None) -> None:
        super().__init__(message)
        self.address = address
        self.oid = oid


class SnmpTimeout(SnmpError):
    """No answer within timeout x retries."""


class SnmpAuthError(SnmpError):
    """SNMPv3 authentication, privacy or user failure (or, for v1/v2c, a silent wrong community)."""


class SnmpProtocolError(SnmpError):
    """The agent answered with an error-status, or an unusable PDU."""
