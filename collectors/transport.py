"""The SNMP transport: one per process and event loop, hands out per-device sessions.

    async with SnmpTransport(settings) as transport:
        session = transport.session("192.0.2.10", credential)
        scalars = await session.get([SYS_OBJECT_ID])
        table = await session.walk([SUPPLY_DESCRIPTION, SUPPLY_LEVEL])

The seam below the GET/walk strategy (:class:`collectors.walk.Session`) is a
:class:`collectors.walk.Requester` (one PDU out, its answer back), with exactly
two implementations: :class:`collectors.udp.UdpRequester` for v1/v2c (one
unconnected UDP socket per address family, our own BER codec in
:mod:`collectors.snmp_message`) and :class:`collectors.v3.V3Engine` (one
pysnmp v3arch engine; pysnmp is imported and the engine built in a worker
thread on first use, never on the event loop). A session may carry a ``pace``
coroutine that every packet awaits (the discovery sweep's packet budget). The
caller bounds a whole device read with a deadline (:func:`collectors.reader.read_device`);
cancelling a request leaves the transport usable.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Self

from collectors.base import SnmpSession
from collectors.credentials import Credential, SnmpSettings
from collectors.errors import CLOSED, CLOSED_IN_FLIGHT
from collectors.snmp_message import PduKind, Response
from collectors.target_syntax import SyntaxProblem, split_endpoint
from collectors.trace import Trace, TracedRequester
from collectors.udp import Counters, Pace, UdpClient, UdpRequester, UdpTarget
from collectors.walk import BulkMemory, Requester, Session
from mibs.values import Oid

if TYPE_CHECKING:
    from collectors.v3 import V3Engine

__all__ = ["SnmpTransport"]


class SnmpTransport:
    """One per process and event loop; owns the sockets and the pysnmp engine."""

    def __init__(self, settings: SnmpSettings, *, trace: Trace | None = None) -> None:
        """With ``trace`` every request PDU and its outcome is reported (``scan -v``)."""
        self._settings = settings
        self._trace = trace
        self._counters = Counters()
        self._clients: dict[int, UdpClient] = {}
        self._opening: dict[int, asyncio.Task[UdpClient]] = {}
        self._v3: asyncio.Task[V3Engine] | None = None
        self._memory = BulkMemory()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def settings(self) -> SnmpSettings:
        return self._settings

    @property
    def requests_sent(self) -> int:
        """Request PDUs issued (a retransmission of the same request is not counted)."""
        return self._counters.requests_sent

    @property
    def retries(self) -> int:
        """v1/v2c retransmissions after an unanswered attempt (pysnmp retries v3 unseen)."""
        return self._counters.retries

    @property
    def timeouts(self) -> int:
        """Requests that got no answer after all retries."""
        return self._counters.timeouts

    async def __aenter__(self) -> Self:
        self._check_usable()
        self._loop = asyncio.get_running_loop()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        for task in self._opening.values():
            task.cancel()
        self._opening.clear()
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        if self._v3 is not None:
            if self._v3.done() and not self._v3.cancelled() and self._v3.exception() is None:
                self._v3.result().close()
            else:
                self._v3.cancel()

    def _check_usable(self) -> None:
        if self._closed:
            raise RuntimeError(CLOSED)

    def session(
        self,
        address: str,
        credential: Credential,
        *,
        settings: SnmpSettings | None = None,
        pace: Pace | None = None,
    ) -> SnmpSession:
        """Requests to ``address`` with ``credential``; ``settings`` override the transport's.

        ``address`` may carry a port (``192.0.2.7:1161``, ``[2001:db8::7]:1161``), which
        then wins over the settings' port; the reads keep that form as their address.

        With ``pace``, every packet of this session (retries included) awaits it first.
        """
        self._check_usable()
        if self._loop is None:
            raise RuntimeError("enter the SnmpTransport (async with) before opening sessions")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = self._loop  # built outside the loop; requests are checked again
        if running is not self._loop:
            raise RuntimeError("SnmpTransport used from another event loop than it was opened in")
        settings = settings or self._settings
        host, port = endpoint(address)
        if port is not None:
            settings = settings.model_copy(update={"port": port})
        else:
            address = host
        requester: Requester
        if credential.version == "v3":
            requester = _V3Requester(self.v3_engine, credential, host, settings, pace)
        else:
            assert credential.community is not None  # guaranteed by Credential's validator
            target = UdpTarget(
                address=host,
                port=settings.port,
                version=credential.version,
                community=credential.community.get_secret_value().encode(),
                timeout=settings.timeout,
                retries=settings.retries,
                pace=pace,
            )
            requester = UdpRequester(self._client, target)
        if self._trace is not None:
            requester = TracedRequester(
                requester, address=address, version=credential.version, trace=self._trace
            )
        return Session(
            requester,
            address=address,
            version=credential.version,
            settings=settings,
            memory=self._memory,
            key=f"{host}:{settings.port}",
        )

    async def _client(self, family: int) -> UdpClient:
        self._check_usable()
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError("SnmpTransport used from another event loop than it was opened in")
        client = self._clients.get(family)
        if client is not None:
            return client
        task = self._opening.get(family)
        if task is None:
            task = self._opening[family] = asyncio.ensure_future(
                UdpClient.open(family, self._counters)
            )
        client = await asyncio.shield(task)
        self._clients[family] = client
        self._opening.pop(family, None)
        return client

    async def v3_engine(self) -> V3Engine:
        """The v3 engine owner; pysnmp (~0.2 s) is imported in a worker thread, once."""
        self._check_usable()
        if self._v3 is None:
            self._v3 = asyncio.ensure_future(self._load_v3())
        loading = self._v3
        try:
            return await asyncio.shield(loading)
        except asyncio.CancelledError:
            if self._closed and loading.cancelled():  # close() stopped the load, not our caller
                raise RuntimeError(CLOSED_IN_FLIGHT) from None
            raise

    async def _load_v3(self) -> V3Engine:
        module = await asyncio.to_thread(importlib.import_module, "collectors.v3")
        engine: V3Engine = module.V3Engine(self._counters)
        return engine


def endpoint(address: str) -> tuple[str, int | None]:
    """(host, port or None) of a target string; a malformed port reads as part of the host."""
    try:
        host, port = split_endpoint(address)
    except SyntaxProblem:
        return address.strip("[]"), None
    return host, port


class _V3Requester:
    """The requester of one v3 session: pysnmp is loaded on its first request, off the loop."""

    def __init__(
        self,
        engine: Callable[[], Awaitable[V3Engine]],
        credential: Credential,
        host: str,
        settings: SnmpSettings,
        pace: Pace | None,
    ) -> None:
        self._engine, self._credential, self._host = engine, credential, host
        self._settings, self._pace = settings, pace

    async def request(
        self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> Response:
        engine = await self._engine()
        if self._pace is not None:
            await self._pace()  # pysnmp retransmits on its own: one token per request
        return await engine.request(
            kind,
            oids,
            max_repetitions,
            credential=self._credential,
            address=self._host,
            settings=self._settings,
        )
