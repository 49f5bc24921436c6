"""The outbox behind a bounded memory buffer, so a full disk costs no read.

:class:`OutboxSpool` has the outbox's ``submit_many``. When the disk is full
(:class:`~uploader.errors.QueueDiskFull`, after the outbox used its reserve) the
messages wait in memory, in order, unsigned; later messages queue behind them.
:meth:`OutboxSpool.maintain` (every few seconds) and every later submit write
them to the outbox as soon as there is space, oldest first, so the signed chain
keeps its order. Held messages are counted (:attr:`held`, :attr:`held_total`)
and reported (``outbox.held_in_memory``); only past ``limit`` are messages
dropped, loudly: ``outbox.dropped`` at error level, :attr:`dropped`, and the
submit raises :class:`~uploader.errors.QueueDiskFull` saying how many.

What is held is lost if the process dies before space returns: memory is the
last resort, the reserve (:class:`uploader.diskspace.DiskReserve`) the first.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

import structlog

from uploader.envelope import SignedMessage
from uploader.errors import QueueDiskFull, QueueFull
from uploader.outgoing import Outgoing
from uploader.queue import Outbox

__all__ = ["OutboxSpool"]

_log = structlog.get_logger("uploader.spool")
_FLUSH_CHUNK = 500


class OutboxSpool:
    """An :class:`Outbox` that holds up to ``limit`` messages in memory while the disk is full."""

    def __init__(self, outbox: Outbox, *, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        self.outbox = outbox
        self.limit = limit
        self._buffer: deque[Outgoing] = deque()
        self._lock = threading.Lock()
        self.held_total = 0  # messages that went through the buffer
        self.dropped = 0  # messages lost because the buffer was full

    @property
    def held(self) -> int:
        """Messages waiting in memory for disk space."""
        return len(self._buffer)

    def submit_many(self, items: Sequence[Outgoing]) -> list[SignedMessage]:
        """Queue ``items`` durably, or hold them in memory while the disk is full.

        Returns what was written now (empty when held). Raises
        :class:`QueueDiskFull` only for messages dropped past ``limit``.
        """
        with self._lock:
            self._flush()
            if not self._buffer:
                try:
                    return self.outbox.submit_many(items)
                except QueueDiskFull:
                    pass
            self._hold(items)
            return []

    def maintain(self) -> None:
        """Write what is held if there is space now, then the outbox's own housekeeping."""
        with self._lock:
            self._flush()
        self.outbox.maintain()

    def _flush(self) -> None:
        written = 0
        while self._buffer:
            chunk = [self._buffer[i] for i in range(min(_FLUSH_CHUNK, len(self._buffer)))]
            try:
                self.outbox.submit_many(chunk)
            except (QueueDiskFull, QueueFull):
                break
            for _ in chunk:
                self._buffer.popleft()
            written += len(chunk)
        if written:
            _log.info("outbox.memory_flushed", written=written, still_held=len(self._buffer))

    def _hold(self, items: Sequence[Outgoing]) -> None:
        room = max(0, self.limit - len(self._buffer))
        kept, lost = items[:room], items[room:]
        first = not self._buffer
        self._buffer.extend(kept)
        self.held_total += len(kept)
        if kept and (first or len(self._buffer) % 100 < len(kept)):
            _log.warning(
                "outbox.held_in_memory",
                held=len(self._buffer),
                limit=self.limit,
                detail="the disk is full; messages wait in memory until space returns",
            )
        if lost:
            self.dropped += len(lost)
            _log.error(
                "outbox.dropped",
                dropped=len(lost),
                dropped_total=self.dropped,
                limit=self.limit,
                kinds=sorted({item.kind for item in lost}),
            )
            raise QueueDiskFull(
                f"the disk is full and {self.limit} messages already wait in memory: "
                f"{len(lost)} dropped",
                path=self.outbox.path,
            )
