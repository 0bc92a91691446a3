"""What the node remembers of the conversation: items to re-seed a new connection with, pending
function calls grouped by response, and `conversation.item.retrieve` waiters."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from flowspec.errors import RemoteProtocolError

RETRIEVE_PREFIX = "rci_"


@dataclass(slots=True)
class History:
    """Conversation items as text, in order, keyed by item id.

    Audio is not kept: a new connection is seeded with transcripts (user speech is kept only
    when it was transcribed) and with function calls and their outputs, as items."""

    assistant_part: str
    _items: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._items)

    def observe(self, item: dict[str, Any]) -> None:
        """Record an item the server reports (added, done, or from `response.done`)."""
        item_id = item.get("id")
        kind = item.get("type")
        if not isinstance(item_id, str):
            return
        if kind == "function_call":
            if item.get("name") and item.get("call_id"):
                self._items[item_id] = {"type": "function_call", "call_id": item["call_id"],
                                        "name": item["name"],
                                        "arguments": item.get("arguments") or "{}"}
        elif kind == "function_call_output":
            self._items[item_id] = {"type": "function_call_output", "call_id": item.get("call_id"),
                                    "output": item.get("output") or ""}
        elif kind == "message" and item.get("role") in ("user", "assistant"):
            text = _text(item.get("content"))
            if text:
                self._set_text(item_id, item["role"], text)
            else:
                self._items.setdefault(item_id, {})  # keeps its place until its text arrives

    def transcript(self, item_id: str, role: str, text: str) -> None:
        if text:
            self._set_text(item_id, role, text)

    def truncated(self, item_id: str, heard: str) -> None:
        """After a barge-in, keep only what the user heard of an assistant item."""
        if item_id in self._items:
            self._set_text(item_id, "assistant", heard)

    def _set_text(self, item_id: str, role: str, text: str) -> None:
        part = "input_text" if role == "user" else self.assistant_part
        self._items[item_id] = {"type": "message", "role": role,
                                "content": [{"type": part, "text": text}]}

    def text_of(self, item_id: str) -> str:
        return _text(self._items.get(item_id, {}).get("content"))

    def seed(self) -> list[dict[str, Any]]:
        """The `conversation.item.create` events that rebuild the conversation."""
        items = [item for item in self._items.values() if item and _seedable(item)]
        return [{"type": "conversation.item.create", "item": item} for item in items]

    def ids(self) -> list[str]:
        return list(self._items)

    def clear(self) -> None:
        self._items.clear()


def _seedable(item: dict[str, Any]) -> bool:
    return item.get("type") != "function_call_output" or bool(item.get("call_id"))


def _text(content: Any) -> str:
    if not isinstance(content, list):
        return ""
    words = []
    for part in content:
        if isinstance(part, dict):
            value = part.get("text") or part.get("transcript")
            if isinstance(value, str):
                words.append(value)
    return " ".join(words)


@dataclass(slots=True)
class CallBatch:
    """The function calls of one response: its `response.create` waits for the last result."""

    calls: dict[str, str] = field(default_factory=dict)  # call id -> name
    answered: set[str] = field(default_factory=set)
    quiet: set[str] = field(default_factory=set)
    """Calls whose results want no answer from the model (`end_call` with its own goodbye)."""
    response_done: bool = False

    def complete(self) -> bool:
        return self.response_done and self.answered >= set(self.calls)


class Calls:
    """Function calls in flight, per response."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # call id -> name, from `conversation.item.added`
        self._batches: dict[str, CallBatch] = {}
        self._by_call: dict[str, str] = {}

    def add(self, response_id: str, call_id: str, name: str) -> bool:
        """Register a call; False for one already seen (the server repeats nothing twice, but a
        reconnect might)."""
        if call_id in self._by_call:
            return False
        self._batches.setdefault(response_id, CallBatch()).calls[call_id] = name
        self._by_call[call_id] = response_id
        return True

    def response_done(self, response_id: str) -> bool:
        """Mark the response finished; True when its batch is already complete."""
        batch = self._batches.get(response_id)
        if batch is None:
            return False
        batch.response_done = True
        return self._settle(response_id, batch)

    def answered(self, call_id: str, *, quiet: bool = False) -> bool:
        """Record a result; True when it was the last one its response was waiting for (and
        the model should answer: not when every result of the batch was `quiet`)."""
        response_id = self._by_call.get(call_id)
        batch = self._batches.get(response_id) if response_id is not None else None
        if batch is None:
            return False
        batch.answered.add(call_id)
        if quiet:
            batch.quiet.add(call_id)
        return self._settle(response_id or "", batch)

    def _settle(self, response_id: str, batch: CallBatch) -> bool:
        if not batch.complete():
            return False
        del self._batches[response_id]
        return batch.quiet != set(batch.calls)

    def pending(self) -> bool:
        return bool(self._batches)


class Retrievals:
    """`conversation.item.retrieve` waiters: one request in flight per item, many waiters."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    def waiter(self, item_id: str) -> tuple[asyncio.Future[dict[str, Any]], bool]:
        """The future for `item_id`, and whether the caller must send the request."""
        future = self._waiting.get(item_id)
        if future is not None and not future.done():
            return future, False
        future = asyncio.get_running_loop().create_future()
        self._waiting[item_id] = future
        return future, True

    def resolve(self, item: dict[str, Any]) -> None:
        future = self._waiting.pop(str(item.get("id")), None)
        if future is not None and not future.done():
            future.set_result(item)

    def fail(self, event_id: str, message: str, node_id: str) -> bool:
        """Route an error answering a retrieval; False when it answers something else."""
        if not event_id.startswith(RETRIEVE_PREFIX):
            return False
        future = self._waiting.pop(event_id[len(RETRIEVE_PREFIX):], None)
        if future is not None and not future.done():
            future.set_exception(RemoteProtocolError(node_id, message))
        return True

    def cancel_all(self, node_id: str, reason: str) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(RemoteProtocolError(node_id, reason))
        self._waiting.clear()
