"""A TCP proxy in front of a real broker that can stop delivering PUBLISH packets to a client.

It forwards both directions byte for byte. After :meth:`PublishBlackHole.withhold`,
the connections open at that moment stop receiving PUBLISH packets from the
broker (they are counted and dropped); every other packet still passes, so the
client's own publishes are acknowledged (PUBACK) and its keepalive answered.
That is what a consumer whose receive path stopped delivering looks like from
the broker: the session holds messages in flight for it, none reaches its code.
Connections opened later pass everything again.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

PUBLISH = 3


def _packet_length(buffer: bytearray) -> int | None:
    """Bytes of the first whole MQTT packet in ``buffer`` (None while incomplete)."""
    multiplier, remaining = 1, 0
    for index in range(1, min(len(buffer), 5)):
        byte = buffer[index]
        remaining += (byte & 0x7F) * multiplier
        if not byte & 0x80:
            total = 1 + index + remaining
            return total if len(buffer) >= total else None
        multiplier *= 128
    if len(buffer) >= 5:
        raise ValueError("malformed remaining length from the broker")
    return None


@dataclass
class _Connection:
    withheld: bool = False


@dataclass
class PublishBlackHole:
    """Listen on ``127.0.0.1:port``; forward to ``upstream``; withhold PUBLISH on demand."""

    upstream_host: str
    upstream_port: int
    host: str = "127.0.0.1"
    port: int = 0
    dropped: int = 0
    _server: asyncio.Server | None = None
    _open: list[_Connection] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def withhold(self) -> None:
        """From now on, connections open now receive no PUBLISH from the broker."""
        for connection in self._open:
            connection.withheld = True

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection()
        self._open.append(connection)
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            writer.close()
            return
        to_broker = asyncio.create_task(self._pipe(reader, up_writer))
        to_client = asyncio.create_task(self._filter(up_reader, writer, connection))
        self._tasks |= {to_broker, to_client}
        try:
            await asyncio.wait({to_broker, to_client}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (to_broker, to_client):
                task.cancel()
            await asyncio.gather(to_broker, to_client, return_exceptions=True)
            self._tasks -= {to_broker, to_client}
            self._open.remove(connection)
            for stream in (writer, up_writer):
                stream.close()
                with contextlib.suppress(OSError):
                    await stream.wait_closed()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()

    async def _filter(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: _Connection
    ) -> None:
        buffer = bytearray()
        while data := await reader.read(65536):
            buffer += data
            while (length := _packet_length(buffer)) is not None:
                packet = bytes(buffer[:length])
                del buffer[:length]
                if connection.withheld and packet[0] >> 4 == PUBLISH:
                    self.dropped += 1
                    continue
                writer.write(packet)
            await writer.drain()
