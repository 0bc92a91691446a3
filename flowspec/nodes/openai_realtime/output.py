"""The node's ordered output: frames to pass downstream, written by one task, and flushed of
their data frames on a barge-in."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from flowspec.frames import Frame, Lane


class Outbox:
    """Ordered output goes through one writer task (`run`), so that the receive loop never
    waits for a slow consumer and can always act on a barge-in at once."""

    def __init__(self, emit: Callable[[Frame], Awaitable[None]]) -> None:
        self._emit = emit
        self._frames: deque[tuple[int, Frame]] = deque()
        self._ready = asyncio.Event()
        self._epoch = 0

    def put(self, frame: Frame) -> None:
        self._frames.append((self._epoch, frame))
        self._ready.set()

    def flush(self) -> None:
        """Drop the data frames not yet written; control and system frames still go out."""
        self._epoch += 1
        self._frames = deque(e for e in self._frames if e[1].lane is not Lane.DATA)

    async def run(self) -> None:
        """The writer; runs until cancelled with the session."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._frames:
                epoch, frame = self._frames.popleft()
                if epoch != self._epoch and frame.lane is Lane.DATA:
                    continue  # queued before a barge-in: stale
                await self._emit(frame)
