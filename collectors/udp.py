"""SNMPv1/v2c requests over one unconnected UDP socket per address family.

The only v1/v2c client: the daemon's polls, ``scan`` and the discovery sweep all
go through it. Cheaper than any engine: no per-target registration, request-ids
matched in a dict, answers accepted only from the address the request went to,
timeouts and retries run by asyncio (no polling timer). Cancelling a request
(the reader's deadline) just forgets its request-id, so the client stays usable.

* **Retries back off**: attempt n waits ``timeout * 1.5**n`` for its answer, so
  a busy or waking printer gets more time and a congested path is not hammered
  at a fixed rate. A retransmission reuses the request-id: a late answer to an
  earlier attempt is as good as the answer to the last.
* **Pacing**: a session may carry a ``pace`` coroutine (the sweep's token
  bucket); every packet, retries included, awaits it first.
* **Closed ports**: the sockets ask for ICMP errors (``IP_RECVERR``) and read
  the kernel's error queue, whose entries name the destination the refused
  datagram went to; every request in flight to that address and port fails at
  once with :class:`SnmpPortClosed` (no agent listens there) instead of
  waiting out its retries.
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

from collectors.errors import (
    CLOSED,
    CLOSED_IN_FLIGHT,
    SnmpPortClosed,
    SnmpTimeout,
    SnmpUnresolvable,
)
from collectors.snmp_message import (
    VERSION_NUMBERS,
    PduKind,
    Response,
    WireError,
    decode_response,
    encode_request,
)
from mibs.values import Oid, format_oid

_log = structlog.get_logger(__name__)

RECEIVE_BUFFER = 4 * 1024 * 1024  # 200 requests in flight overflow the default (STACK_NOTES)
#: Each retransmission waits this much longer than the attempt before it.
RETRY_BACKOFF = 1.5
# Linux ip(7) / ipv6(7): queue ICMP errors on unconnected sockets too (not in the socket module).
_IP_RECVERR, _IPV6_RECVERR = 11, 25
#: Sends of one datagram before it is left to the transport (each failed one filed an error).
_SEND_ATTEMPTS = 8

Pace = Callable[[], Awaitable[None]]


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


def _ask_for_icmp_errors(sock: socket.socket, family: int) -> bool:
    level, option = (
        (socket.IPPROTO_IPV6, _IPV6_RECVERR)
        if family == socket.AF_INET6
        else (socket.IPPROTO_IP, _IP_RECVERR)
    )
    try:
        sock.setsockopt(level, option, 1)
    except OSError:
        return False  # not Linux: a closed port then looks like silence
    return True


@dataclass
class Counters:
    requests_sent: int = 0
    timeouts: int = 0
    retries: int = 0


@dataclass(frozen=True, slots=True)
class UdpTarget:
    """Where one v1/v2c session's requests go, and how hard to try."""

    address: str  # as given (a name or a literal): what errors name
    port: int
    version: str
    community: bytes
    timeout: float  # the first attempt's wait; each retry waits RETRY_BACKOFF times longer
    retries: int
    pace: Pace | None = None


class _Pending:
    __slots__ = ("community", "future", "host", "port", "version")

    def __init__(self, future: asyncio.Future[Response], host: str, target: UdpTarget) -> None:
        self.future = future
        self.host = host
        self.port = target.port
        self.version = VERSION_NUMBERS[target.version]
        self.community = target.community


class UdpClient(asyncio.DatagramProtocol):
    """One socket of one address family, many requests in flight; built inside the running loop."""

    def __init__(self, counters: Counters, sock: socket.socket) -> None:
        self._counters = counters
        self._sock = sock
        self._pending: dict[int, _Pending] = {}
        self._next_id = random.randrange(1, 1 << 30)
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, family: int, counters: Counters) -> UdpClient:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            raise_receive_buffer(sock)
            _ask_for_icmp_errors(sock, family)
            loop = asyncio.get_running_loop()
            _, client = await loop.create_datagram_endpoint(lambda: cls(counters, sock), sock=sock)
        except BaseException:
            sock.close()
            raise
        return client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(RuntimeError(CLOSED_IN_FLIGHT))
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
        """An ICMP error arrived: find out which destination it was for from the error queue."""
        while True:
            try:
                _, _, _, destination = self._sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break  # no error queue (not Linux): nothing more to learn
            if isinstance(exc, ConnectionRefusedError) and destination:
                self._refused(str(destination[0]), int(destination[1]))
        if not isinstance(exc, ConnectionRefusedError):
            _log.debug("snmp.socket.error", reason=str(exc))

    def _refused(self, host: str, port: int) -> None:
        for pending in self._pending.values():
            if pending.host == host and pending.port == port and not pending.future.done():
                pending.future.set_exception(
                    SnmpPortClosed("ICMP port unreachable: no SNMP agent", address=host)
                )

    def _send(self, message: bytes, destination: tuple[str, int]) -> None:
        """Send one datagram, surviving the ICMP errors of earlier ones.

        With ``IP_RECVERR`` an unconnected socket reports a pending ICMP error (another
        address's port unreachable) on the next ``sendto``, which then sends nothing:
        the transport would drop this datagram and call it that address's error. Here
        the error is filed where it belongs and the datagram sent again.
        """
        assert self._transport is not None
        for _ in range(_SEND_ATTEMPTS):
            try:
                self._sock.sendto(message, destination)
            except ConnectionRefusedError as exc:
                self.error_received(exc)  # someone else's port unreachable: file it, resend
                continue
            except (BlockingIOError, InterruptedError):
                break  # the socket buffer is full: the transport queues it
            return
        self._transport.sendto(message, destination)

    def _request_id(self) -> int:
        self._next_id = self._next_id + 1 if self._next_id < (1 << 31) - 1 else 1
        return self._next_id

    async def request(
        self,
        target: UdpTarget,
        host: str,
        kind: PduKind,
        oids: Sequence[Oid],
        max_repetitions: int,
    ) -> Response:
        """One PDU to ``host`` (``target``'s address, resolved), with its retries."""
        if self._transport is None:
            raise RuntimeError(CLOSED)
        request_id = self._request_id()
        message = encode_request(
            version=target.version,
            community=target.community,
            kind=kind,
            request_id=request_id,
            oids=oids,
            max_repetitions=max_repetitions,
        )
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = _Pending(future, host, target)
        self._counters.requests_sent += 1
        window, pace = target.timeout, target.pace
        try:
            for attempt in range(target.retries + 1):
                if attempt:
                    self._counters.retries += 1
                    window *= RETRY_BACKOFF
                if pace is not None:
                    await pace()
                if self._transport is None:
                    raise RuntimeError(CLOSED)
                self._send(message, (host, target.port))
                done, _ = await asyncio.wait((future,), timeout=window)
                if done:
                    return future.result()
        except SnmpPortClosed:
            self._counters.timeouts += 1  # nobody listens: unanswered, at once
            raise
        except asyncio.CancelledError:
            # Cut short unanswered by the caller's read deadline: it went unanswered too.
            self._counters.timeouts += 1
            raise
        finally:
            self._pending.pop(request_id, None)
            if not future.done():
                future.cancel()
        self._counters.timeouts += 1
        raise SnmpTimeout(
            f"{target.address}: no answer to {kind.value} after {target.retries + 1} attempts "
            f"(first waited {target.timeout:g} s, each retry {RETRY_BACKOFF:g}x longer)",
            address=target.address,
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
        raise SnmpUnresolvable(f"{host}: cannot resolve ({exc})", address=host) from exc
    family, _, _, _, sockaddr = infos[0]
    return int(family), str(sockaddr[0])


class UdpRequester:
    """The :class:`collectors.walk.Requester` for one v1/v2c device."""

    def __init__(
        self, client_for: Callable[[int], Awaitable[UdpClient]], target: UdpTarget
    ) -> None:
        self._client_for = client_for
        self._target = target
        self._resolved: tuple[int, str] | None = None

    async def request(
        self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> Response:
        if self._resolved is None:
            self._resolved = await resolve(self._target.address, self._target.port)
        family, host = self._resolved
        client = await self._client_for(family)
        return await client.request(self._target, host, kind, oids, max_repetitions)
