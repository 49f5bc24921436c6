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
from collections.abc import Sequence
from typing import Any

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

from collectors.credentials import Credential
from collectors.errors import SnmpAuthError, SnmpProtocolError, SnmpTimeout, SnmpUnresolvable
from collectors.snmp_message import PduKind, RawValue, RawVarbind, Response, Special
from collectors.udp import Counters, literal_family, raise_receive_buffer
from mibs.values import Oid, format_oid

_log = structlog.get_logger(__name__)

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
        self._users: dict[Credential, Any] = {}
        self._buffers_raised: set[tuple[int, ...]] = set()
        self._targets: dict[tuple[str, int, float, int], Any] = {}
        self.inflight: set[asyncio.Future[tuple[Any, int, int, Any]]] = set()
        self._closed = False

    def count_sent(self) -> None:
        self._counters.requests_sent += 1

    def count_timeout(self) -> None:
        self._counters.timeouts += 1

    async def engine(self) -> Any:
        """The pysnmp engine, built in a worker thread on first use (it loads MIB modules)."""
        if self._closed:
            raise RuntimeError("SnmpTransport is closed; build a new one")
        if self._engine is None:
            engine = await asyncio.to_thread(v3.SnmpEngine)
            if self._engine is None:  # another request may have built one meanwhile
                self._engine = engine
        return self._engine

    def user(self, credential: Credential) -> Any:
        found = self._users.get(credential)
        if found is None:
            found = self._users[credential] = user_data(credential)
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

    def close(self) -> None:
        self._closed = True
        for future in self.inflight:
            if not future.done():
                future.set_exception(RuntimeError("SnmpTransport closed with a request in flight"))
        self.inflight.clear()
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None


class V3Requester:
    """The :class:`collectors.walk.Requester` for one v3 device."""

    def __init__(
        self,
        owner: V3Engine,
        credential: Credential,
        *,
        address: str,
        port: int,
        timeout: float,
        retries: int,
    ) -> None:
        self._owner = owner
        self._credential = credential
        self._address = address
        self._port = port
        self._timeout = timeout
        self._retries = retries
        self._target: Any = None
        self._context = v3.ContextData(contextName=credential.context_name.encode())

    async def _target_for(self) -> Any:
        if self._target is None:
            self._target = await self._owner.target(
                self._address, self._port, self._timeout, self._retries
            )
        return self._target

    async def request(
        self, kind: PduKind, oids: Sequence[Oid], max_repetitions: int = 0
    ) -> Response:
        target = await self._target_for()
        engine = await self._owner.engine()
        # hlapi's get_cmd/next_cmd/bulk_cmd would resolve every OID through the MIB
        # view (about 12% of the CPU) and next_cmd would reject a non-increasing
        # answer for the whole PDU; the single-run generators take OIDs as they are.
        target_name, _ = _LCD.configure(
            engine, self._owner.user(self._credential), target, self._context.contextName
        )
        varbinds = [(ObjectName(oid), _NULL) for oid in oids]
        future: asyncio.Future[tuple[Any, int, int, Any]] = (
            asyncio.get_running_loop().create_future()
        )
        head = (engine, target_name, self._context.contextEngineId, self._context.contextName)
        self._owner.count_sent()
        if kind is PduKind.GET:
            _GET.send_varbinds(*head, varbinds, _resolve, future)
        elif kind is PduKind.NEXT:
            _NEXT.send_varbinds(*head, varbinds, _resolve, future)
        else:
            _BULK.send_varbinds(*head, 0, max_repetitions, varbinds, _resolve, future)
        self._owner.inflight.add(future)
        try:
            indication, status, index, answer = await future
        finally:
            self._owner.inflight.discard(future)
        self._owner.raise_receive_buffers()
        if indication:
            raise self._error(indication, kind, oids)
        return Response(
            error_status=int(status),
            error_index=int(index),
            varbinds=[varbind_to_raw(name, value) for name, value in answer],
        )

    def _error(
        self, indication: Any, kind: PduKind, oids: Sequence[Oid]
    ) -> SnmpAuthError | SnmpTimeout | SnmpProtocolError:
        oid = format_oid(oids[0]) if oids else None
        profile = self._credential.name
        if isinstance(indication, errind.RequestTimedOut):
            self._owner.count_timeout()
            return SnmpTimeout(
                f"{self._address}: no answer to {kind.value} after "
                f"{self._retries + 1} x {self._timeout:g} s (SNMPv3 profile {profile!r})",
                address=self._address,
                oid=oid,
            )
        for cls, reason in _AUTH_FAILURES.items():
            if isinstance(indication, cls):
                return SnmpAuthError(
                    f"{self._address}: SNMPv3 {reason} with credential profile {profile!r}",
                    address=self._address,
                    oid=oid,
                )
        return SnmpProtocolError(
            f"{self._address}: SNMPv3 {kind.value} failed: {indication}",
            address=self._address,
            oid=oid,
        )
