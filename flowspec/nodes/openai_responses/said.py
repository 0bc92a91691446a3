"""What a Responses node's caller heard of its spoken replies (a cascade: a speech node says
the text, the transport reports how much of it played).

A reply given to speech is remembered until the next one, as the conversation items it became;
an interruption while it may still be playing cuts those items down to the words heard, so the
model never believes it said what the caller never heard.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from flowspec.conversation.call import Call
from flowspec.nodes.openai_responses import protocol as p

PLAYBACK_WAIT_S = 0.5
"""How long a spoken reply cut short waits for the transport to say where playback stopped."""


@dataclass(frozen=True, slots=True)
class Said:
    """A finished reply a speech node may still be saying: conversation items [start, end)."""

    start: int
    end: int
    items: tuple[str, ...]
    text: str
    generation: int


class SpokenReplies:
    """The last reply of one call given to speech, and what of it was heard."""

    def __init__(self, call: Call) -> None:
        self._call = call
        self.last: Said | None = None

    def given(self, start: int, items: Sequence[str], text: str, generation: int) -> None:
        """A reply whose items start at conversation index `start` went to a speech node."""
        if self._call.spoken.active and items:
            self.last = Said(start, start + 1, tuple(items), text, generation)

    def ends_at(self, end: int) -> None:
        """The last reply's items run up to conversation index `end`."""
        if self.last is not None:
            self.last = dataclasses.replace(self.last, end=end)

    async def heard(self, items: Sequence[str]) -> str | None:
        """The words of `items` the caller heard; None when no speech node says this call's
        text (then what was sent is what the user saw)."""
        spoken = self._call.spoken
        if not spoken.active:
            return None
        if self._call.playback_reported:
            await spoken.settled(items, PLAYBACK_WAIT_S)
        return "".join(spoken.heard(item) for item in items)

    async def truncate(self, conversation: p.Conversation) -> bool:
        """An interruption while the last reply may still be playing: its items keep only
        the words heard. True when the conversation changed (a chain over it is stale)."""
        said, self.last = self.last, None
        if said is None:
            return False
        heard = await self.heard(said.items)
        if heard is None or heard == said.text or said.generation != conversation.generation:
            return False
        conversation.truncate(said.start, said.end, heard)
        return True
