"""The SNMP transport: one per process and event loop, hands out per-device sessions.

    async with SnmpTransport(settings) as transport:
        session = transport.session("192.0.2.10", credential)
        scalars = await session.get([SYS_OBJECT_ID])
        table = await session.walk([SUPPLY_DESCRIPTION, SUPPLY_LEVEL])

v1/v2c go through one unconnected UDP socket per address family with our own
BER codec (:mod:`collectors._pysnmp_wire`); v3 goes through one pysnmp v3arch
engine (:mod:`collectors._pysnmp_v3`). Both sit behind the same GET/walk
strategy (:mod:`collectors._pysnmp_session`). The caller bounds a whole device
read with ``asyncio.timeout(settings.read_deadline)``; cancelling a request
leaves the transport usable.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Self

from collectors._pysnmp_session import BulkMemory, Session
from collectors._pysnmp_v2c import Counters, DatagramClient, V2cRequester
from collectors.base import SnmpSession
from collectors.credentials import Credential, SnmpSettings

if TYPE_CHECKING:
    from collectors._pysnmp_v3 import V3Engine, V3Requester

__all__ = ["SnmpTransport"]


class SnmpTransport:
    """One per process and event loop; owns the sockets and the pysnmp engine."""

    def __init__(self, settings: SnmpSettings) -> None:
        self._settings = settings
        self._counters = Counters()
        self._clients: dict[int, DatagramClient] = {}
        self._opening: dict[int, asyncio.Task[DatagramClient]] = {}
        # built on the first v3 session: pysnmp's v3arch takes ~0.2 s to import
        self._v3: V3Engine | None = None
        self._memory = BulkMemory()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def requests_sent(self) -> int:
        """Request PDUs issued (a retransmission of the same request is not counted)."""
        return self._counters.requests_sent

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
            self._v3.close()

    def _check_usable(self) -> None:
        if self._closed:
            raise RuntimeError("SnmpTransport is closed; build a new one")

    def session(
        self, address: str, credential: Credential, *, settings: SnmpSettings | None = None
    ) -> SnmpSession:
        """Requests to ``address`` with ``credential``; ``settings`` override the transport's."""
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
        host = address.strip("[]")
        key = f"{host}:{settings.port}"
        if credential.version == "v3":
            from collectors._pysnmp_v3 import V3Engine, V3Requester

            if self._v3 is None:
                self._v3 = V3Engine(self._counters)
            requester: V2cRequester | V3Requester = V3Requester(
                self._v3,
                credential,
                address=host,
                port=settings.port,
                timeout=settings.timeout,
                retries=settings.retries,
            )
        else:
            assert credential.community is not None  # guaranteed by Credential's validator
            requester = V2cRequester(
                self._client,
                address=host,
                port=settings.port,
                version=credential.version,
                community=credential.community.get_secret_value().encode(),
                timeout=settings.timeout,
                retries=settings.retries,
            )
        return Session(
            requester,
            address=host,
            version=credential.version,
            settings=settings,
            memory=self._memory,
            key=key,
        )

    async def _client(self, family: int) -> DatagramClient:
        self._check_usable()
        if asyncio.get_running_loop() is not self._loop:
            raise RuntimeError("SnmpTransport used from another event loop than it was opened in")
        client = self._clients.get(family)
        if client is not None:
            return client
        task = self._opening.get(family)
        if task is None:
            task = self._opening[family] = asyncio.ensure_future(
                DatagramClient.open(family, self._counters)
            )
        client = await asyncio.shield(task)
        self._clients[family] = client
        self._opening.pop(family, None)
        return client
