"""Silent UDP sinks that count what they receive: proof from the peer's side of what was sent.

``counter = udp_counter_factory(["127.0.5.1", "127.0.5.2"], port)`` binds one
socket per address on ``port`` and records ``(monotonic time, local address)``
for every datagram, never answering (a device that drops SNMP). A background
thread does the receiving, so it works with any event loop or none.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pytest


@dataclass
class UdpCounter:
    port: int
    sockets: list[socket.socket]
    hits: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, address: str | None = None) -> int:
        with self._lock:
            return sum(1 for _, local in self.hits if address is None or local == address)

    def stamps(self) -> list[float]:
        with self._lock:
            return sorted(stamp for stamp, _ in self.hits)

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            for sock in self.sockets:
                selector.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    while True:
                        try:
                            sock.recvfrom(65535)
                        except BlockingIOError:
                            break
                        now = time.monotonic()
                        with self._lock:
                            self.hits.append((now, sock.getsockname()[0]))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="udp-counter", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


def open_udp_counter(addresses: Sequence[str], port: int) -> UdpCounter:
    sockets = []
    try:
        for address in addresses:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            sock.bind((address, port))
            sock.setblocking(False)
            sockets.append(sock)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    counter = UdpCounter(port=port, sockets=sockets)
    counter.start()
    return counter


class UdpCounterFactory(Protocol):
    def __call__(self, addresses: Sequence[str], port: int) -> UdpCounter: ...


@pytest.fixture
def udp_counter_factory() -> Iterator[UdpCounterFactory]:
    opened: list[UdpCounter] = []

    def factory(addresses: Sequence[str], port: int) -> UdpCounter:
        counter = open_udp_counter(addresses, port)
        opened.append(counter)
        return counter

    yield factory
    for counter in opened:
        counter.close()
