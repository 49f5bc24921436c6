"""SNMPv1/v2c over one unconnected UDP socket per address family, and the token bucket pacing it."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import random
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import structlog

from collectors.errors import (
    CLOSED,
    CLOSED_IN_FLIGHT,
    SnmpPortClosed,
    SnmpProtocolError,
    SnmpTimeout,
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

if TYPE_CHECKING:
    from collectors.transport import SnmpTransport, Target

_log = structlog.get_logger(__name__)

RECEIVE_BUFFER = 4 * 1024 * 1024  # 200 requests in flight overflow the default (STACK_NOTES)
RETRY_BACKOFF = 1.5  # each retransmission waits this much longer than the attempt before it
_SEND_ATTEMPTS = 8  # sends of one datagram before the transport queues it (see UdpClient._send)
#: Queue ICMP errors on unconnected sockets too: Linux IP_RECVERR / IPV6_RECVERR (ip(7), ipv6(7)).
_RECVERR = {socket.AF_INET: (socket.IPPROTO_IP, 11), socket.AF_INET6: (socket.IPPROTO_IPV6, 25)}

Pace = Callable[[], Awaitable[None]]


def raise_receive_buffer(sock: socket.socket) -> int:
    """Ask for :data:`RECEIVE_BUFFER` (forced if privileged); the size granted. Never raises."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < RECEIVE_BUFFER:
            force = getattr(socket, "SO_RCVBUFFORCE", None)
            if force is not None:
                sock.setsockopt(socket.SOL_SOCKET, force, RECEIVE_BUFFER)
    except OSError as exc:
        _log.debug("snmp.socket.rcvbuf_refused", reason=str(exc))
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


class UdpClient(asyncio.DatagramProtocol):
    """One socket of one address family, many requests in flight; built inside the running loop."""

    def __init__(self, counters: SnmpTransport, sock: socket.socket) -> None:
        self._counters = counters
        self._sock = sock
        # request-id -> (answer, (host, port, version number, community) it must come from)
        self._pending: dict[int, tuple[asyncio.Future[Response], tuple[str, int, int, bytes]]] = {}
        self._next_id = random.randrange(1, 1 << 30)
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, family: socket.AddressFamily, counters: SnmpTransport) -> UdpClient:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:  # asyncio makes the socket non-blocking
            raise_receive_buffer(sock)
            with contextlib.suppress(OSError):  # not Linux: a closed port looks like silence
                sock.setsockopt(*_RECVERR[family], 1)
            transport, client = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: cls(counters, sock), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        client._transport = transport
        return client

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(RuntimeError(CLOSED_IN_FLIGHT))

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
        # a late duplicate, a spoofed or a foreign answer is not ours
        if (
            pending is not None
            and pending[1] == (addr[0], addr[1], version, community)
            and not pending[0].done()
        ):
            pending[0].set_result(response)

    def error_received(self, exc: Exception) -> None:
        """An ICMP error arrived: find out which destination it was for from the error queue."""
        refused = isinstance(exc, ConnectionRefusedError)
        while True:
            try:
                _, _, _, destination = self._sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
            except OSError:
                break  # drained, or no error queue (not Linux): nothing more to learn
            if not refused or not destination:
                continue
            for future, (host, port, _, _) in self._pending.values():
                if (host, port) == destination[:2] and not future.done():
                    future.set_exception(
                        SnmpPortClosed("ICMP port unreachable: no SNMP agent", address=host)
                    )
        if not refused:
            _log.debug("snmp.socket.error", reason=str(exc))

    def _send(self, message: bytes, destination: tuple[str, int]) -> None:
        """Send one datagram; with ``IP_RECVERR`` a pending ICMP error (another address's port
        unreachable) makes ``sendto`` raise and send nothing: file the error, then send again."""
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

    async def request(
        self, target: Target, kind: PduKind, oids: Sequence[Oid], reps: int
    ) -> Response:
        """One PDU to ``target`` (its address resolved), with its retries; ``reps``: GETBULK's."""
        self._next_id = request_id = self._next_id + 1 if self._next_id < (1 << 31) - 1 else 1
        version, community = target.credential.version, target.community
        message = encode_request(version, community, kind, request_id, oids, max_repetitions=reps)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        settings, pace, host = target.settings, target.pace, target.host
        source = (host, settings.port, VERSION_NUMBERS[version], community)
        self._pending[request_id] = future, source
        self._counters.requests_sent += 1
        window = settings.timeout
        try:
            for attempt in range(settings.retries + 1):
                if attempt:
                    self._counters.retries += 1
                    window *= RETRY_BACKOFF
                if pace is not None:
                    await pace()
                if self._transport is None:
                    raise RuntimeError(CLOSED)
                self._send(message, (host, settings.port))
                done, _ = await asyncio.wait((future,), timeout=window)
                if done:
                    return future.result()
        except (SnmpPortClosed, asyncio.CancelledError):  # nobody listens, or the deadline cut it
            self._counters.timeouts += 1
            raise
        finally:
            self._pending.pop(request_id, None)
            if not future.done():
                future.cancel()
        self._counters.timeouts += 1
        raise SnmpTimeout(
            f"{target.address}: no answer to {kind.value} after {settings.retries + 1} attempts "
            f"(first waited {settings.timeout:g} s, each retry {RETRY_BACKOFF:g}x longer)",
            address=target.address,
            oid=format_oid(oids[0]) if oids else None,
        )


async def resolve(host: str, port: int) -> tuple[socket.AddressFamily, str]:
    """(family, numeric host) for ``host``; literals skip the resolver."""
    with contextlib.suppress(ValueError):
        literal = ipaddress.ip_address(host)
        return (socket.AF_INET6 if literal.version == 6 else socket.AF_INET), str(literal)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        message = f"{host}: cannot resolve ({exc})"
        raise SnmpProtocolError(message, address=host, reason="unresolvable") from exc
    family, _, _, _, sockaddr = infos[0]
    return family, str(sockaddr[0])


class TokenBucket:
    """A :data:`Pace`: the sweep's packets per second; clock and sleep injectable (virtual time)."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate!r} (use None for no limit)")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else default_burst(rate)
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst!r}")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = asyncio.Lock()
        self.granted = 0

    async def acquire(self) -> None:
        """Wait for one token; waiters are served first come, first served."""
        async with self._lock:
            while True:
                now = self._clock()
                if now > self._stamp:
                    self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1 - 1e-9:  # float dust: a refill may land a hair below 1
                    break
                await self._sleep((1 - self._tokens) / self.rate)
            self._tokens = max(0.0, self._tokens - 1)
            self.granted += 1


def default_burst(rate: float) -> float:
    """A twentieth of a second's worth of packets, at least one: smooth, yet cheap to schedule."""
    return max(1.0, rate / 20)
