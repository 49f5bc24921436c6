"""The hops between the agent and the broker, one at a time, each failure named.

Used by :mod:`uploader.broker_probe` after a failed connection to say *which*
hop failed: DNS (the first host we resolve ourselves: the proxy when there is
one, else the broker), the TCP connection, the proxy (HTTP CONNECT with basic
auth, or SOCKS5, through PySocks: the same code paho uses for the real
connection), the proxy's authentication, and, after TLS, the WebSocket upgrade.

Each step raises :class:`HopFailed` with the hop's name and a plain sentence.
Blocking; run in a thread. Nothing here is on the publishing path.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import struct
from collections.abc import Callable
from typing import Literal, Protocol

import socks  # type: ignore[import-untyped]  # PySocks ships no type information

from uploader.config import MqttSettings, ProxySettings

Hop = Literal["dns", "connect", "proxy", "proxy_auth", "tls", "websocket", "broker", "broker_auth"]

#: How each hop is named at the start of a diagnosis (``status``, logs, ``ingest``).
HOP_LABELS: dict[Hop, str] = {
    "dns": "DNS",
    "connect": "connection",
    "proxy": "proxy",
    "proxy_auth": "proxy authentication",
    "tls": "TLS",
    "websocket": "WebSocket",
    "broker": "broker",
    "broker_auth": "broker authentication",
}

Resolver = Callable[..., object]

_SOCKS_TYPE = {"http": socks.HTTP, "socks5": socks.SOCKS5}
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HTTP_HEADER = 16_384


class HopFailed(Exception):
    """One hop failed; ``hop`` names it, the message says why in plain words."""

    def __init__(self, hop: Hop, reason: str) -> None:
        super().__init__(reason)
        self.hop: Hop = hop
        self.reason = reason


class Stream(Protocol):
    """What the MQTT exchange needs of a connection: a socket, or a WebSocket over one."""

    def sendall(self, data: bytes) -> None: ...
    def recv(self, size: int) -> bytes: ...


def proxy_type(proxy: ProxySettings) -> int:
    """PySocks' constant for the proxy type (what paho's ``proxy_set`` takes)."""
    return int(_SOCKS_TYPE[proxy.type])


def resolve_first_hop(settings: MqttSettings, resolve: Resolver = socket.getaddrinfo) -> None:
    """Resolve the one name we resolve ourselves; the proxy resolves the broker's name."""
    host, port, what = settings.host, settings.effective_port, "broker"
    if settings.proxy is not None:
        host, port, what = settings.proxy.host, settings.proxy.port, "proxy"
    try:
        resolve(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise HopFailed("dns", f"cannot resolve the {what} host {host!r} ({exc.strerror})") from exc
    except UnicodeError as exc:
        raise HopFailed("dns", f"the {what} host {host!r} is not a valid name") from exc


def open_connection(settings: MqttSettings, timeout: float) -> socket.socket:
    """A TCP connection to the broker: directly, or tunnelled through the proxy."""
    host, port = settings.host, settings.effective_port
    proxy = settings.proxy
    if proxy is None:
        try:
            return socket.create_connection((host, port), timeout=timeout)
        except ConnectionRefusedError as exc:
            raise HopFailed(
                "connect", "connection refused: nothing listens on that port (broker down?)"
            ) from exc
        except TimeoutError as exc:
            raise HopFailed(
                "connect", f"no answer within {timeout:g} s (firewall or wrong address?)"
            ) from exc
        except OSError as exc:
            raise HopFailed("connect", f"cannot reach the broker ({exc.strerror or exc})") from exc
    sock = socks.socksocket(socket.AF_INET, socket.SOCK_STREAM)
    sock.set_proxy(
        proxy_type(proxy),
        proxy.host,
        proxy.port,
        rdns=True,
        username=proxy.username,
        password=proxy.password.get_secret_value() if proxy.password else None,
    )
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except BaseException as exc:
        sock.close()
        raise _proxy_failure(proxy, host, port, exc) from exc
    return sock  # type: ignore[no-any-return]


def _proxy_failure(proxy: ProxySettings, host: str, port: int, exc: BaseException) -> HopFailed:
    where = f"the proxy {proxy.host}:{proxy.port}"
    if isinstance(exc, socks.GeneralProxyError) and isinstance(exc.socket_err, socks.ProxyError):
        exc = exc.socket_err  # PySocks wraps the proxy's own refusal in a "Socket error"
    if isinstance(exc, socks.ProxyConnectionError):
        cause = exc.socket_err if isinstance(exc.socket_err, OSError) else None
        detail = (cause.strerror if cause is not None else None) or str(exc.msg)
        return HopFailed("proxy", f"cannot reach {where} ({detail})")
    if isinstance(exc, socks.HTTPError):
        status = "HTTP " + str(exc.msg).split("\n", 1)[0].strip().replace(": ", " ", 1)
        # 407 is the standard answer; tinyproxy answers a CONNECT with 401.
        if status.startswith(("HTTP 407", "HTTP 401")):
            if proxy.username is None:
                return HopFailed(
                    "proxy_auth",
                    f"{where} requires authentication ({status}): set the proxy username "
                    "and password",
                )
            return HopFailed("proxy_auth", f"{where} refused our username or password ({status})")
        return HopFailed("proxy", f"{where} would not connect us to {host}:{port} ({status})")
    if isinstance(exc, socks.SOCKS5AuthError):
        return HopFailed("proxy_auth", f"{where} refused our username or password ({exc.msg})")
    if isinstance(exc, socks.SOCKS5Error):
        return HopFailed("proxy", f"{where} would not connect us to {host}:{port} ({exc.msg})")
    if isinstance(exc, socks.GeneralProxyError):
        if isinstance(exc.socket_err, TimeoutError):
            return HopFailed("proxy", f"{where} did not answer in time")
        return HopFailed("proxy", f"{where} failed: {exc.msg}")
    if isinstance(exc, TimeoutError):
        return HopFailed("proxy", f"{where} did not answer in time")
    if isinstance(exc, OSError):
        return HopFailed("proxy", f"{where} failed ({exc.strerror or exc})")
    raise exc


def _read_exact(sock: Stream | socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


class WebSocketStream:
    """MQTT bytes in binary WebSocket frames (RFC 6455) over a connected socket."""

    def __init__(self, sock: socket.socket | ssl.SSLSocket) -> None:
        self._sock = sock
        self._buffer = b""
        self._closed = False

    def sendall(self, data: bytes) -> None:
        mask = os.urandom(4)
        header = bytearray([0x82])  # FIN, binary
        length = len(data)
        if length < 126:
            header.append(0x80 | length)
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(data))
        self._sock.sendall(bytes(header) + mask + masked)

    def recv(self, size: int) -> bytes:
        while not self._buffer and not self._closed:
            self._read_frame()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _read_frame(self) -> None:
        head = _read_exact(self._sock, 2)
        if len(head) < 2:
            self._closed = True
            return
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", _read_exact(self._sock, 2))[0]
        elif length == 127:
            length = struct.unpack("!Q", _read_exact(self._sock, 8))[0]
        mask = _read_exact(self._sock, 4) if head[1] & 0x80 else b""
        payload = _read_exact(self._sock, length)
        if mask:
            payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        if opcode == 0x8:  # close
            self._closed = True
        elif opcode in (0x0, 0x2):
            self._buffer += payload


def websocket_upgrade(sock: socket.socket | ssl.SSLSocket, settings: MqttSettings) -> Stream:
    """HTTP/1.1 upgrade to a WebSocket speaking the ``mqtt`` subprotocol at ``websocket_path``."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {settings.websocket_path} HTTP/1.1\r\n"
        f"Host: {settings.host}:{settings.effective_port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: mqtt\r\n\r\n"
    )
    sock.sendall(request.encode("ascii"))
    reply = b""
    while b"\r\n\r\n" not in reply and len(reply) < _MAX_HTTP_HEADER:
        chunk = sock.recv(1024)
        if not chunk:
            break
        reply += chunk
    head, _, rest = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    where = f"WebSocket upgrade at {settings.websocket_path}"
    if len(status) < 2 or not status[0].startswith("HTTP/"):
        raise HopFailed("websocket", f"{where}: the server does not answer HTTP")
    if status[1] != "101":
        text = " ".join(status[1:])
        raise HopFailed("websocket", f"{where} refused by the server (HTTP {text})")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:])
    }
    expected = base64.b64encode(
        hashlib.sha1((key + _WS_GUID).encode(), usedforsecurity=False).digest()
    ).decode()
    if headers.get("sec-websocket-accept") != expected:
        raise HopFailed("websocket", f"{where}: the server's handshake answer is wrong")
    if rest:
        raise HopFailed("websocket", f"{where}: the server sent data before the MQTT CONNECT")
    return WebSocketStream(sock)
