"""Every SNMP request PDU and its outcome, as ``scan -v`` shows them (never a community or key)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collectors.errors import SnmpError
from collectors.snmp_message import PduKind, RawVarbind, Response, Special, error_status_name
from collectors.walk import Requester
from mibs.values import Oid, format_oid


@dataclass(frozen=True)
class Exchange:
    """One request PDU and either its answer or why there was none."""

    address: str
    version: str
    kind: PduKind
    oids: tuple[Oid, ...]
    max_repetitions: int
    elapsed: float  # seconds, retries included
    response: Response | None = None
    failure: str | None = None  # timeout, port closed, refused, cut short by the deadline


Trace = Callable[[Exchange], None]


class TracedRequester:
    """A requester that reports each exchange to ``trace`` (after it ends)."""

    def __init__(self, inner: Requester, *, address: str, version: str, trace: Trace) -> None:
        self._inner = inner
        self._address = address
        self._version = version
        self._trace = trace

    async def request(
        self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> Response:
        started = time.monotonic()

        def report(response: Response | None = None, failure: str | None = None) -> None:
            elapsed = time.monotonic() - started
            head = (self._address, self._version, kind, tuple(oids), max_repetitions, elapsed)
            self._trace(Exchange(*head, response=response, failure=failure))

        try:
            response = await self._inner.request(kind, oids, max_repetitions)
        except SnmpError as exc:
            detail = str(exc).removeprefix(f"{exc.address}: ")  # the line names it already
            report(failure=f"{exc.reason.replace('_', ' ')}: {detail}")
            raise
        except asyncio.CancelledError:
            report(failure="cut short by the read deadline")
            raise
        report(response)
        return response


def describe_varbind(varbind: RawVarbind) -> str:
    oid, value = varbind
    if isinstance(value, Special):
        text = value.value
    elif isinstance(value, bytes):
        decoded = value.decode("utf-8", "replace")
        printable = decoded.isprintable() and "\ufffd" not in decoded
        text = repr(decoded) if printable else "0x" + value.hex()
    elif isinstance(value, tuple):
        text = format_oid(value)
    else:
        text = str(value)
    return f"{format_oid(oid)} = {text}"


def describe_exchange(exchange: Exchange) -> str:
    """``127.0.1.5 v2c GETBULK max-repetitions 10 [1.3.6..., ...] -> 20 varbinds, 3.1 ms``."""
    pdu = exchange.kind.value.upper()
    if exchange.kind is PduKind.BULK:
        pdu += f" max-repetitions {exchange.max_repetitions}"
    oids = ", ".join(format_oid(oid) for oid in exchange.oids)
    response = exchange.response
    outcome = f"no answer ({exchange.failure})"
    if response is not None:
        outcome = f"{len(response.varbinds)} varbinds"
        if response.error_status:
            error = error_status_name(response.error_status)
            outcome = f"error {error} at index {response.error_index}, {outcome}"
    took = f"{exchange.elapsed * 1000:.1f} ms"
    return f"{exchange.address} {exchange.version} {pdu} [{oids}] -> {outcome}, {took}"
