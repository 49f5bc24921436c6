"""SNMPv3 requests through one pysnmp v3arch ``SnmpEngine`` per transport (docs/reading.md).

USM failures become :class:`SnmpAuthError` naming the target and profile, never a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyasn1.type import univ
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.carrier.error import CarrierError
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.hlapi.v3arch import asyncio as v3
from pysnmp.hlapi.v3arch.asyncio.lcd import CommandGeneratorLcdConfigurator
from pysnmp.proto import errind, rfc1905
from pysnmp.proto.rfc1902 import Null, ObjectName

from collectors.credentials import Credential
from collectors.errors import CLOSED_IN_FLIGHT, SnmpAuthError, SnmpProtocolError, SnmpTimeout
from collectors.snmp_message import PduKind, RawValue, RawVarbind, Response, Special
from collectors.udp import raise_receive_buffer
from mibs.values import Oid, format_oid

if TYPE_CHECKING:
    from collectors.transport import SnmpTransport, Target

#: pysnmp's USM protocols by our names (credentials.AuthProtocol, PrivProtocol).
_PROTOCOLS: dict[str, Any] = {
    "MD5": v3.USM_AUTH_HMAC96_MD5,
    "SHA": v3.USM_AUTH_HMAC96_SHA,
    "SHA224": v3.USM_AUTH_HMAC128_SHA224,
    "SHA256": v3.USM_AUTH_HMAC192_SHA256,
    "SHA384": v3.USM_AUTH_HMAC256_SHA384,
    "SHA512": v3.USM_AUTH_HMAC384_SHA512,
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

_NULLS: tuple[tuple[type[Any], Special], ...] = (  # the exceptions are Null subclasses: first
    (rfc1905.NoSuchObject, Special.NO_SUCH_OBJECT),
    (rfc1905.NoSuchInstance, Special.NO_SUCH_INSTANCE),
    (rfc1905.EndOfMibView, Special.END_OF_MIB_VIEW),
    (univ.Null, Special.NULL),
)


def to_raw(value: Any) -> RawValue:
    """One pysnmp value as ``int``, ``bytes``, OID tuple, or a :class:`Special` marker."""
    for kind, special in _NULLS:
        if isinstance(value, kind):
            return special
    if not getattr(value, "isValue", False):
        return Special.UNSUPPORTED
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.OctetString):
        return bytes(value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):
        return tuple(value.asTuple())
    return Special.UNSUPPORTED


def varbind_to_raw(name: Any, value: Any) -> RawVarbind:
    if isinstance(name, univ.ObjectIdentifier) and name.isValue:
        return tuple(name.asTuple()), to_raw(value)
    return (), Special.BAD_NAME


@functools.cache
def _user(credential: Credential) -> tuple[Any, Any]:
    """pysnmp's user data and context of ``credential``."""
    auth, priv = credential.auth_key, credential.priv_key
    user = v3.UsmUserData(
        credential.username or "",
        authKey=auth.get_secret_value() if auth else None,
        privKey=priv.get_secret_value() if priv else None,
        authProtocol=_PROTOCOLS.get(credential.auth_protocol or "", v3.USM_AUTH_NONE),
        privProtocol=_PROTOCOLS.get(credential.priv_protocol or "", v3.USM_PRIV_NONE),
    )
    return user, v3.ContextData(contextName=credential.context_name.encode())


_LCD = CommandGeneratorLcdConfigurator()
_GENERATORS = {
    PduKind.GET: cmdgen.GetCommandGenerator(),
    PduKind.NEXT: cmdgen.NextCommandGeneratorSingleRun(),
    PduKind.BULK: cmdgen.BulkCommandGeneratorSingleRun(),
}
_NULL = Null("")
_Answer = tuple[Any, int, int, Any]  # errorIndication, errorStatus, errorIndex, varbinds


def _resolve(*args: Any) -> None:
    """pysnmp's completion callback: hand the answer to the awaiting request."""
    _engine, _handle, indication, status, index, varbinds, future = args
    if not future.done():  # cancelled by the caller's deadline: drop the late answer
        future.set_result((indication, int(status or 0), int(index or 0), varbinds))


class V3Engine:
    """The pysnmp engine of one transport: built in a worker thread (it loads MIB modules)."""

    def __init__(self, counters: SnmpTransport) -> None:
        self._counters = counters
        self._engine = v3.SnmpEngine()
        self._targets: dict[tuple[str, int, float, int], Any] = {}
        self._buffers_raised: set[tuple[int, ...]] = set()  # transport domains
        self._inflight: set[asyncio.Future[Any]] = set()  # answers awaited; close() fails them
        self._closed = False

    def _raise_receive_buffers(self) -> None:
        """Raise SO_RCVBUF on the engine's sockets once they exist (opened asynchronously)."""
        dispatcher = self._engine.transport_dispatcher  # None once closed
        for domain in {udp.DOMAIN_NAME, udp6.DOMAIN_NAME} - self._buffers_raised:
            with contextlib.suppress(CarrierError):  # raised if this family was never used
                transport = dispatcher and dispatcher.get_transport(domain).transport
                if transport is not None:
                    raise_receive_buffer(transport.get_extra_info("socket"))
                    self._buffers_raised.add(domain)

    async def request(
        self, target: Target, kind: PduKind, oids: Sequence[Oid], max_repetitions: int
    ) -> Response:
        """One PDU to ``target`` (its address resolved); errors name it and the profile."""
        if target.pace is not None:
            await target.pace()  # pysnmp retransmits on its own: one token per request
        settings, host = target.settings, target.host
        key = (host, settings.port, settings.timeout, settings.retries)
        pysnmp_target = self._targets.get(key)
        if pysnmp_target is None:
            cls = v3.Udp6TransportTarget if ":" in host else v3.UdpTransportTarget
            pysnmp_target = self._targets[key] = await cls.create(
                (host, settings.port), timeout=settings.timeout, retries=settings.retries
            )
        if self._closed:
            raise RuntimeError(CLOSED_IN_FLIGHT)
        user, context = _user(target.credential)
        # hlapi's get_cmd/next_cmd/bulk_cmd would resolve every OID through the MIB
        # view (about 12% of the CPU) and next_cmd would reject a non-increasing
        # answer for the whole PDU; the single-run generators take OIDs as they are.
        target_name, _ = _LCD.configure(self._engine, user, pysnmp_target, context.contextName)
        varbinds = [(ObjectName(oid), _NULL) for oid in oids]
        future: asyncio.Future[_Answer] = asyncio.get_running_loop().create_future()
        head = (self._engine, target_name, context.contextEngineId, context.contextName)
        self._counters.requests_sent += 1
        bulk = (0, max_repetitions) if kind is PduKind.BULK else ()  # non-repeaters, max-reps
        _GENERATORS[kind].send_varbinds(*head, *bulk, varbinds, _resolve, future)
        self._inflight.add(future)
        try:
            indication, status, index, answer = await future
        finally:
            self._inflight.discard(future)
        self._raise_receive_buffers()
        if not indication:
            raw = [varbind_to_raw(name, value) for name, value in answer]
            return Response(error_status=status, error_index=index, varbinds=raw)
        address, profile = target.address, target.credential.name
        oid = format_oid(oids[0]) if oids else None
        if isinstance(indication, errind.RequestTimedOut):
            self._counters.timeouts += 1
            raise SnmpTimeout(
                f"{address}: no answer to {kind.value} after "
                f"{settings.retries + 1} x {settings.timeout:g} s (SNMPv3 profile {profile!r})",
                address=address,
                oid=oid,
            )
        for failure, reason in _AUTH_FAILURES.items():
            if isinstance(indication, failure):
                message = f"{address}: SNMPv3 {reason} with credential profile {profile!r}"
                raise SnmpAuthError(message, address=address, oid=oid)
        raise SnmpProtocolError(
            f"{address}: SNMPv3 {kind.value} failed: {indication}", address=address, oid=oid
        )

    def close(self) -> None:
        self._closed = True
        for future in self._inflight:
            if not future.done():
                future.set_exception(RuntimeError(CLOSED_IN_FLIGHT))
        self._engine.close_dispatcher()
