"""The SNMP transport: one per process and event loop, hands out per-device sessions.

Requests go to :class:`collectors.udp.UdpClient` (v1/v2c) or :class:`collectors.v3.V3Engine`;
a :data:`Trace` sees each request PDU and its outcome as ``scan -v`` shows them (no secrets).
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from collectors.credentials import Credential, SnmpSettings
from collectors.errors import CLOSED, CLOSED_IN_FLIGHT, SnmpError
from collectors.snmp_message import PduKind, RawVarbind, Response, Special, error_status_name
from collectors.targets import split_endpoint
from collectors.udp import Pace, UdpClient, resolve
from collectors.walk import Requester, Session
from mibs.values import Oid, format_oid

if TYPE_CHECKING:
    from collectors.v3 import V3Engine


class SnmpTransport:
    """Owns the UDP sockets (one per address family), the v3 engine, and the request counters."""

    requests_sent = 0  # request PDUs; a retransmission of the same request is not counted
    retries = 0  # v1/v2c retransmissions after an unanswered attempt (pysnmp retries v3 unseen)
    timeouts = 0  # requests that got no answer after all retries

    def __init__(self, settings: SnmpSettings, *, trace: Trace | None = None) -> None:
        self._settings = settings
        self._trace = trace
        self._opened: dict[object, Any] = {}
        self._opening: dict[object, asyncio.Task[Any]] = {}
        self._no_bulk: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        if self._closed:
            raise RuntimeError(CLOSED)
        self._loop = asyncio.get_running_loop()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the sockets and the v3 engine; requests in flight fail, new ones are refused."""
        self._closed = True
        for task in self._opening.values():
            if task.done() and not task.cancelled() and task.exception() is None:
                task.result().close()
            else:
                task.cancel()

    def _check(self) -> None:
        if self._closed:
            raise RuntimeError(CLOSED)
        if self._loop is None:
            raise RuntimeError("enter the SnmpTransport (async with) before opening sessions")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return  # a session built outside the loop: its requests are checked again
        if running is not self._loop:
            raise RuntimeError("SnmpTransport used from another event loop than it was opened in")

    def session(
        self,
        address: str,
        credential: Credential,
        *,
        settings: SnmpSettings | None = None,
        pace: Pace | None = None,
    ) -> Session:
        """Requests to ``address`` with ``credential``; ``settings`` override the transport's.

        A port in ``address`` (``192.0.2.7:1161``, ``[::1]:1161``) wins over the settings' and
        stays in the reads' address; with ``pace`` every packet (retries too) awaits it first.
        """
        self._check()
        settings = settings or self._settings
        try:
            host, port = split_endpoint(address)
        except ValueError:  # a malformed port reads as part of the host
            host, port = address.strip("[]"), None
        if port is not None:
            settings = settings.model_copy(update={"port": port})
        else:
            address = host
        secret = credential.community.get_secret_value().encode() if credential.community else b""
        requester: Requester = Target(self, host, credential, secret, settings, pace)
        if self._trace is not None:
            requester = TracedRequester(requester, address, credential.version, self._trace)
        return Session(
            requester,
            address=address,
            version=credential.version,
            settings=settings,
            no_bulk=self._no_bulk,
            key=f"{host}:{settings.port}",
        )

    async def _open(self, key: Any, opener: Callable[[Any, SnmpTransport], Awaitable[Any]]) -> Any:
        """The UDP client of one address family (``key``) or the v3 engine, opened once."""
        self._check()
        found = self._opened.get(key)
        if found is not None:
            return found
        task = self._opening.get(key)
        if task is None:
            task = self._opening[key] = asyncio.ensure_future(opener(key, self))
        try:
            found = self._opened[key] = await asyncio.shield(task)
        except asyncio.CancelledError:
            if self._closed and task.cancelled():  # close() stopped the opening, not our caller
                raise RuntimeError(CLOSED_IN_FLIGHT) from None
            raise
        return found


def _load_v3(_: str, counters: SnmpTransport) -> Awaitable[V3Engine]:
    """pysnmp (~0.2 s to import) and its engine, loaded in a worker thread, never on the loop."""
    return asyncio.to_thread(lambda: importlib.import_module("collectors.v3").V3Engine(counters))


@dataclass(slots=True)
class Target:
    """Where one session's requests go and how hard to try: the session's :class:`Requester`."""

    transport: SnmpTransport
    address: str  # as given (a name or a literal): what errors name
    credential: Credential
    community: bytes  # the credential's (v1/v2c), ready for the wire
    settings: SnmpSettings  # port, retries, timeout (each retry waits RETRY_BACKOFF times longer)
    pace: Pace | None = None
    family: socket.AddressFamily | None = None  # and host: resolved by the first request
    host: str = ""

    async def request(
        self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> Response:
        if self.family is None:
            self.family, self.host = await resolve(self.address, self.settings.port)
        if self.credential.version == "v3":
            peer: UdpClient | V3Engine = await self.transport._open("v3", _load_v3)
        else:
            peer = await self.transport._open(self.family, UdpClient.open)
        return await peer.request(self, kind, oids, max_repetitions)


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


@dataclass(frozen=True)
class TracedRequester:
    """A requester that reports each exchange to ``trace`` (after it ends)."""

    inner: Requester
    address: str
    version: str
    trace: Trace

    async def request(
        self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> Response:
        started = time.monotonic()

        def report(response: Response | None = None, failure: str | None = None) -> None:
            elapsed = time.monotonic() - started
            head = (self.address, self.version, kind, tuple(oids), max_repetitions, elapsed)
            self.trace(Exchange(*head, response=response, failure=failure))

        try:
            response = await self.inner.request(kind, oids, max_repetitions)
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
