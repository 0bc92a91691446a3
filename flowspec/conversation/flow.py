"""`Flow`: one call's place in the spec's `flow:` — its state, the flow state its transitions
kept, and what a tool's call does to them.

The model node asks the flow what the model may see now (`instructions`, `tools`) and tells
it about each call (`called`) and result (`answered`); the flow says whether that moves the
call, and where. Applying a move is the node's: on Realtime one `session.update`, confirmed by
its echo (a refused one puts the call back with `undo`); on Responses the next request's
instructions and tools. The flow itself never touches a socket.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from flowspec import limits
from flowspec.conversation.events import FlowTransition
from flowspec.runtime.bus import Bus
from flowspec.spec.models.flow import ActionSpec, BranchSpec, FlowSpec, StateSpec
from flowspec.spec.models.tools import ToolNodeSpec

log = logging.getLogger("flowspec.conversation")

MAX_VALUE_CHARS = 2_000
"""Longest flow-state value kept from a tool's result or arguments."""


class FunctionTool(ToolNodeSpec):
    """A transition-only function as a tool definition (never a node of a spec)."""

    type: Literal["flow.function"] = "flow.function"


@dataclass(frozen=True, slots=True)
class Move:
    """A transition decided: from `source` to `target` because of `tool`'s call."""

    source: str
    target: str
    tool: str
    context: str
    on_enter: tuple[ActionSpec, ...]
    kept: Mapping[str, Any] = field(default_factory=dict)
    """The flow state before the move (for `undo`)."""

    @property
    def speaks(self) -> bool:
        """The new state opens with its own words: the model need not answer the result."""
        return any(a.say or a.prompt for a in self.on_enter)

    @property
    def ends(self) -> bool:
        return any(a.end_call for a in self.on_enter)


class Flow:
    """One call's flow. `spec` is the flow as the spec now says (a live change replaces it);
    `tools` are the model node's tool specs by the function name the model sees."""

    def __init__(self, spec: FlowSpec, tools: Mapping[str, ToolNodeSpec],
                 tool_ids: Mapping[str, str], *, session_id: str, node_id: str,
                 bus: Bus) -> None:
        self.spec = spec
        self._tools = dict(tools)
        self._names = dict(tool_ids)  # tool node id -> function name
        self._session_id = session_id
        self._node_id = node_id
        self._bus = bus
        self.state = spec.initial
        self.values: dict[str, Any] = {}
        self._calls: dict[str, tuple[str, str]] = {}  # call id -> (name, arguments)

    @property
    def current(self) -> StateSpec:
        return self.spec.states[self.state]

    # -- what the model sees -----------------------------------------------------------------

    @property
    def instructions(self) -> str:
        """The state's instructions as written: filled, with `values`, where they are sent."""
        return self.current.instructions

    def values_with(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """What the state's templates read: the call's variables, then the flow state."""
        return {**variables, **self.values}

    def tools(self, builtin: Mapping[str, ToolNodeSpec]) -> dict[str, ToolNodeSpec]:
        """The tools the model may call in this state, by function name: the state's, the
        flow's global ones, the state's functions and the conversation's built-ins."""
        found: dict[str, ToolNodeSpec] = {}
        for tool_id in [*self.current.tools, *self.spec.global_tools]:
            name = self._names.get(tool_id)
            if name is not None and name in self._tools:
                found[name] = self._tools[name]
        for name, function in self.current.functions.items():
            found[name] = FunctionTool(name=name, description=function.description,
                                       parameters=function.parameters)
        found.update(builtin)
        return found

    def is_function(self, name: str) -> bool:
        return name in self.current.functions

    # -- what a call does ----------------------------------------------------------------------

    def called(self, call_id: str, name: str, arguments: str) -> None:
        """Remember a call's arguments until its result comes back (bounded)."""
        if len(self._calls) > 256:
            self._calls.clear()
        self._calls[call_id] = (name, arguments)

    def answered(self, call_id: str, name: str, result: str) -> Move | None:
        """The move `name`'s result makes in the current state (None: it makes none)."""
        _, arguments = self._calls.pop(call_id, (name, "{}"))
        transition = self.current.transitions.get(name)
        if transition is None:
            return None
        target, kept = self._decide(transition, _json(arguments), _json(result))
        if target is None:
            return None
        return self._move(name, target, kept)

    def undo(self, move: Move) -> None:
        """A move the provider refused: back to where the call was."""
        log.warning("session %s: flow stays in %r: the move to %r was refused",
                    self._session_id, move.source, move.target)
        self.state = move.source
        self.values = dict(move.kept)

    def _decide(self, transition: str | BranchSpec, arguments: Any,
                result: Any) -> tuple[str | None, dict[str, Any]]:
        if isinstance(transition, str):
            return transition, {}
        sources = {"arguments": arguments, "result": result}
        kept = {name: _clip(_lookup(sources, path)) for name, path in transition.set.items()}
        if transition.to is not None:
            return transition.to, kept
        value = _lookup(sources, transition.on or "")
        key = _as_key(value)
        return transition.cases.get(key, transition.default), kept

    def _move(self, tool: str, target: str, kept: dict[str, Any]) -> Move:
        source, before = self.state, dict(self.values)
        state = self.spec.states[target]
        self.values.update({k: v for k, v in kept.items() if v is not None})
        self.state = target
        self._bus.publish(FlowTransition(session_id=self._session_id, node_id=self._node_id,
                                         source=source, target=target, tool=tool))
        log.info("session %s: flow %s -> %s (%s)", self._session_id, source, target, tool)
        return Move(source, target, tool, state.context or self.spec.context,
                    tuple(state.on_enter), before)


def _json(text: str) -> Any:
    try:
        return limits.loads(text, max_digits=limits.PROVIDER_MAX_NUMBER_DIGITS) \
            if text.strip() else {}
    except ValueError:
        return text


def _lookup(sources: Mapping[str, Any], path: str) -> Any:
    head, *rest = path.split(".") if path else [""]
    value = sources.get(head)
    for part in rest:
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _as_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS]
    if isinstance(value, (dict, list)):
        text = str(value)
        return text[:MAX_VALUE_CHARS]
    return value
