"""The SNMP transport: one per process and event loop, hands out per-device sessions.

Requests go to :class:`collectors.udp.UdpClient` (v1/v2c) or :class:`collectors.v3.V3Engine`.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Self

from collectors.credentials import Credential, SnmpSettings
from collectors.errors import CLOSED, CLOSED_IN_FLIGHT
from collectors.snmp_message import PduKind, Response
from collectors.target_syntax import SyntaxProblem, split_endpoint
from collectors.trace import Trace, TracedRequester
from collectors.udp import Counters, Pace, Target, UdpClient, resolve
from collectors.walk import Requester, Session
from mibs.values import Oid

if TYPE_CHECKING:
    from collectors.v3 import V3Engine


class SnmpTransport(Counters):
    """Owns the UDP sockets (one per address family), the v3 engine, and the request counters."""

    def __init__(self, settings: SnmpSettings, *, trace: Trace | None = None) -> None:
        """With ``trace`` every request PDU and its outcome is reported (``scan -v``)."""
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

        A port in ``address`` (``192.0.2.7:1161``, ``[2001:db8::7]:1161``) wins over the
        settings' port, and reads keep that form as their address. With ``pace``, every
        packet (retries included) awaits it first.
        """
        self._check()
        settings = settings or self._settings
        try:
            host, port = split_endpoint(address)
        except SyntaxProblem:  # a malformed port reads as part of the host
            host, port = address.strip("[]"), None
        if port is not None:
            settings = settings.model_copy(update={"port": port})
        else:
            address = host
        community = credential.community
        secret = community.get_secret_value().encode() if community else b""
        requester: Requester = _Requester(self, Target(host, credential, secret, settings, pace))
        if self._trace is not None:
            requester = TracedRequester(
                requester, address=address, version=credential.version, trace=self._trace
            )
        return Session(
            requester,
            address=address,
            version=credential.version,
            settings=settings,
            no_bulk=self._no_bulk,
            key=f"{host}:{settings.port}",
        )

    async def _open(self, key: Any, opener: Callable[[Any, Counters], Awaitable[Any]]) -> Any:
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


async def _load_v3(_: str, counters: Counters) -> V3Engine:
    """pysnmp (~0.2 s to import) and its engine, loaded in a worker thread, never on the loop."""
    module = await asyncio.to_thread(importlib.import_module, "collectors.v3")
    engine: V3Engine = await asyncio.to_thread(module.V3Engine, counters)
    return engine


class _Requester:
    """The :class:`~collectors.walk.Requester` of one session: v1/v2c over UDP, or v3."""

    def __init__(self, transport: SnmpTransport, target: Target) -> None:
        self._transport, self._target = transport, target
        self._resolved: tuple[socket.AddressFamily, str] | None = None

    async def request(
        self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> Response:
        transport, target = self._transport, self._target
        if self._resolved is None:
            self._resolved = await resolve(target.address, target.settings.port)
        family, host = self._resolved
        if target.credential.version == "v3":
            peer: UdpClient | V3Engine = await transport._open("v3", _load_v3)
        else:
            peer = await transport._open(family, UdpClient.open)
        return await peer.request(target, host, kind, oids, max_repetitions)
