"""The outbox behind a bounded memory buffer, so a full disk costs no read.

:class:`OutboxSpool` has the outbox's ``submit_many``. When the disk is full
(:class:`~uploader.errors.QueueDiskFull`) the messages wait in memory,
unsigned, until the outbox takes them; they are signed when written, so the
chain has no gap whatever the order.

The reserve comes first: while the outbox's reserve is released it takes
billing reads only (:meth:`~uploader.queue.Outbox.accepts`), so a held event or
status never keeps a read out of it: held and new reads are written into the
reserve, in the order taken, and only what it refuses stays in memory.
:meth:`OutboxSpool.maintain` (every few seconds) and every later submit write
what is held as soon as the outbox takes it, oldest first within each kind,
in chunks that shrink when the space left is small. Held messages are counted
(:attr:`held`, :attr:`held_total`) and reported (``outbox.held_in_memory``);
only past ``limit`` are messages dropped, newest first and loudly:
``outbox.dropped`` at error level, :attr:`dropped`, and the submit raises
:class:`~uploader.errors.QueueDiskFull` saying how many.

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

        Returns what was written now (held messages written first included).
        Raises :class:`QueueDiskFull` only for messages dropped past ``limit``.
        """
        with self._lock:
            if not self._buffer:
                try:
                    return self.outbox.submit_many(items)
                except QueueDiskFull:
                    pass
            before = len(self._buffer)
            self._buffer.extend(items)
            written = self._flush()  # what the reserve takes goes there, not to memory
            self._bound(before, len(items))
            return written

    def maintain(self) -> None:
        """Write what is held if there is space now, then the outbox's own housekeeping."""
        with self._lock:
            self._flush()
        self.outbox.maintain()
        if self._buffer:  # the reserve may be back: events and status are taken again
            with self._lock:
                self._flush()

    def _flush(self) -> list[SignedMessage]:
        """Write held messages the outbox takes, oldest first, until it refuses one."""
        written: list[SignedMessage] = []
        size = _FLUSH_CHUNK
        while self._buffer:
            picked = [i for i, item in enumerate(self._buffer) if self.outbox.accepts(item.kind)]
            chunk = picked[:size]
            if not chunk:
                break
            try:
                written += self.outbox.submit_many([self._buffer[i] for i in chunk])
            except (QueueDiskFull, QueueFull):
                if len(chunk) == 1:
                    break
                size = 1  # little space left (the reserve): one at a time, growing again
                continue
            taken = set(chunk)
            self._buffer = deque(m for i, m in enumerate(self._buffer) if i not in taken)
            size = min(_FLUSH_CHUNK, size * 2)
        if written:
            _log.info("outbox.memory_flushed", written=len(written), still_held=len(self._buffer))
        return written

    def _bound(self, before: int, added: int) -> None:
        """Count and report what stays held; drop the newest past ``limit``, loudly."""
        lost = max(0, len(self._buffer) - self.limit)
        dropped = [self._buffer.pop() for _ in range(lost)]
        self.held_total += added - lost
        held = len(self._buffer)
        if held and (before == 0 or held // 100 != before // 100):
            _log.warning(
                "outbox.held_in_memory",
                held=held,
                limit=self.limit,
                detail="the disk is full; messages wait in memory until space returns",
            )
        if dropped:
            self.dropped += lost
            _log.error(
                "outbox.dropped",
                dropped=lost,
                dropped_total=self.dropped,
                limit=self.limit,
                kinds=sorted({item.kind for item in dropped}),
            )
            raise QueueDiskFull(
                f"the disk is full and {self.limit} messages already wait in memory: "
                f"{lost} dropped",
                path=self.outbox.path,
            )
