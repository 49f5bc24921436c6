"""A lean SNMP v1/v2c session on its own *connected* UDP socket, for sweeps.

The discovery sweep probes thousands of addresses, most of which never answer.
Two properties matter there that the long-lived polling transport does not give:

* a connected socket per address sees ICMP port-unreachable as
  ``ConnectionRefusedError`` at once, so a host without an SNMP agent costs
  one packet instead of timeout x retries (:class:`SnmpPortClosed`);
* nothing is registered anywhere per target: the socket is the whole state
  and it is closed when the address is done.

Every packet, retries included, first awaits ``pace()`` (the sweep's token
bucket), so the packets-per-second budget covers everything sent. Retries back
off: attempt n waits ``timeout * 1.5**n`` for its answer. Encoding,
decoding and the GET/walk strategy are the transport's own
(:mod:`collectors._pysnmp_wire`, :class:`collectors._pysnmp_session.Session`);
this module only supplies the socket as a ``Requester``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Self

from collectors._pysnmp_session import Session
from collectors._pysnmp_types import PduKind, Response
from collectors._pysnmp_wire import VERSION_NUMBERS, WireError, decode_response, encode_request
from collectors.base import WalkResult
from collectors.credentials import Credential, SnmpSettings
from collectors.errors import SnmpError, SnmpTimeout
from mibs.values import Oid, Value, format_oid

Pace = Callable[[], Awaitable[None]]
#: Each retransmission waits this much longer than the attempt before it: a busy
#: or waking printer gets more time, and a congested path is not hammered at a fixed rate.
RETRY_BACKOFF = 1.5


class SnmpPortClosed(SnmpTimeout):
    """The host answered ICMP port-unreachable: no SNMP agent listens there."""


async def no_pace() -> None:
    return None


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiter: asyncio.Future[bytes] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)


class ConnectedRequester:
    """One PDU out, its answer back, on a socket connected to one agent."""

    def __init__(
        self, address: str, credential: Credential, settings: SnmpSettings, *, pace: Pace
    ) -> None:
        if credential.version == "v3" or credential.community is None:
            raise ValueError("ConnectedRequester speaks v1/v2c only; use collectors.snmp for v3")
        self.address = address
        self._settings = settings
        self._version = credential.version
        self._version_number = VERSION_NUMBERS[credential.version]
        self._community = credential.community.get_secret_value().encode("utf-8")
        self._pace = pace
        self._request_id = random.randrange(1, 2**30)
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Protocol | None = None
        self.packets_sent = 0

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._transport, self._protocol = await loop.create_datagram_endpoint(
                _Protocol, remote_addr=(self.address, self._settings.port)
            )
        except OSError as exc:
            raise SnmpError(f"cannot open a UDP socket: {exc}", address=self.address) from exc

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = self._protocol = None

    async def request(
        self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> Response:
        transport, protocol = self._transport, self._protocol
        if transport is None or protocol is None:
            raise RuntimeError("ConnectedRequester used while closed")
        loop = asyncio.get_running_loop()
        sent_ids: set[int] = set()
        window = self._settings.timeout
        for attempt in range(self._settings.retries + 1):
            if attempt:
                window *= RETRY_BACKOFF
            await self._pace()
            self._request_id = self._request_id % (2**31 - 1) + 1
            sent_ids.add(self._request_id)
            packet = encode_request(
                version=self._version,
                community=self._community,
                kind=kind,
                request_id=self._request_id,
                oids=oids,
                max_repetitions=max_repetitions,
            )
            deadline = loop.time() + window
            protocol.waiter = loop.create_future()
            transport.sendto(packet)
            self.packets_sent += 1
            response = await self._await_answer(protocol, deadline, sent_ids)
            if response is not None:
                return response
        raise SnmpTimeout(
            f"no answer to {self._settings.retries + 1} attempts "
            f"(first waited {self._settings.timeout:g} s, each retry {RETRY_BACKOFF:g}x longer)",
            address=self.address,
            oid=format_oid(oids[0]) if oids else None,
        )

    async def _await_answer(
        self, protocol: _Protocol, deadline: float, sent_ids: set[int]
    ) -> Response | None:
        loop = asyncio.get_running_loop()
        try:
            while (remaining := deadline - loop.time()) > 0:
                waiter = protocol.waiter
                assert waiter is not None
                try:
                    data = await asyncio.wait_for(waiter, remaining)
                except TimeoutError:
                    return None
                except ConnectionRefusedError:
                    raise SnmpPortClosed(
                        "ICMP port unreachable: no SNMP agent", address=self.address
                    ) from None
                except OSError:
                    # Another ICMP error (host/net unreachable): as good as silence.
                    protocol.waiter = loop.create_future()
                    continue
                protocol.waiter = loop.create_future()
                response = self._accept(data, sent_ids)
                if response is not None:
                    return response
            return None
        finally:
            protocol.waiter = None

    def _accept(self, data: bytes, sent_ids: set[int]) -> Response | None:
        """The response if it answers one of our attempts; stray datagrams are dropped."""
        try:
            version, community, response = decode_response(data)
        except WireError:
            return None
        if (
            response.request_id not in sent_ids
            or version != self._version_number
            or community != self._community
        ):
            return None
        return response


class UdpSnmpSession:
    """``SnmpSession`` for one v1/v2c device over a connected socket (async context manager)."""

    def __init__(
        self,
        address: str,
        credential: Credential,
        settings: SnmpSettings,
        *,
        pace: Pace = no_pace,
    ) -> None:
        self.address = address
        self.credential = credential
        self._requester = ConnectedRequester(address, credential, settings, pace=pace)
        self._session = Session(
            self._requester, address=address, version=credential.version, settings=settings
        )

    @property
    def packets_sent(self) -> int:
        return self._requester.packets_sent

    async def __aenter__(self) -> Self:
        await self._requester.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._requester.close()

    async def get(self, oids: Sequence[Oid]) -> dict[Oid, Value]:
        return await self._session.get(oids)

    async def walk(self, columns: Sequence[Oid]) -> WalkResult:
        return await self._session.walk(columns)
