"""The Realtime conversation: items in order, with the audio the server holds for each."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from flowspec.emulator.wire import JSONObject, WireError

PartKind = Literal["input_text", "input_audio", "input_image", "text", "audio"]


@dataclass(slots=True)
class Part:
    """One content part. `text` and `audio` are assistant output parts (dialect-neutral names)."""

    kind: PartKind
    text: str | None = None
    transcript: str | None = None
    audio: bytes = b""
    audio_ms: float = 0.0
    raw: JSONObject | None = None


@dataclass(slots=True)
class Item:
    id: str
    type: Literal["message", "function_call", "function_call_output"]
    role: str | None = None
    status: str = "completed"
    parts: list[Part] = field(default_factory=list)
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None

    def text(self) -> str:
        """The words of this item, as the planner reads them."""
        if self.type == "function_call_output":
            return self.output or ""
        if self.type == "function_call":
            return f"{self.name}({self.arguments})"
        words = [p.text or p.transcript or "" for p in self.parts]
        return " ".join(word for word in words if word)


class Conversation:
    """The default conversation's items; ids are unique and `previous_item_id` orders inserts."""

    def __init__(self) -> None:
        self._items: list[Item] = []

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def last_id(self) -> str | None:
        return self._items[-1].id if self._items else None

    def get(self, item_id: str) -> Item | None:
        return next((item for item in self._items if item.id == item_id), None)

    def require(self, item_id: str, param: str = "item_id") -> Item:
        item = self.get(item_id)
        if item is None:
            raise WireError(
                f"Item with item_id not found: {item_id}", code="item_not_found", param=param
            )
        return item

    def add(self, item: Item, previous_item_id: str | None = None) -> str | None:
        """Insert `item` after `previous_item_id` (`"root"` = first; None = last).

        Returns the id of the item now before it, as `previous_item_id` in server events.
        """
        if self.get(item.id) is not None:
            raise WireError(
                f"Item with id '{item.id}' already exists.", code="item_id_already_exists",
                param="item.id",
            )
        if previous_item_id is None:
            before = self.last_id()
            self._items.append(item)
            return before
        if previous_item_id == "root":
            self._items.insert(0, item)
            return None
        anchor = self.get(previous_item_id)
        if anchor is None:
            raise WireError(
                f"Previous item with id '{previous_item_id}' not found.",
                code="previous_item_not_found",
                param="previous_item_id",
            )
        self._items.insert(self._items.index(anchor) + 1, item)
        return previous_item_id

    def delete(self, item_id: str) -> None:
        self._items.remove(self.require(item_id))

    def last_input(self) -> Item | None:
        """The newest user message or tool output: what the next response answers."""
        for item in reversed(self._items):
            if item.type == "function_call_output" or item.role == "user":
                return item
        return None
