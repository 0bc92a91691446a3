"""`SpokenText`: what a session's speech node said aloud, item by item, and how much of each item
the caller heard.

A speech node (`openai.speech`) notes each piece of text it sends for synthesis and where the
audio of that piece lies in its assistant item (milliseconds from the item's first audio). The
output transport reports how far it played an item when it is interrupted (`PlaybackProgress`)
or that it played all of it (`BotSpeechEnded`); the model node hands those reports on here. An
interrupted model node then keeps in its context only the words of `heard(item)`: a model that
believes it said what the caller never heard answers the wrong conversation.

A position inside a piece maps to text by its share of the piece's audio (characters are
spoken at a roughly even pace), and a word that had begun is counted as heard. Only the most
recent items are kept.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

MAX_ITEMS = 32
MS_PER_CHAR = 65.0
"""A piece whose audio is still arriving: its whole length guessed from its text."""
ALL = math.inf


@dataclass(slots=True)
class _Piece:
    text: str
    start_ms: float
    end_ms: float
    done: bool = False

    def heard(self, position_ms: float) -> str:
        if position_ms >= self.end_ms and self.done:
            return self.text
        reached = min(position_ms, self.end_ms) - self.start_ms
        length = self.end_ms - self.start_ms if self.done else max(
            self.end_ms - self.start_ms, len(self.text.strip()) * MS_PER_CHAR)
        if reached <= 0 or length <= 0:
            return ""
        cut = math.ceil(len(self.text) * min(1.0, reached / length))
        while cut < len(self.text) and not self.text[cut].isspace():
            cut += 1  # a word that had begun was heard
        return self.text[:cut] if self.text[:cut].strip() else ""


@dataclass(slots=True)
class _Item:
    pieces: list[_Piece] = field(default_factory=list)
    played_ms: float | None = None
    """Where the transport said playback stopped (`ALL`: it played everything it got)."""
    reported: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def audible(self) -> bool:
        return any(piece.end_ms > piece.start_ms for piece in self.pieces)

    @property
    def end_ms(self) -> float:
        return self.pieces[-1].end_ms if self.pieces else 0.0


class SpokenText:
    """One session's spoken items. The speech node writes pieces and audio; the model node
    writes playback reports and reads what was heard. Not thread-safe (one event loop)."""

    def __init__(self) -> None:
        self.active = False
        """A speech node speaks this session's text: what the caller heard is known here."""
        self.speaking = False
        """The speech node has text (or a reply's end) still to pass on."""
        self.on_quiet: Callable[[], None] | None = None
        """Called when the speech node has said all it had (the conversation's driver)."""
        self._items: OrderedDict[str, _Item] = OrderedDict()

    # -- the speech node --------------------------------------------------------------------

    def busy(self, speaking: bool) -> None:
        """The speech node took text to say (True), or has said everything (False)."""
        was, self.speaking = self.speaking, speaking
        if was and not speaking and self.on_quiet is not None:
            self.on_quiet()

    def piece(self, item_id: str, text: str) -> None:
        """`text` (as the model wrote it, spacing kept) goes to synthesis for `item_id`; its
        audio follows the item's audio so far."""
        item = self._item(item_id)
        end = item.end_ms
        item.pieces.append(_Piece(text, end, end))

    def audio(self, item_id: str, duration_ms: float) -> None:
        """Audio of the latest piece of `item_id` was sent on towards the caller."""
        item = self._items.get(item_id)
        if item is not None and item.pieces:
            item.pieces[-1].end_ms += duration_ms

    def piece_done(self, item_id: str) -> None:
        """The latest piece of `item_id` has all its audio (it was not cut short)."""
        item = self._items.get(item_id)
        if item is not None and item.pieces:
            item.pieces[-1].done = True

    # -- the playback reports ---------------------------------------------------------------

    def played(self, item_id: str, played_ms: float) -> None:
        """The transport played `played_ms` of `item_id` before it stopped. Items spoken before
        it were played out: the transport had moved on from them."""
        item = self._items.get(item_id)
        if item is None:
            return
        for earlier_id, earlier in self._items.items():
            if earlier_id == item_id:
                break
            if earlier.played_ms is None and earlier.audible:
                self._report(earlier, ALL)
        self._report(item, max(0.0, played_ms))

    def ended(self, item_id: str | None) -> None:
        """The transport stopped playing `item_id`: all of it, unless a position came first."""
        item = self._items.get(item_id or "")
        if item is not None and item.played_ms is None:
            self.played(item_id or "", ALL)

    # -- the model node ---------------------------------------------------------------------

    def spoken(self, item_ids: Iterable[str]) -> list[str]:
        """Those of `item_ids` the speech node spoke, or is speaking (has text for)."""
        return [item_id for item_id in item_ids if item_id in self._items]

    async def settled(self, item_ids: Iterable[str], timeout_s: float) -> None:
        """Wait, at most `timeout_s`, for a playback report of every item in `item_ids` that
        has audio and none yet."""
        waiting = [item.reported for item_id in item_ids
                   if (item := self._items.get(item_id)) is not None
                   and item.audible and item.played_ms is None]
        if not waiting:
            return
        try:
            async with asyncio.timeout(timeout_s):
                for event in waiting:
                    await event.wait()
        except TimeoutError:
            pass  # no report: all the audio that was sent counts as heard

    def unplayed_ms(self) -> float:
        """The most audio still to be played: all that was sent of the items no report
        covers."""
        return sum(item.end_ms for item in self._items.values()
                   if item.audible and item.played_ms is None)

    def heard(self, item_id: str) -> str:
        """The words of `item_id` the caller heard: up to the reported position, else all of
        the audio sent. Nothing for an item the speech node never spoke."""
        item = self._items.get(item_id)
        if item is None:
            return ""
        position = ALL if item.played_ms is None else item.played_ms
        return "".join(piece.heard(position) for piece in item.pieces)

    def text(self, item_id: str) -> str:
        """All the text of `item_id` that went to synthesis."""
        item = self._items.get(item_id)
        return "".join(piece.text for piece in item.pieces) if item is not None else ""

    # -- helpers ----------------------------------------------------------------------------

    def _item(self, item_id: str) -> _Item:
        item = self._items.get(item_id)
        if item is None:
            item = self._items[item_id] = _Item()
            while len(self._items) > MAX_ITEMS:
                self._items.popitem(last=False)
        return item

    @staticmethod
    def _report(item: _Item, played_ms: float) -> None:
        item.played_ms = played_ms
        item.reported.set()
