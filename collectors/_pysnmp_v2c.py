"""SNMPv1/v2c requests over one unconnected UDP socket per address family.

Cheaper than any engine: no per-target registration, request-ids matched in a
dict, answers accepted only from the address the request went to, timeouts and
retries run by asyncio (no polling timer). Cancelling a request (the poller's
read deadline) just forgets its request-id, so the client stays usable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import cast

import structlog

from collectors._pysnmp_types import PduKind, Response
from collectors._pysnmp_wire import VERSION_NUMBERS, WireError, decode_response, encode_request
from collectors.errors import SnmpProtocolError, SnmpTimeout
from mibs.values import Oid, format_oid

_log = structlog.get_logger(__name__)

RECEIVE_BUFFER = 4 * 1024 * 1024  # 200 requests in flight overflow the default (STACK_NOTES)


def raise_receive_buffer(sock: socket.socket) -> int:
    """Ask for :data:`RECEIVE_BUFFER`; past ``net.core.rmem_max`` try the privileged option.

    Returns the size the kernel granted. Refusal is not fatal: the cost is a few
    dropped answers under heavy load, which retries cover.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < RECEIVE_BUFFER:
            force = getattr(socket, "SO_RCVBUFFORCE", None)
            if force is not None:
                sock.setsockopt(socket.SOL_SOCKET, force, RECEIVE_BUFFER)
    except OSError as exc:
        _log.debug("snmp.socket.rcvbuf_refused", reason=str(exc))
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


@dataclass
class Counters:
    requests_sent: int = 0
    timeouts: int = 0


class _Pending:
    __slots__ = ("community", "future", "host", "port", "version")

    def __init__(
        self, future: asyncio.Future[Response], host: str, port: int, version: int, community: bytes
    ) -> None:
        self.future = future
        self.host = host
        self.port = port
        self.version = version
        self.community = community


class DatagramClient(asyncio.DatagramProtocol):
    """One socket, many requests in flight; built inside the running loop."""

    def __init__(self, counters: Counters) -> None:
        self._counters = counters
        self._pending: dict[int, _Pending] = {}
        self._next_id = random.randrange(1, 1 << 30)
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, family: int, counters: Counters) -> DatagramClient:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_datagram_endpoint(lambda: cls(counters), family=family)
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            raise_receive_buffer(sock)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(
                    RuntimeError("SnmpTransport closed with a request in flight")
                )
        self._pending.clear()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            version, community, response = decode_response(data)
        except WireError as exc:
            _log.debug("snmp.response.malformed", source=str(addr[0]), reason=str(exc))
            return
        pending = self._pending.get(response.request_id)
        if (
            pending is None
            or pending.future.done()
            or addr[0] != pending.host
            or addr[1] != pending.port
            or version != pending.version
            or community != pending.community
        ):
            return  # late duplicate, spoofed or foreign: not ours
        pending.future.set_result(response)

    def error_received(self, exc: Exception) -> None:
        _log.debug("snmp.socket.error", reason=str(exc))

    def _request_id(self) -> int:
        self._next_id = self._next_id + 1 if self._next_id < (1 << 31) - 1 else 1
        return self._next_id

    async def request(
        self,
        *,
        host: str,
        port: int,
        version: str,
        community: bytes,
        kind: PduKind,
        oids: Sequence[Oid],
        max_repetitions: int,
        attempt_timeout: float,
        retries: int,
        address: str,
    ) -> Response:
        if self._transport is None:
            raise RuntimeError("SnmpTransport is closed; build a new one")
        request_id = self._request_id()
        message = encode_request(
            version=version,
            community=community,
            kind=kind,
            request_id=request_id,
            oids=oids,
            max_repetitions=max_repetitions,
        )
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(
            future, host, port, VERSION_NUMBERS[version], community
        )
        self._counters.requests_sent += 1
        try:
            for _attempt in range(retries + 1):
                self._transport.sendto(message, (host, port))
                done, _ = await asyncio.wait((future,), timeout=attempt_timeout)
                if done:
                    return future.result()
        finally:
            self._pending.pop(request_id, None)
            if not future.done():
                future.cancel()
        self._counters.timeouts += 1
        raise SnmpTimeout(
            f"{address}: no answer to {kind.value} after {retries + 1} x {attempt_timeout:g} s",
            address=address,
            oid=format_oid(oids[0]) if oids else None,
        )


def literal_family(host: str) -> int | None:
    try:
        parsed = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET6 if parsed.version == 6 else socket.AF_INET


async def resolve(host: str, port: int) -> tuple[int, str]:
    """(family, numeric host) for ``host``; literals skip the resolver."""
    family = literal_family(host)
    if family is not None:
        return family, str(ipaddress.ip_address(host))
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise SnmpProtocolError(f"{host}: cannot resolve ({exc})", address=host) from exc
    family, _, _, _, sockaddr = infos[0]
    return int(family), str(sockaddr[0])


class V2cRequester:
    """The :class:`collectors._pysnmp_session.Requester` for one v1/v2c device."""

    def __init__(
        self,
        client_for: Callable[[int], Awaitable[DatagramClient]],
        *,
        address: str,
        port: int,
        version: str,
        community: bytes,
        timeout: float,
        retries: int,
    ) -> None:
        self._client_for = client_for
        self._address = address
        self._port = port
        self._version = version
        self._community = community
        self._timeout = timeout
        self._retries = retries
        self._resolved: tuple[int, str] | None = None

    async def request(
        self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> Response:
        if self._resolved is None:
            self._resolved = await resolve(self._address, self._port)
        family, host = self._resolved
        client = await self._client_for(family)
        return await client.request(
            host=host,
            port=self._port,
            version=self._version,
            community=self._community,
            kind=kind,
            oids=oids,
            max_repetitions=max_repetitions,
            attempt_timeout=self._timeout,
            retries=self._retries,
            address=self._address,
        )
