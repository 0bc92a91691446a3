"""The assistant's output turns, and what the user actually heard of them.

One turn spans a response from its first output to `response.done` (a GA response with several
items continues the same turn). For each assistant item the node counts the audio it received
and passed on; the output transport reports the milliseconds it has played. On a barge-in the
item is truncated to what was played, never past what was received, so the server can never
answer "audio content is already shorter than ...".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from flowspec.audio import AudioFormat


@dataclass(slots=True, eq=False)
class OutputItem:
    """Bookkeeping of one assistant item with audio."""

    item_id: str
    content_index: int
    response_id: str | None
    generation: int
    """The connection it was created on: item ids mean nothing to a later connection."""
    received_ms: float = 0.0
    played_ms: float | None = None
    first_audio_at: float | None = None
    playing: bool = False
    stopped: asyncio.Event = field(default_factory=asyncio.Event)

    def audio_end_ms(self, now: float, reported: bool) -> int:
        """Where to truncate: the transport's played figure (`reported`: the transport reports
        playback, so no figure means nothing played), or, from a transport that reports nothing,
        the time since the first audio; never more than the audio received."""
        if self.played_ms is not None:
            heard = self.played_ms
        elif reported:
            heard = 0.0
        elif self.first_audio_at is not None:
            heard = (now - self.first_audio_at) * 1000.0
        else:
            heard = 0.0
        return max(0, int(min(heard, self.received_ms)))


class Turns:
    """Output turn state: the current turn, the audio items, and responses to drop."""

    def __init__(self) -> None:
        self.open = False
        self.response_id: str | None = None
        self.current: OutputItem | None = None
        self.items: dict[str, OutputItem] = {}
        self.interrupted: set[str] = set()
        """Responses (by id) whose late output is dropped after a barge-in."""
        self.reports_playback = False
        """True once the output transport reported playback: then its figures are awaited."""

    def start(self, response_id: str | None) -> bool:
        """Mark the turn open; True when this opened it (emit the started frame)."""
        if self.open:
            return False
        self.open = True
        self.response_id = response_id
        return True

    def end(self) -> bool:
        """Close the turn; True when it was open (emit the ended frame)."""
        was_open, self.open = self.open, False
        return was_open

    def dropped(self, response_id: str | None) -> bool:
        return response_id is not None and response_id in self.interrupted

    def audio(self, item_id: str, content_index: int, response_id: str | None, nbytes: int,
              fmt: AudioFormat, generation: int, now: float) -> OutputItem:
        item = self.items.get(item_id)
        if item is None:
            item = self.items[item_id] = OutputItem(item_id, content_index, response_id,
                                                    generation)
            # Only one item can be heard at a time: the newest is the one to truncate.
            self.current = item
        if item.first_audio_at is None:
            item.first_audio_at = now
        item.received_ms += fmt.duration_ms(nbytes)
        item.stopped.clear()
        return item

    def progress(self, item_id: str, played_ms: float) -> None:
        self.reports_playback = True
        item = self.items.get(item_id)
        if item is not None:
            item.played_ms = played_ms
            item.playing = True

    def playback_started(self, item_id: str | None) -> None:
        self.reports_playback = True
        item = self.items.get(item_id) if item_id else self.current
        if item is not None:
            item.playing = True

    def playback_stopped(self, item_id: str | None) -> None:
        self.reports_playback = True
        targets = [self.items[item_id]] if item_id in self.items else list(self.items.values())
        for item in targets:
            item.playing = False
            item.stopped.set()

    def interrupt(self) -> OutputItem | None:
        """Take the item to truncate, if any, and drop the rest of its response."""
        item, self.current = self.current, None
        if self.response_id is not None and self.open:
            self.interrupted.add(self.response_id)
        if item is None:
            return None
        if item.response_id is not None:
            self.interrupted.add(item.response_id)
        return item

    def forget(self, item: OutputItem) -> None:
        self.items.pop(item.item_id, None)

    def reset(self) -> None:
        """A new connection: nothing of the old one can be truncated any more."""
        self.current = None
        self.items.clear()
        self.interrupted.clear()
