"""Shared pieces: random JSON values, mutations of valid messages, and a scripted Realtime wire
(the node's `Connector` seam) that plays server events a test hands it."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

from hypothesis import strategies as st

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `value` (dict keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, samples: list[dict[str, Any]]) -> Any:
    """A valid sample with a few values replaced by random JSON or removed; sometimes the whole
    message replaced, or its `type` kept and everything else random."""
    base = copy.deepcopy(draw(st.sampled_from(samples)))
    match draw(st.integers(0, 9)):
        case 0:
            return draw(JSON)
        case 1:
            return {"type": base.get("type"), **draw(st.dictionaries(st.text(max_size=8), JSON,
                                                                   max_size=4))}
        case _:
            pass
    for _ in range(draw(st.integers(1, 3))):
        targets = paths(base)
        if not targets:
            break
        path = draw(st.sampled_from(targets))
        parent = base
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON)
    return base


class ScriptedWire:
    """One Realtime connection whose server side is the test: `push` queues server events,
    `received` records client events. Answers `session.update` with `session.updated`."""

    def __init__(self, session: Mapping[str, Any]) -> None:
        self.inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.received: list[dict[str, Any]] = []
        self.closed = False
        self._session = dict(session)
        self.push({"type": "session.created", "session": dict(session)})

    def push(self, event: Any) -> None:
        self.inbox.put_nowait(event)

    async def send(self, event: Mapping[str, Any]) -> None:
        from flowspec.errors import TransportError

        if self.closed:
            raise TransportError("llm", "closed")
        self.received.append(dict(event))
        if event.get("type") == "session.update":
            self.push({"type": "session.updated", "session": self._session})

    async def receive(self) -> dict[str, Any] | None:
        if self.closed:
            return None
        event = await self.inbox.get()
        if event is None:
            self.closed = True
        return event

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.inbox.put_nowait(None)


class ScriptedConnector:
    """The node's `Connector`: every connection is a new `ScriptedWire`."""

    def __init__(self, session: Mapping[str, Any]) -> None:
        self.session = session
        self.wires: list[ScriptedWire] = []
        self.connected = asyncio.Event()

    async def __call__(self, url: str, headers: Mapping[str, str], node_id: str) -> ScriptedWire:
        wire = ScriptedWire(self.session)
        self.wires.append(wire)
        self.connected.set()
        return wire
