"""The conversation's clock: when silences, openings' delays and the longest call run out.

A session reads time through a `Clock`, so a test or a scenario can drive an eight-second
silence by moving a `ManualClock` forward instead of sleeping; in a served call it is the
event loop's own monotonic clock.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    async def sleep_until(self, when: float) -> None:
        """Return once `now()` has reached `when` (at once if it has)."""
        ...


class LoopClock:
    """The running event loop's clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep_until(self, when: float) -> None:
        delay = when - self.now()
        if delay > 0:
            await asyncio.sleep(delay)


class ManualClock:
    """Time that moves only when `advance` is called. Sleepers whose time has come are woken
    in order; `advance` then lets the event loop run what they started."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep_until(self, when: float) -> None:
        if when <= self._now:
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), future))
        await future

    @property
    def sleepers(self) -> int:
        """Sleepers still waiting (cancelled ones excluded)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_wake(self) -> float | None:
        """When the earliest sleeper wakes, or None."""
        live = [when for when, _, f in self._sleepers if not f.done()]
        return min(live) if live else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, waking each sleeper at its own time in order and
        letting the loop run what it does before the next one wakes."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, future = heapq.heappop(self._sleepers)
            if future.done():
                continue
            self._now = max(self._now, when)
            future.set_result(None)
            await settle()
        self._now = target
        await settle()


async def settle(rounds: int = 20) -> None:
    """Let the event loop run what is ready (a few rounds, for chains of wake-ups)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
