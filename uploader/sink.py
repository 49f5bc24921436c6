"""The asynchronous front of the outbox: each submit returns once its message is durable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from uploader.outgoing import Outgoing
from uploader.queue import Outbox
from uploader.spool import OutboxSpool

__all__ = ["OutboxSink"]


class OutboxSink:
    """Commits messages to the durable outbox, then wakes the publisher.

    Each ``submit`` returns only once its message is durable. Submissions that
    arrive together are committed together (one ``submit_many`` transaction in a
    worker thread), because every commit waits for a disk sync: one read per
    transaction manages a few hundred a second, batches several thousand.
    """

    def __init__(
        self,
        outbox: Outbox | OutboxSpool,
        *,
        on_submit: Callable[[], None] = lambda: None,
        batch: int = 500,
    ) -> None:
        self._outbox = outbox
        self._on_submit = on_submit
        self._batch = batch
        self._waiting: list[tuple[Outgoing, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def submit(self, message: Outgoing) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((message, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="outbox.flush")
        await done

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._batch], self._waiting[self._batch :]
            items = [message for message, _ in batch]
            try:
                await asyncio.to_thread(self._outbox.submit_many, items)
            except Exception as exc:  # every waiter sees the failure: nothing is half-counted
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
            self._on_submit()
