"""User input the model cannot take yet: text typed before the session is configured, or while a
lost connection is being restored, waits here (bounded) and leaves in order once it can.

An item stays known after it was sent until the server confirms it (`conversation.item.added`
with the item's own id): a connection that drops in between may have lost it, and then it goes
again on the next one. A confirmed item is in the node's history instead, which re-seeds a new
connection, so nothing is delivered twice. Every item carries a client-made id for that match.
"""

from __future__ import annotations

import uuid
from collections import deque
from typing import Any

MAX_HELD_ITEMS = 16
"""User messages that may wait for the model; one more is refused (and the client told)."""
MAX_HELD_BYTES = 64 * 1024
"""Text that may wait for the model, in UTF-8 bytes."""
MAX_UNCONFIRMED = 64
"""Sent items remembered until the server confirms them. The server confirms within a round
trip; one it refused is never confirmed, and is forgotten past this many."""


def user_text_item(text: str) -> dict[str, Any]:
    """A user message item with an id of its own (the API accepts client ids of up to 32
    characters)."""
    return {"id": f"fsu_{uuid.uuid4().hex[:24]}", "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}]}


def context_item(role: str, text: str, assistant_part: str) -> dict[str, Any]:
    """An item of a conversation's seeded `context` (`assistant_part`: the dialect's part type
    of assistant text)."""
    part = assistant_part if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": part, "text": text}]}


class HeldInput:
    """Items waiting to be sent, then sent and not yet confirmed, in order."""

    def __init__(self, *, max_items: int = MAX_HELD_ITEMS, max_bytes: int = MAX_HELD_BYTES,
                 max_unconfirmed: int = MAX_UNCONFIRMED) -> None:
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._max_unconfirmed = max_unconfirmed
        self._waiting: deque[dict[str, Any]] = deque()
        self._bytes = 0
        self._unconfirmed: dict[str, dict[str, Any]] = {}  # by item id, in the order sent

    def __len__(self) -> int:
        """Items waiting to be sent."""
        return len(self._waiting)

    def hold(self, item: dict[str, Any]) -> bool:
        """Queue `item` behind the others; False (and nothing kept) when the hold is full."""
        size = _size(item)
        if len(self._waiting) >= self._max_items or self._bytes + size > self._max_bytes:
            return False
        self._waiting.append(item)
        self._bytes += size
        return True

    def next(self) -> dict[str, Any] | None:
        """The next item to send (it is then awaited as unconfirmed), or None."""
        if not self._waiting:
            return None
        item = self._waiting.popleft()
        self._bytes -= _size(item)
        self._unconfirmed[item["id"]] = item
        while len(self._unconfirmed) > self._max_unconfirmed:
            del self._unconfirmed[next(iter(self._unconfirmed))]
        return item

    def put_back(self, item: dict[str, Any]) -> None:
        """`item` could not be sent after all: it is the next one again (unless the lost
        connection already put it back, or the server confirmed it meanwhile)."""
        if self._unconfirmed.pop(item["id"], None) is None:
            return
        self._waiting.appendleft(item)
        self._bytes += _size(item)

    def confirmed(self, item_id: str) -> None:
        """The server reported the item: it is in the conversation (and the node's history)."""
        self._unconfirmed.pop(item_id, None)

    def connection_lost(self) -> None:
        """What the lost connection never confirmed waits again, ahead of what never went."""
        if not self._unconfirmed:
            return
        lost = list(self._unconfirmed.values())
        self._unconfirmed.clear()
        self._waiting.extendleft(reversed(lost))
        self._bytes += sum(_size(item) for item in lost)

    def forget_unconfirmed(self) -> None:
        """The conversation was replaced: what was sent belongs to the old one."""
        self._unconfirmed.clear()

    def drop_all(self) -> int:
        """Empty the hold (the model is gone); returns how many items were not delivered."""
        lost = len(self._waiting) + len(self._unconfirmed)
        self._waiting.clear()
        self._unconfirmed.clear()
        self._bytes = 0
        return lost


def _size(item: dict[str, Any]) -> int:
    return sum(len(str(part.get("text", "")).encode()) for part in item.get("content", ()))
