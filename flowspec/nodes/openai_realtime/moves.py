"""A flow move on a Realtime session: one `session.update` with the new state's instructions
and tools (confirmed by its echo, like a hot reload; refused, the call stays where it was),
what the state's `context` does to the conversation, the call's output, and the answer in the
new state — the model's, or the state's own `on_enter` words."""

from __future__ import annotations

from typing import Any

from flowspec.conversation.flow import Move
from flowspec.nodes.openai_realtime.link import ModelLink
from flowspec.nodes.tool_defs import tool_definitions
from flowspec.runtime.bus import FunctionCallEnded
from flowspec.spec.models.flow import FlowSpec

FUNCTION_OUTPUT = '{"ok": true}'


def state_tools(link: ModelLink) -> list[dict[str, Any]]:
    """The Realtime definitions of the tools the model may call in the current state."""
    assert link.flow is not None
    builtin = link.driver.end_call_tool() if link.driver is not None else None
    found = link.flow.tools({builtin.name or "": builtin} if builtin is not None else {})
    return tool_definitions(list(found), found, "realtime")


def enter_initial(link: ModelLink, variables: dict[str, Any]) -> None:
    """The first session.update already carries the initial state."""
    assert link.flow is not None
    link.settings.enter(link.flow.instructions, state_tools(link),
                        link.flow.values_with(variables))


async def restate(link: ModelLink, flow: FlowSpec, states: frozenset[str]) -> None:
    """A live change of what `states` offer: a call now in one of them gets it at once, as
    the smallest update (nothing, when the change leaves its session as it was)."""
    if link.flow is None:
        return
    link.flow.spec = flow
    if link.flow.state not in states:
        return  # read as the call enters the state
    update = link.settings.move(link.flow.instructions, state_tools(link),
                                link.flow.values_with(link.settings.values),
                                link.ctx.session_id, None)
    await link.send_settings(update)


async def function_called(link: ModelLink, call_id: str, name: str, arguments: str) -> None:
    """A transition-only function: no code runs; its call is the move."""
    assert link.flow is not None
    link.ctx.publish(FunctionCallEnded(session_id=link.ctx.session_id, node_id=link.ctx.node_id,
                                       call_id=call_id, name=name, ok=True, arguments=arguments))
    link.flow.called(call_id, name, arguments)
    move = link.flow.answered(call_id, name, FUNCTION_OUTPUT)
    await answered(link, call_id, FUNCTION_OUTPUT, move)


async def answered(link: ModelLink, call_id: str, output: str, move: Move | None) -> None:
    """A call's result, with the move it makes (if any), reaches the model."""
    if move is None:
        await _output(link, call_id, output)
        if link.calls.answered(call_id):
            await link.request_response()
        return
    assert link.flow is not None
    update = link.settings.move(link.flow.instructions, state_tools(link),
                                link.flow.values_with(link.settings.values),
                                link.ctx.session_id, move)
    await link.send_settings(update)
    if move.context == "reset":
        # The call's own item goes too: an output would answer nothing.
        for item_id in link.history.ids():
            await link.send({"type": "conversation.item.delete", "item_id": item_id})
        link.history.clear()
    else:
        await _output(link, call_id, output)
    words = move.speaks or move.ends
    done = link.calls.answered(call_id, quiet=words)
    if link.driver is not None and (move.on_enter or move.ends):
        link.driver.enter_state(move.on_enter, link.flow.values_with(link.ctx.call.variables))
    if done or (move.context == "reset" and not words):
        await link.request_response()


async def _output(link: ModelLink, call_id: str, output: str) -> None:
    item = {"type": "function_call_output", "call_id": call_id, "output": output}
    if not await link.send({"type": "conversation.item.create", "item": item}):
        link.history.observe({"id": f"output_{call_id}", **item})
