"""SNMPv3 requests through one pysnmp v3arch ``SnmpEngine`` per transport.

The engine is built lazily inside the running loop (an engine is bound to the
loop that first used it). pysnmp's LCD cache registers each user and each
(address, timeout, retries) target once and reuses it. Requests go out with
``lookupMib=False`` and ``(ObjectName, Null)`` tuples, so no MIB is loaded.
USM failures come back as ``errorIndication``; they are mapped to
:class:`SnmpAuthError` naming the target and the credential profile, never a key.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import structlog
from pyasn1.type import univ
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.carrier.error import CarrierError
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch import asyncio as v3
from pysnmp.hlapi.v3arch.asyncio.lcd import CommandGeneratorLcdConfigurator
from pysnmp.proto import errind, rfc1905
from pysnmp.proto.rfc1902 import Null, ObjectName

from collectors.credentials import Credential, SnmpSettings
from collectors.errors import (
    CLOSED,
    CLOSED_IN_FLIGHT,
    SnmpAuthError,
    SnmpProtocolError,
    SnmpTimeout,
    SnmpUnresolvable,
)
from collectors.snmp_message import PduKind, RawValue, RawVarbind, Response, Special
from collectors.udp import Counters, literal_family, raise_receive_buffer
from mibs.values import Oid, format_oid

_log = structlog.get_logger(__name__)
T = TypeVar("T")

AUTH_PROTOCOLS: dict[str, Any] = {
    "MD5": v3.USM_AUTH_HMAC96_MD5,
    "SHA": v3.USM_AUTH_HMAC96_SHA,
    "SHA224": v3.USM_AUTH_HMAC128_SHA224,
    "SHA256": v3.USM_AUTH_HMAC192_SHA256,
    "SHA384": v3.USM_AUTH_HMAC256_SHA384,
    "SHA512": v3.USM_AUTH_HMAC384_SHA512,
}
PRIV_PROTOCOLS: dict[str, Any] = {
    "DES": v3.USM_PRIV_CBC56_DES,
    "AES": v3.USM_PRIV_CFB128_AES,
    "AES192": v3.USM_PRIV_CFB192_AES,
    "AES256": v3.USM_PRIV_CFB256_AES,
}

# errorIndication classes that mean "these credentials do not work here".
_AUTH_FAILURES: dict[type[errind.ErrorIndication], str] = {
    errind.WrongDigest: "wrong authentication key (wrongDigest)",
    errind.UnknownUserName: "unknown user (unknownUserName)",
    errind.UnknownSecurityName: "unknown user (unknownSecurityName)",
    errind.DecryptionError: "wrong privacy key or protocol (decryptionError)",
    errind.NotInTimeWindow: "not in time window (notInTimeWindow)",
    errind.AuthenticationError: "authentication failed (authenticationError)",
    errind.AuthenticationFailure: "authentication failed (authenticationFailure)",
    errind.UnsupportedSecurityLevel: "security level refused (unsupportedSecurityLevel)",
    errind.UnsupportedAuthProtocol: "authentication protocol refused (unsupportedAuthProtocol)",
    errind.UnsupportedPrivProtocol: "privacy protocol refused (unsupportedPrivProtocol)",
}


_EXCEPTIONS: tuple[tuple[type[Any], Special], ...] = (
    (rfc1905.NoSuchObject, Special.NO_SUCH_OBJECT),
    (rfc1905.NoSuchInstance, Special.NO_SUCH_INSTANCE),
    (rfc1905.EndOfMibView, Special.END_OF_MIB_VIEW),
)


def to_raw(value: Any) -> RawValue:
    """One pysnmp value as ``int``, ``bytes``, OID tuple, or a :class:`Special` marker."""
    for kind, special in _EXCEPTIONS:
        if isinstance(value, kind):
            return special
    if isinstance(value, univ.Null):
        return Special.NULL
    if not getattr(value, "isValue", False):
        return Special.UNSUPPORTED
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.OctetString):
        return bytes(value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):
        return tuple(value.asTuple())
    return Special.UNSUPPORTED


def to_oid(name: Any) -> Oid | None:
    if isinstance(name, univ.ObjectIdentifier) and name.isValue:
        return tuple(name.asTuple())
    return None


def varbind_to_raw(name: Any, value: Any) -> RawVarbind:
    oid = to_oid(name)
    if oid is None:
        return (), Special.BAD_NAME
    return oid, to_raw(value)


def user_data(credential: Credential) -> Any:
    auth = credential.auth_key.get_secret_value() if credential.auth_key else None
    priv = credential.priv_key.get_secret_value() if credential.priv_key else None
    return v3.UsmUserData(
        credential.username or "",
        authKey=auth,
        privKey=priv,
        authProtocol=AUTH_PROTOCOLS[credential.auth_protocol]
        if credential.auth_protocol
        else v3.USM_AUTH_NONE,
        privProtocol=PRIV_PROTOCOLS[credential.priv_protocol]
        if credential.priv_protocol
        else v3.USM_PRIV_NONE,
    )


_LCD = CommandGeneratorLcdConfigurator()
_GET = cmdgen.GetCommandGenerator()
_NEXT = cmdgen.NextCommandGeneratorSingleRun()
_BULK = cmdgen.BulkCommandGeneratorSingleRun()
_NULL = Null("")


def _resolve(  # noqa: PLR0917 - the positional signature pysnmp calls back with
    engine: Any,
    handle: Any,
    indication: Any,
    status: Any,
    index: Any,
    varbinds: Any,
    future: asyncio.Future[tuple[Any, int, int, Any]],
) -> None:
    """pysnmp's completion callback: hand the answer to the awaiting request."""
    if not future.done():  # cancelled by the caller's deadline: drop the late answer
        future.set_result((indication, int(status or 0), int(index or 0), varbinds))


class V3Engine:
    """Owns the pysnmp engine; one per :class:`collectors.transport.SnmpTransport`."""

    def __init__(self, counters: Counters) -> None:
        self._counters = counters
        self._engine: Any = None
        self._users: dict[Credential, tuple[Any, Any]] = {}
        self._buffers_raised: set[tuple[int, ...]] = set()
        self._targets: dict[tuple[str, int, float, int], Any] = {}
        self.inflight: set[asyncio.Future[Any]] = set()
        self._closed = False

    async def engine(self) -> Any:
        """The pysnmp engine, built in a worker thread on first use (it loads MIB modules)."""
        if self._closed:
            raise RuntimeError(CLOSED)
        if self._engine is None:
            engine = await self._unless_closed(asyncio.to_thread(v3.SnmpEngine))
            if self._engine is None:  # another request may have built one meanwhile
                self._engine = engine
        return self._engine

    async def _unless_closed(self, work: Awaitable[T]) -> T:
        """``work``'s result, or ``RuntimeError`` as soon as :meth:`close` is called."""
        closed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(work)
        self.inflight.add(closed)
        try:
            await asyncio.wait((task, closed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.inflight.discard(closed)
            if not task.done():
                task.cancel()  # a thread runs on, its result dropped
        if closed.done():
            closed.result()  # raises: closed under this request
        return task.result()

    def user(self, credential: Credential) -> tuple[Any, Any]:
        """pysnmp's user data and context of ``credential``, built once."""
        found = self._users.get(credential)
        if found is None:
            context = v3.ContextData(contextName=credential.context_name.encode())
            found = self._users[credential] = (user_data(credential), context)
        return found

    async def target(self, address: str, port: int, attempt_timeout: float, retries: int) -> Any:
        """The pysnmp transport target, built (and resolved) once per address and settings."""
        key = (address, port, attempt_timeout, retries)
        found = self._targets.get(key)
        if found is None:
            cls = (
                v3.Udp6TransportTarget
                if literal_family(address) == socket.AF_INET6
                else v3.UdpTransportTarget
            )
            try:
                found = await cls.create((address, port), timeout=attempt_timeout, retries=retries)
            except PySnmpError as exc:  # the resolver failed
                raise SnmpUnresolvable(
                    f"{address}: cannot resolve ({exc})", address=address
                ) from exc
            self._targets[key] = found
        return found

    def raise_receive_buffers(self) -> None:
        """Raise SO_RCVBUF on the engine's sockets once they exist (opened asynchronously)."""
        dispatcher = getattr(self._engine, "transport_dispatcher", None)
        if dispatcher is None:
            return
        for domain in (udp.DOMAIN_NAME, udp6.DOMAIN_NAME):
            if domain in self._buffers_raised:
                continue
            try:
                carrier = dispatcher.get_transport(domain)
            except CarrierError:
                continue  # this address family was never used
            sock_transport = getattr(carrier, "transport", None)
            sock = sock_transport.get_extra_info("socket") if sock_transport else None
            if sock is not None:
                raise_receive_buffer(sock)
                self._buffers_raised.add(domain)

    async def request(
        self,
        kind: PduKind,
        oids: Sequence[Oid],
        max_repetitions: int = 0,
        *,
        credential: Credential,
        address: str,
        settings: SnmpSettings,
    ) -> Response:
        """One PDU to ``address`` as ``credential``; errors name the address and the profile."""
        if self._closed:
            raise RuntimeError(CLOSED)
        target = await self._unless_closed(
            self.target(address, settings.port, settings.timeout, settings.retries)
        )
        engine = await self.engine()
        user, context = self.user(credential)
        # hlapi's get_cmd/next_cmd/bulk_cmd would resolve every OID through the MIB
        # view (about 12% of the CPU) and next_cmd would reject a non-increasing
        # answer for the whole PDU; the single-run generators take OIDs as they are.
        target_name, _ = _LCD.configure(engine, user, target, context.contextName)
        varbinds = [(ObjectName(oid), _NULL) for oid in oids]
        future: asyncio.Future[tuple[Any, int, int, Any]] = (
            asyncio.get_running_loop().create_future()
        )
        head = (engine, target_name, context.contextEngineId, context.contextName)
        self._counters.requests_sent += 1
        if kind is PduKind.GET:
            _GET.send_varbinds(*head, varbinds, _resolve, future)
        elif kind is PduKind.NEXT:
            _NEXT.send_varbinds(*head, varbinds, _resolve, future)
        else:
            _BULK.send_varbinds(*head, 0, max_repetitions, varbinds, _resolve, future)
        self.inflight.add(future)
        try:
            indication, status, index, answer = await future
        finally:
            self.inflight.discard(future)
        self.raise_receive_buffers()
        if not indication:
            raw = [varbind_to_raw(name, value) for name, value in answer]
            return Response(error_status=status, error_index=index, varbinds=raw)
        if isinstance(indication, errind.RequestTimedOut):
            self._counters.timeouts += 1
        raise _error(
            indication, kind, oids, profile=credential.name, address=address, settings=settings
        )

    def close(self) -> None:
        self._closed = True
        for future in self.inflight:
            if not future.done():
                future.set_exception(RuntimeError(CLOSED_IN_FLIGHT))
        self.inflight.clear()
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None


def _error(
    indication: Any,
    kind: PduKind,
    oids: Sequence[Oid],
    *,
    profile: str,
    address: str,
    settings: SnmpSettings,
) -> SnmpAuthError | SnmpTimeout | SnmpProtocolError:
    """pysnmp's ``errorIndication`` as our error, naming the target and the profile."""
    oid = format_oid(oids[0]) if oids else None
    if isinstance(indication, errind.RequestTimedOut):
        return SnmpTimeout(
            f"{address}: no answer to {kind.value} after "
            f"{settings.retries + 1} x {settings.timeout:g} s (SNMPv3 profile {profile!r})",
            address=address,
            oid=oid,
        )
    for cls, reason in _AUTH_FAILURES.items():
        if isinstance(indication, cls):
            return SnmpAuthError(
                f"{address}: SNMPv3 {reason} with credential profile {profile!r}",
                address=address,
                oid=oid,
            )
    return SnmpProtocolError(
        f"{address}: SNMPv3 {kind.value} failed: {indication}", address=address, oid=oid
    )
