"""A flow on a Responses node: each request carries the current state's instructions and tools
(nothing is sent when a call moves; the next request is the change), a transition-only
function is answered here, and a state's `context` decides what the next request's input
holds: everything (`append`), nothing before the move (`reset`), or a summary of it made by
one bounded `run_inference` call (`reset_with_summary`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from flowspec.conversation.driver import Driver
from flowspec.conversation.flow import Flow, Move
from flowspec.conversation.template import fill_request, render
from flowspec.errors import NodeError
from flowspec.nodes.openai_responses import protocol as p
from flowspec.nodes.tool_defs import tool_definitions
from flowspec.spec.models.tools import ToolNodeSpec

log = logging.getLogger("flowspec.nodes.openai_responses")

FUNCTION_OUTPUT = '{"ok": true}'
"""What a transition-only function's call is answered with."""
SUMMARY_TIMEOUT_S = 10.0
"""Longest a `reset_with_summary` waits for its summary; then the state starts afresh."""
SUMMARY_MAX_TOKENS = 400
SUMMARY_INSTRUCTION = (
    "Summarize the conversation so far in a few sentences for whoever continues it: what the "
    "user wants, what was decided, and any names, numbers and times given. Reply with the "
    "summary only.")

Summarize = Callable[[Sequence[Mapping[str, Any]], int, str], Awaitable[str]]


class FlowTurns:
    """One call's flow as a Responses node's requests see it."""

    def __init__(self, flow: Flow, builtin: Mapping[str, ToolNodeSpec]) -> None:
        self.flow = flow
        self._builtin = dict(builtin)
        self.summary_due = False
        """A move to a `reset_with_summary` state happened: the next request summarizes."""
        self.opened = False
        """A move among the results still awaited opened its state with its own words."""

    # -- what a request carries ----------------------------------------------------------------

    def instructions(self, base: str, variables: Mapping[str, Any]) -> str:
        """The node's instructions, then the state's, both filled (a blank line between)."""
        state = render(self.flow.instructions, self.flow.values_with(variables))
        return f"{base}\n\n{state}" if base and state else base or state

    def tools(self, variables: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The Responses definitions of the tools the model may call in this state."""
        found = self.flow.tools(self._builtin)
        tools = tool_definitions(list(found), found, "responses")
        values = self.flow.values_with(variables)
        filled: list[dict[str, Any]] = fill_request({"tools": tools}, values)["tools"] \
            if values else tools
        return filled

    # -- what the model's calls do -----------------------------------------------------------

    def split(self, calls: Sequence[p.FunctionCall]) -> tuple[list[p.FunctionCall],
                                                              list[p.FunctionCall]]:
        """(transition-only function calls, calls that go to their tools), remembering the
        latter's arguments for the transition their result may make."""
        functions, rest = [], []
        for call in calls:
            if self.flow.is_function(call.name):
                functions.append(call)
            else:
                self.flow.called(call.call_id, call.name, call.arguments)
                rest.append(call)
        return functions, rest

    def answer_functions(self, calls: Sequence[p.FunctionCall], inbox: list[p.JSONObject],
                         enter: Callable[[Move], bool],
                         ended: Callable[[p.FunctionCall], None]) -> tuple[
                             list[p.FunctionCall], bool]:
        """Answer the state's transition-only functions among `calls` (their call is the
        move; `enter` applies it). Returns the calls that go to their tools, and whether the
        model is to answer."""
        functions, rest = self.split(calls)
        answer = False
        for call in functions:
            ended(call)
            inbox.append(p.function_output(call.call_id, FUNCTION_OUTPUT))
            self.flow.called(call.call_id, call.name, call.arguments)
            move = self.flow.answered(call.call_id, call.name, FUNCTION_OUTPUT)
            answer = (enter(move) if move is not None else True) or answer
        return rest, answer

    def result_move(self, call_id: str, name: str, result: str) -> Move | None:
        return self.flow.answered(call_id, name, result)

    def enter(self, move: Move, conversation: p.Conversation, inbox: list[p.JSONObject],
              driver: Driver | None, variables: Mapping[str, Any]) -> bool:
        """A move: the outputs so far join the context the new state keeps (all of it,
        none, or a summary, by its `context`), and its `on_enter` runs. True when the model is
        to answer in the new state (the state does not open with words of its own)."""
        # The calls' outputs belong to the turn that made the move; what the caller said
        # meanwhile is the new state's to answer, and no reset may drop it.
        outputs = [item for item in inbox if item.get("type") == "function_call_output"]
        inbox[:] = [item for item in inbox if item.get("type") != "function_call_output"]
        conversation.extend(outputs)
        self._context(move, conversation)
        if driver is not None and (move.on_enter or move.ends):
            driver.enter_state(move.on_enter, self.flow.values_with(variables))
        return not (move.speaks or move.ends)

    def _context(self, move: Move, conversation: p.Conversation) -> None:
        if move.context == "reset":
            conversation.reset()  # the outputs with it: their calls are gone too
        elif move.context == "reset_with_summary":
            self.summary_due = True

    async def summarize(self, conversation: p.Conversation, summarize: Summarize,
                        node_id: str) -> None:
        """Replace the items so far with one summary of them, made within the time bound; a
        summary that fails or is late leaves the state starting afresh."""
        self.summary_due = False
        items = list(conversation.items)
        text = ""
        if items:
            try:
                async with asyncio.timeout(SUMMARY_TIMEOUT_S):
                    text = await summarize(items, SUMMARY_MAX_TOKENS, SUMMARY_INSTRUCTION)
            except (TimeoutError, NodeError) as exc:
                log.warning("%s: no summary of the conversation (%s); the state %r starts "
                            "without it", node_id, exc or "timed out", self.flow.state)
        conversation.reset()
        if text.strip():
            conversation.extend([p.seeded_message(
                "developer", f"Summary of the conversation so far: {text.strip()}")])
