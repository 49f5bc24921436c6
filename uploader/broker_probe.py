"""Say what really happened when a broker connection fails.

aiomqtt reports a broker that rejects our client certificate, or a plain-TCP
client talking to a TLS port, only as "Operation timed out". This module probes
the path itself, hop by hop (:mod:`uploader.hops`: DNS, TCP or the proxy and its
authentication; then TLS, the WebSocket upgrade, one MQTT 3.1.1 CONNECT) and
returns one sentence that starts with the hop that failed, e.g. "TLS: server
certificate not trusted", "proxy authentication: the proxy ... refused our
username or password" or "broker authentication: the broker rejected ...".

Blocking; run it in a thread. Only called after a failure, never on the hot path.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import ssl
import struct
from pathlib import Path

from fleet_errors import LocalError, RemoteError
from uploader.config import MqttSettings
from uploader.hops import (
    HOP_LABELS,
    Hop,
    HopFailed,
    Resolver,
    Stream,
    open_connection,
    resolve_first_hop,
    websocket_upgrade,
)


class MqttConfigError(LocalError):
    """A TLS file named in the MQTT settings is missing or unreadable; names field and file."""

    field: str
    path: Path

    def __init__(self, message: str, *, field: str, path: Path) -> None:
        super().__init__(message, field=field, path=path)


class BrokerUnavailable(RemoteError):
    """The broker could not be reached or refused us; ``reason`` says why in plain words.

    ``hop`` names the hop that failed (see :data:`uploader.hops.HOP_LABELS`), when known;
    ``reason`` then starts with its label.
    """

    reason: str

    def __init__(self, *, host: str, port: int, reason: str, hop: Hop | None = None) -> None:
        super().__init__(
            f"MQTT broker {host}:{port}: {reason}", address=f"{host}:{port}", reason=reason
        )
        self.host = host
        self.port = port
        self.hop = hop


# MQTT 3.1.1 CONNACK return codes (OASIS MQTT 3.1.1, section 3.2.2.3).
_CONNACK_REASONS: dict[int, tuple[Hop, str]] = {
    1: ("broker", "the broker refused the MQTT protocol version"),
    2: ("broker", "the broker rejected the client identifier"),
    3: ("broker", "the broker is unavailable (CONNACK: server unavailable)"),
    4: ("broker_auth", "the broker rejected the username or password"),
    5: (
        "broker_auth",
        "the broker says we are not authorised to connect (wrong username or password?)",
    ),
}
#: What the probe says when every hop worked (the MQTT session itself then failed).
PROBE_OK = "the broker accepts a plain MQTT 3.1.1 probe; the MQTT session itself failed"

# OpenSSL alert reasons that mean "the server did not like our certificate".
_CLIENT_CERT_ALERTS = (
    "UNKNOWN_CA",
    "BAD_CERTIFICATE",
    "CERTIFICATE_UNKNOWN",
    "CERTIFICATE_REVOKED",
    "CERTIFICATE_EXPIRED",
    "UNSUPPORTED_CERTIFICATE",
    "ACCESS_DENIED",
    "DECRYPT_ERROR",
)


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """Client TLS context: server verified (hostname and chain), client cert if configured."""
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH,
            cafile=str(settings.ca_file) if settings.ca_file else None,
        )
    except (OSError, ssl.SSLError) as exc:
        assert settings.ca_file is not None
        raise _file_error("ca_file", settings.ca_file, exc) from exc
    if settings.cert_file is not None and settings.key_file is not None:
        try:
            context.load_cert_chain(str(settings.cert_file), str(settings.key_file))
        except (OSError, ssl.SSLError) as exc:
            raise _file_error("cert_file/key_file", settings.cert_file, exc) from exc
    return context


def _file_error(field: str, path: Path, exc: Exception) -> MqttConfigError:
    if isinstance(exc, FileNotFoundError):
        detail = "no such file"
    elif isinstance(exc, PermissionError):
        detail = "permission denied"
    else:
        detail = f"not a usable PEM file ({getattr(exc, 'reason', None) or exc})"
    return MqttConfigError(f"mqtt {field} {path}: {detail}", field=field, path=path)


def _connect_packet(settings: MqttSettings) -> bytes:
    def utf8(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("!H", len(raw)) + raw

    flags = 0x02  # clean session
    payload = utf8(f"fleet-agent-probe-{secrets.token_hex(4)}")
    if settings.username is not None:
        flags |= 0x80
        payload += utf8(settings.username)
        if settings.password is not None:
            flags |= 0x40
            payload += utf8(settings.password.get_secret_value())
    variable = utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", 30)
    body = variable + payload
    length = bytearray()
    remaining = len(body)
    while True:
        byte, remaining = remaining % 128, remaining // 128
        length.append(byte | (0x80 if remaining else 0))
        if not remaining:
            break
    return b"\x10" + bytes(length) + body


def _alert(exc: ssl.SSLError) -> str:
    return str(getattr(exc, "reason", None) or exc)


def _mqtt_exchange(stream: Stream, settings: MqttSettings) -> str:
    """Send CONNECT, read CONNACK; returns the diagnosis (or raises :class:`HopFailed`)."""
    stream.sendall(_connect_packet(settings))
    reply = b""
    while len(reply) < 4:
        chunk = stream.recv(4 - len(reply))
        if not chunk:
            break
        reply += chunk
    if len(reply) < 4 or reply[0] != 0x20:
        if settings.tls:
            if settings.transport == "websockets":
                raise HopFailed("broker", "the broker closed the WebSocket without answering MQTT")
            raise HopFailed("broker", "the broker closed the TLS connection without answering MQTT")
        if reply[:1] in (b"\x15", b"\x16"):
            raise HopFailed(
                "tls", "the broker answered with TLS: it requires TLS on this port (set tls: true)"
            )
        raise HopFailed(
            "tls", "the broker closed the connection: it probably requires TLS on this port"
        )
    code = reply[3]
    if code in _CONNACK_REASONS:
        raise HopFailed(*_CONNACK_REASONS[code])
    return PROBE_OK


def _after_tls(tls: ssl.SSLSocket, settings: MqttSettings) -> str:
    if settings.transport == "websockets":
        return _mqtt_exchange(websocket_upgrade(tls, settings), settings)
    return _mqtt_exchange(tls, settings)


def _tls_diagnosis(sock: socket.socket, settings: MqttSettings, timeout: float) -> str:
    context = tls_context(settings)
    try:
        tls = context.wrap_socket(sock, server_hostname=settings.host)
    except ssl.SSLCertVerificationError as exc:
        raise HopFailed("tls", f"server certificate not trusted ({exc.verify_message})") from exc
    except ssl.SSLError as exc:
        reason = _alert(exc)
        if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason:
            raise HopFailed(
                "tls", "the broker does not speak TLS on this port (plain MQTT? set tls: false)"
            ) from exc
        if "CERTIFICATE_REQUIRED" in reason or "HANDSHAKE_FAILURE" in reason:
            raise HopFailed("tls", _cert_required(settings, reason)) from exc
        if any(alert in reason for alert in _CLIENT_CERT_ALERTS):
            raise HopFailed(
                "tls", f"client certificate rejected by the broker (TLS alert {reason})"
            ) from exc
        raise HopFailed("tls", f"TLS handshake failed ({reason})") from exc
    except ConnectionResetError as exc:
        raise HopFailed(
            "tls",
            "the broker reset the connection during the TLS handshake: "
            "it probably does not speak TLS on this port (set tls: false)",
        ) from exc
    except (TimeoutError, OSError) as exc:
        raise HopFailed("tls", f"TLS handshake failed: {exc.strerror or exc}") from exc
    with tls:
        try:
            if settings.transport != "websockets":
                # TLS 1.3: the server checks our certificate after the client's handshake
                # ends and answers a bad one with an alert; give it a moment before MQTT.
                tls.settimeout(min(1.0, timeout))
                with contextlib.suppress(TimeoutError):
                    if not tls.recv(1):
                        raise HopFailed("tls", _closed_after_handshake(settings))
                tls.settimeout(timeout)
            return _after_tls(tls, settings)
        except ssl.SSLEOFError as exc:
            raise HopFailed("tls", _closed_after_handshake(settings)) from exc
        except ssl.SSLError as exc:
            # TLS 1.3: the server checks our certificate after the client's handshake ends.
            reason = _alert(exc)
            if "CERTIFICATE_REQUIRED" in reason:
                raise HopFailed("tls", _cert_required(settings, reason)) from exc
            if any(alert in reason for alert in _CLIENT_CERT_ALERTS):
                raise HopFailed(
                    "tls", f"client certificate rejected by the broker (TLS alert {reason})"
                ) from exc
            raise HopFailed("tls", f"TLS session failed ({reason})") from exc
        except (ConnectionResetError, BrokenPipeError) as exc:
            if settings.cert_file is not None:
                raise HopFailed(
                    "tls", "client certificate rejected by the broker (connection reset after TLS)"
                ) from exc
            raise HopFailed("tls", _cert_required(settings, "connection reset after TLS")) from exc


def _closed_after_handshake(settings: MqttSettings) -> str:
    if settings.cert_file is not None:
        return (
            "client certificate rejected by the broker (connection closed after the TLS handshake)"
        )
    return _cert_required(settings, "connection closed after the TLS handshake")


def _cert_required(settings: MqttSettings, reason: str) -> str:
    if settings.cert_file is None:
        return (
            "the broker requires a client certificate (mTLS); "
            f"set cert_file and key_file ({reason})"
        )
    return f"client certificate rejected by the broker (TLS alert {reason})"


def diagnose_path(
    settings: MqttSettings, *, timeout: float = 5.0, resolve: Resolver = socket.getaddrinfo
) -> tuple[Hop | None, str]:
    """Walk the path to the broker; (the hop that failed, why), or (None, :data:`PROBE_OK`)."""
    try:
        resolve_first_hop(settings, resolve)
        sock = open_connection(settings, timeout)
        with sock:
            sock.settimeout(timeout)
            try:
                if settings.tls:
                    return None, _tls_diagnosis(sock, settings, timeout)
                if settings.transport == "websockets":
                    return None, _mqtt_exchange(websocket_upgrade(sock, settings), settings)
                return None, _mqtt_exchange(sock, settings)
            except TimeoutError as exc:
                raise HopFailed(
                    "broker", f"the broker did not answer within {timeout:g} s"
                ) from exc
            except (ConnectionResetError, BrokenPipeError) as exc:
                if settings.tls:
                    raise HopFailed("broker", "the broker reset the TLS connection") from exc
                raise HopFailed(
                    "tls", "the broker reset the connection: it probably requires TLS on this port"
                ) from exc
            except OSError as exc:
                raise HopFailed("connect", f"connection failed ({exc.strerror or exc})") from exc
    except HopFailed as failed:
        return failed.hop, f"{HOP_LABELS[failed.hop]}: {failed.reason}"


def probe_broker(
    settings: MqttSettings, *, timeout: float = 5.0, resolve: Resolver = socket.getaddrinfo
) -> str:
    """One plain sentence saying why connecting to the broker fails (or that it does not)."""
    return diagnose_path(settings, timeout=timeout, resolve=resolve)[1]
