"""Runtime edges: one per compiled edge per session, with its capacity and overflow policy.

An edge holds no queue of its own. Frames waiting for a busy consumer sit in that consumer's
inbox (one deque, arrival order, so per-edge order holds); the edge counts how many of them are
its own, which is what its capacity bounds. `block` makes the producer wait for room;
`drop_oldest` discards the edge's oldest queued data frame to make room instead (control frames
are never dropped: when only control frames fill the edge, it blocks).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from flowspec.frames import Frame, Lane

if TYPE_CHECKING:
    from flowspec.runtime.dispatch import Slot

_DATA = Lane.DATA


class Edge:
    __slots__ = ("name", "target", "port", "capacity", "drop_oldest", "queued", "dropped",
                 "waiters")

    def __init__(
        self, name: str, target: Slot, port: str, capacity: int, drop_oldest: bool
    ) -> None:
        self.name = name
        self.target = target
        self.port = port
        self.capacity = max(1, capacity)
        self.drop_oldest = drop_oldest
        self.queued = 0
        self.dropped = 0
        self.waiters: deque[asyncio.Future[None]] | None = None

    def __repr__(self) -> str:
        return f"Edge({self.name}, queued={self.queued}/{self.capacity})"

    def offer(self, frame: Frame) -> bool:
        """Queue `frame` in the busy target's inbox without waiting. False means: full, wait for
        room. Only the target's `Slot.deliver` calls it."""
        target = self.target
        if self.queued >= self.capacity:
            if not (self.drop_oldest and self._drop_one()):
                return False
        inbox = target.inbox
        if inbox is None:
            inbox = target.inbox = deque()
        inbox.append((self, frame))
        self.queued += 1
        if frame.lane is not _DATA:
            target.held += 1
        return True

    async def put(self, frame: Frame) -> None:
        """Deliver `frame` to a busy target whose share of the inbox is full: wait for room, then
        hand it to `Slot.deliver` again (handled at once if the target went idle meanwhile).

        A data frame that was waiting when an interrupt flushed the target is stale and is
        dropped; so is any frame once the target has stopped."""
        target = self.target
        epoch = target.epoch
        loop = asyncio.get_running_loop()
        while True:
            waiter: asyncio.Future[None] = loop.create_future()
            if self.waiters is None:
                self.waiters = deque()
            self.waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self.wake()  # the room we were given goes to the next waiter
                elif waiter in self.waiters:
                    self.waiters.remove(waiter)
                raise
            if target.epoch != epoch and frame.lane is _DATA:
                return
            if target.deliver(self, frame):
                return

    def take(self) -> str:
        """Account for one of this edge's frames leaving the inbox; returns the target port."""
        self.queued -= 1
        if self.waiters:
            self.wake()
        return self.port

    def wake(self, everyone: bool = False) -> None:
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    return

    def _drop_one(self) -> bool:
        inbox = self.target.inbox
        if not inbox:
            return False
        for index, (edge, frame) in enumerate(inbox):
            if edge is self and frame.lane is _DATA:
                del inbox[index]
                self.queued -= 1
                self.dropped += 1
                self.target.session._frames_dropped(self)
                return True
        return False
