"""An asyncio token bucket: the sweep's packets-per-second budget (docs/reading.md).

The clock and the sleep are injectable so that unit tests run on virtual time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

# Float dust: after sleeping the exact deficit, refill may land a hair below one token.
_EPSILON = 1e-9


class TokenBucket:
    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate!r} (use None for no limit)")
        self.rate = float(rate)
        self.burst = float(burst) if burst is not None else default_burst(rate)
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst!r}")
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._stamp = clock()
        self._lock = asyncio.Lock()
        self.granted = 0

    async def acquire(self) -> None:
        """Wait for one token; waiters are served first come, first served."""
        async with self._lock:
            while True:
                now = self._clock()
                if now > self._stamp:
                    self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1 - _EPSILON:
                    break
                await self._sleep((1 - self._tokens) / self.rate)
            self._tokens = max(0.0, self._tokens - 1)
            self.granted += 1


def default_burst(rate: float) -> float:
    """A twentieth of a second's worth of packets, at least one: smooth, yet cheap to schedule."""
    return max(1.0, rate / 20)
