"""Hot reload of a spec's `flow:`.

What a state offers the model is live: its `instructions`, `tools` and `functions` reach the
calls now in that state at once (one `session.update` on Realtime; the next request on
Responses) and the others when they enter it, and its `on_enter` is read as a call enters. The
shape of the flow — its states, transitions, initial state and context strategies — is read as
a call begins: a live call keeps the machine it started with, so it never stands in a state
that no longer exists or follows a transition it was not built with.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from flowspec.reload.diff import Change
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.conversation_rules import conversation_model
from flowspec.spec.models.base import Mutability
from flowspec.spec.models.flow import FlowSpec

LIVE_STATE_FIELDS = ("instructions", "tools", "functions", "on_enter")
"""The fields of a state a live call takes."""
NEW_CALLS = "read when a call begins (live calls keep the states and transitions they began with)"


@runtime_checkable
class FlowHolder(Protocol):
    """A model node that holds a call's flow and takes a live change of it."""

    async def flow_changed(self, flow: FlowSpec, states: frozenset[str]) -> None:
        """`flow` is the call's flow now; `states` are the states whose offer changed."""


def flow_where(parts: list[str], change: Change, old: CompiledGraph,
               new: CompiledGraph) -> tuple[str, str]:
    """Where a change inside `flow:` applies, and why (for `flowspec plan`)."""
    before, after = old.spec.flow, new.spec.flow
    if before is None or after is None or \
            conversation_model(old.spec) != conversation_model(new.spec):
        return "new_sessions", "read when a call begins"
    if len(parts) >= 4 and parts[1] == "states" and parts[3] in LIVE_STATE_FIELDS and \
            parts[2] in before.states and parts[2] in after.states and \
            change.mutability in (Mutability.LIVE, Mutability.UNTIL_FIRST_AUDIO):
        state = parts[2]
        if parts[3] == "on_enter":
            return "live", f"read as a live call next enters {state!r}"
        return "live", (f"live calls now in state {state!r} get it at once, the others as they "
                        f"enter it")
    return "new_sessions", NEW_CALLS


def live_states(changes: list[tuple[Change, str]]) -> frozenset[str]:
    """The states whose offer a plan's live flow changes touch."""
    return frozenset(change.pointer.split("/")[3] for change, applies in changes
                     if applies == "live" and change.pointer.startswith("/flow/states/"))


def merged(live: FlowSpec, new: FlowSpec, states: frozenset[str]) -> FlowSpec:
    """A live call's flow with the new offer of `states` and its own shape."""
    updated: dict[str, Any] = {}
    for name, state in live.states.items():
        if name in states and name in new.states:
            fresh = new.states[name]
            updated[name] = state.model_copy(
                update={field: getattr(fresh, field) for field in LIVE_STATE_FIELDS})
        else:
            updated[name] = state
    return live.model_copy(update={"states": updated})


async def reflow(session: Any, new: FlowSpec, states: frozenset[str]) -> None:
    """Give a live call the new offer of `states`, through the node that holds its flow."""
    call = getattr(session, "call", None)
    if call is None or call.flow is None or not states:
        return
    call.flow = merged(call.flow, new, states)
    node = session.node(call.model) if call.model else None
    if isinstance(node, FlowHolder):
        await node.flow_changed(call.flow, states)
