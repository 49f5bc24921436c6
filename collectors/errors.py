"""SNMP requests that failed: the device's fault (garbage in one field is a read ``Problem``)."""

from __future__ import annotations

from fleet_errors import RemoteError
from mibs.reasons import Reason

#: The ``RuntimeError`` texts of a closed transport: used after close, or closed under a request.
CLOSED = "SnmpTransport is closed; build a new one"
CLOSED_IN_FLIGHT = "SnmpTransport closed with a request in flight"


class SnmpError(RemoteError):
    """An SNMP request to ``address`` failed; ``reason`` is the word reads and logs use."""

    reason: Reason = "protocol_error"
    address: str


class SnmpTimeout(SnmpError):
    """No answer within timeout x retries."""

    reason: Reason = "timeout"


class SnmpPortClosed(SnmpTimeout):
    """The host answered ICMP port-unreachable: no SNMP agent listens there."""

    reason: Reason = "port_closed"


class SnmpAuthError(SnmpError):
    """SNMPv3 authentication, privacy or user failure (or, for v1/v2c, a silent wrong community)."""

    reason: Reason = "auth_failed"


class SnmpProtocolError(SnmpError):
    """The agent answered with an error-status or an unusable PDU (or the name does not resolve)."""
