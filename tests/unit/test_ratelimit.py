"""The token bucket on virtual time: the budget holds over every window, waiters stay in order."""

from __future__ import annotations

import asyncio

import pytest

from collectors.udp import TokenBucket, default_burst


class VirtualClock:
    """Time that moves only when a waiter sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def _worst_window(stamps: list[float], window: float) -> int:
    worst, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= window:
            start += 1
        worst = max(worst, end - start + 1)
    return worst


async def test_budget_holds_over_every_one_second_window() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(100, burst=5, clock=clock, sleep=clock.sleep)
    stamps: list[float] = []

    async def sender() -> None:
        for _ in range(50):
            await bucket.acquire()
            stamps.append(clock.now)

    async with asyncio.TaskGroup() as group:
        for _ in range(20):
            group.create_task(sender())
    assert len(stamps) == 1000
    assert _worst_window(stamps, 1.0) <= 100 + 5
    # 1,000 packets at 100/s with 5 up front need at least 9.95 s of (virtual) time.
    assert stamps[-1] - stamps[0] >= (1000 - 5) / 100 - 1e-9
    assert bucket.granted == 1000


async def test_idle_time_refills_only_up_to_the_burst() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(10, burst=3, clock=clock, sleep=clock.sleep)
    clock.now += 3600  # a long idle hour
    before = clock.now
    for _ in range(3):
        await bucket.acquire()
    assert clock.now == before  # the burst is free
    await bucket.acquire()
    assert clock.now == pytest.approx(before + 0.1)


async def test_waiters_are_served_first_come_first_served() -> None:
    clock = VirtualClock()
    bucket = TokenBucket(1, burst=1, clock=clock, sleep=clock.sleep)
    order: list[int] = []

    async def take(number: int) -> None:
        await bucket.acquire()
        order.append(number)

    tasks = []
    for number in range(6):
        tasks.append(asyncio.create_task(take(number)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == list(range(6))


def test_default_burst_is_a_twentieth_of_a_second() -> None:
    assert default_burst(200) == 10
    assert default_burst(5) == 1


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (10, 0.5)])
def test_nonsense_is_refused(rate: float, burst: float | None) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst=burst)


async def test_real_clock_paces_roughly_at_rate() -> None:
    bucket = TokenBucket(200, burst=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(41):
        await bucket.acquire()
    assert loop.time() - started >= 40 / 200 * 0.9
