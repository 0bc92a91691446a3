"""Playback tracking: how much of the current assistant item a client has actually played.

Clients buffer the reply audio a transport sends them, so "sent" is not "heard". Clients that can
say what they played (the browser page's `playback` messages, Twilio's echoed `mark`s) confirm a
position from time to time; between confirmations, and for clients that never confirm, playback
is assumed to go on in real time from the last confirmed point, never past what was sent. That
estimate is what an interruption reports (`PlaybackProgressFrame`) so the model can truncate the
item to what the user heard.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from flowspec.frames import BotSpeechEndedFrame, PlaybackProgressFrame
from flowspec.runtime.node import Context

WHOLE_MS = 1.0
"""Clients report positions in whole milliseconds (the page rounds `played_ms`, a Twilio mark
names its position rounded) of audio whose length need not be whole: a position less than this
short of what was sent is all of it."""


class Playback:
    __slots__ = ("_clock", "item_id", "sent_ms", "_played_ms", "_since", "_running")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.item_id: str | None = None
        self.sent_ms = 0.0
        self._played_ms = 0.0
        self._since = 0.0  # clock time of the last confirmed (or assumed) position
        self._running = False  # whether playback runs on from `_played_ms`

    @property
    def active(self) -> bool:
        """Audio of the current item was sent and may still be playing."""
        return self.item_id is not None and self.played_ms() < self.sent_ms

    def sent(self, item_id: str | None, duration_ms: float) -> bool:
        """Account for `duration_ms` of audio sent for `item_id`. True when it starts a new item
        (the previous one is then finished as far as this client is concerned)."""
        key = item_id or ""
        now = self._clock()
        new = key != self.item_id
        if new:
            self.item_id, self.sent_ms, self._played_ms = key, 0.0, 0.0
            self._since, self._running = now, True
        elif not self._running or self.played_ms(now) >= self.sent_ms:
            # The client ran dry before this audio arrived: it starts playing it now.
            self._played_ms, self._since, self._running = self.played_ms(now), now, True
        self.sent_ms += duration_ms
        return new

    def confirmed(self, item_id: str | None, played_ms: float, *,
                  playing: bool | None = None) -> None:
        """A client's report: `played_ms` of `item_id` played, and whether it is still playing
        (None: unless that is all that was sent). Reports about another item (one already
        cleared) are ignored."""
        if (item_id or "") != self.item_id:
            return
        played = min(max(0.0, played_ms), self.sent_ms)
        if self.sent_ms - played < WHOLE_MS:
            played = self.sent_ms
        self._played_ms = played
        self._since = self._clock()
        self._running = played < self.sent_ms if playing is None else playing

    def played_ms(self, now: float | None = None) -> float:
        if not self._running:
            return self._played_ms
        elapsed = ((self._clock() if now is None else now) - self._since) * 1000.0
        return min(self.sent_ms, self._played_ms + max(0.0, elapsed))

    def clear(self) -> tuple[str, int] | None:
        """Stop tracking the current item (a barge-in cleared the client's buffer): returns
        `(item_id, played_ms)` for it, or None when there is no current item."""
        if self.item_id is None:
            return None
        item_id, played = self.item_id, self.played_ms()
        self.item_id, self.sent_ms, self._played_ms, self._running = None, 0.0, 0.0, False
        return item_id, round(played)

    def finished(self) -> str | None:
        """The current item's id once the client confirmed it stopped playing with all of it
        played (and forget it), else None."""
        if self.item_id is None or self._running or self._played_ms < self.sent_ms:
            return None
        item_id, self.item_id = self.item_id, None
        return item_id


async def report_interruption(
    ctx: Context, playback: Playback, clear: Callable[[str | None], Awaitable[None]]
) -> None:
    """An interrupt reached an output transport: drop the client's unplayed audio (`clear`), then
    tell the model how much of the item was heard, and that the bot stopped speaking."""
    progress = playback.clear()
    if progress is None:
        return
    item_id, played_ms = progress
    await clear(item_id or None)
    if item_id:
        await ctx.emit(PlaybackProgressFrame(item_id=item_id, played_ms=played_ms))
    await ctx.emit(BotSpeechEndedFrame(item_id=item_id or None))
