"""The node's ordered output: frames passed downstream in order, flushed of their data frames on
a barge-in, without ever making the receive loop wait for a slow consumer."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from flowspec.frames import Frame, Lane
from flowspec.runtime.dispatch import resume


class Outbox:
    """A frame goes downstream at once, inline in the receive loop, when nothing is queued or being
    written and the consumer takes it without waiting: the common case costs no event-loop turn
    between a model delta arriving and the transport sending it. When the consumer pushes back
    (a full edge), the rest of that write moves into the writer task (`run`) and later frames
    queue behind it, so the receive loop can always act on a barge-in at once."""

    def __init__(self, emit: Callable[[Frame], Coroutine[Any, Any, None]]) -> None:
        self._emit = emit
        self._frames: deque[tuple[int, Frame]] = deque()
        self._ready = asyncio.Event()
        self._epoch = 0
        self._stalled: tuple[Coroutine[Any, Any, None], Any] | None = None
        self._failed: Exception | None = None
        self._writing = False

    def put(self, frame: Frame) -> None:
        if self._frames or self._writing or self._stalled is not None:
            self._frames.append((self._epoch, frame))
            self._ready.set()
            return
        coro = self._emit(frame)
        try:
            step = coro.send(None)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - re-raised in the writer, the node's supervised task
            self._failed = exc
        else:
            self._stalled = (coro, step)
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
            if self._failed is not None:
                failed, self._failed = self._failed, None
                raise failed
            self._writing = True
            try:
                if self._stalled is not None:
                    coro, step = self._stalled
                    try:
                        await resume(coro, step)
                    finally:
                        self._stalled = None
                while self._frames:
                    epoch, frame = self._frames.popleft()
                    if epoch != self._epoch and frame.lane is Lane.DATA:
                        continue  # queued before a barge-in: stale
                    await self._emit(frame)
            finally:
                self._writing = False
