"""Delivering one session's events to a receiver: a bounded queue, one sender, bounded retries.

Nothing here may slow or fail a call. `offer` never waits: when the queue is full the event is
dropped and counted. The sender posts events in order, one at a time; a failed attempt (no
connection, a timeout, HTTP 408, 429 or 5xx) is retried after a doubling pause up to
`max_retries` times, then the event is given up and counted. Other 4xx answers are not retried:
the receiver has said the event is wrong and will say so again.

`Post` is the seam: the node posts through a guarded aiohttp session
(`flowspec.nodes.netguard`), tests may post anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("flowspec.events")

RETRY_STATUSES = frozenset({408, 429})
MAX_BACKOFF_S = 30.0


class PostFailed(Exception):
    """An attempt reached no answer: `reason` is one line for logs (no secret in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Post = Callable[[bytes, dict[str, str]], Awaitable[int]]
"""Send one body with its headers; the HTTP status, or PostFailed when there was none."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event ready to send: its type (for filters and logs), its id and its JSON body."""

    type: str
    id: str
    body: bytes


@dataclass(slots=True)
class Tally:
    """What became of a session's events: delivered, dropped (queue full or out of time) and
    failed (given up after retries or refused by the receiver)."""

    delivered: int = 0
    dropped: int = 0
    failed: int = 0
    attempts: int = 0
    last_error: str = ""
    by_type: dict[str, int] = field(default_factory=dict)


class Delivery:
    """The events of one session to one receiver."""

    def __init__(self, post: Post, headers: Callable[[Outgoing], dict[str, str]], *,
                 capacity: int, max_retries: int, backoff_s: float,
                 on_settled: Callable[[Outgoing, str], None] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._post = post
        self._headers = headers
        self._queue: deque[Outgoing] = deque()
        self._capacity = capacity
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._on_settled = on_settled
        self._sleep = sleep
        self._ready = asyncio.Event()
        self._inflight: asyncio.Future[None] | None = None
        self.tally = Tally()

    def offer(self, event: Outgoing) -> bool:
        """Queue `event` for sending; False (and counted as dropped) when the queue is full."""
        if len(self._queue) >= self._capacity:
            self._lost(event, "dropped", "the queue is full")
            return False
        self._queue.append(event)
        self._ready.set()
        return True

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        """Send queued events in order, for as long as the session lives (cancelled at stop).

        A send in flight when the session cancels this loop carries on, shielded, and `flush`
        waits for it: cancelling it would make the receiver see that event twice."""
        while True:
            await self._ready.wait()
            while self._queue:
                self._inflight = asyncio.ensure_future(self._send(self._queue[0], deadline=None))
                await asyncio.shield(self._inflight)
                self._inflight = None
                self._queue.popleft()
            self._ready.clear()

    async def flush(self, budget_s: float) -> None:
        """Send what is still queued within `budget_s` seconds (the session is ending: this is
        its last word, `call.ended` among it). Whatever is left then is dropped and counted."""
        deadline = time.monotonic() + budget_s
        try:
            async with asyncio.timeout(budget_s):
                if self._inflight is not None:
                    await self._inflight
                    self._inflight = None
                    self._queue.popleft()
                while self._queue:
                    await self._send(self._queue[0], deadline=deadline)
                    self._queue.popleft()
        except TimeoutError:
            pass
        if self._inflight is not None:
            self._inflight.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._inflight
            self._inflight = None
        while self._queue:
            self._lost(self._queue.popleft(), "dropped", "the session ended before it was sent")

    async def _send(self, event: Outgoing, *, deadline: float | None) -> None:
        attempt = 0
        while True:
            self.tally.attempts += 1
            try:
                status = await self._post(event.body, self._headers(event))
            except PostFailed as exc:
                reason = exc.reason
            else:
                if 200 <= status < 300:
                    self.tally.delivered += 1
                    self.tally.by_type[event.type] = self.tally.by_type.get(event.type, 0) + 1
                    if self._on_settled is not None:
                        self._on_settled(event, "delivered")
                    return
                reason = f"HTTP {status}"
                if status < 500 and status not in RETRY_STATUSES:
                    self._lost(event, "failed", f"{reason} (not retried)")
                    return
            if attempt >= self._max_retries:
                self._lost(event, "failed", f"{reason} after {attempt + 1} attempts")
                return
            pause = min(self._backoff_s * (2 ** attempt), MAX_BACKOFF_S)
            if deadline is not None and time.monotonic() + pause > deadline:
                self._lost(event, "failed", f"{reason}; no time left to retry")
                return
            attempt += 1
            await self._sleep(pause)

    def _lost(self, event: Outgoing, how: str, reason: str) -> None:
        if how == "dropped":
            self.tally.dropped += 1
        else:
            self.tally.failed += 1
        self.tally.last_error = reason
        # The first loss of a session is worth a warning; a receiver that is down would turn
        # every later one into noise (the node logs a summary when the session ends).
        first = self.tally.dropped + self.tally.failed == 1
        log.log(logging.WARNING if first else logging.DEBUG, "webhook event %s (%s) %s: %s",
                event.type, event.id, how, reason)
        if self._on_settled is not None:
            self._on_settled(event, how)
