"""What a flow move does to a Responses node's items: the calls' outputs join the context the
new state keeps, and what the caller said meanwhile waits for the new state, even through a
reset."""

from __future__ import annotations

import dataclasses

from flowspec.conversation.flow import Flow
from flowspec.nodes.openai_responses import protocol as p
from flowspec.nodes.openai_responses.flow_turns import FlowTurns
from flowspec.runtime.bus import Bus
from flowspec.spec.models.flow import FlowSpec

FLOW = FlowSpec.model_validate({
    "initial": "a",
    "states": {
        "a": {"instructions": "A.", "functions": {"go": {"description": "Go on."}},
              "transitions": {"go": "b"}},
        "b": {"instructions": "B.", "context": "reset", "final": True},
    },
})


def turns() -> FlowTurns:
    return FlowTurns(Flow(FLOW, {}, {}, session_id="s", node_id="llm", bus=Bus()), {})


def test_a_reset_keeps_what_the_caller_said_during_the_move() -> None:
    flow = turns()
    conversation = p.Conversation()
    conversation.extend([p.user_message("Go on, please.")])
    inbox = [p.function_output("c1", '{"ok": true}'), p.user_message("And hurry.")]
    flow.flow.called("c1", "go", "{}")
    move = flow.flow.answered("c1", "go", '{"ok": true}')
    assert move is not None and move.context == "reset"
    assert flow.enter(move, conversation, inbox, None, {}) is True
    assert conversation.items == []  # the old state's items and the call's output are gone
    assert inbox == [p.user_message("And hurry.")]


def test_appending_keeps_the_output_after_its_call() -> None:
    flow = turns()
    conversation = p.Conversation()
    call = {"type": "function_call", "call_id": "c1", "name": "go", "arguments": "{}"}
    conversation.extend([call])
    inbox = [p.user_message("Meanwhile."), p.function_output("c1", '{"ok": true}')]
    flow.flow.called("c1", "go", "{}")
    move = flow.flow.answered("c1", "go", '{"ok": true}')
    assert move is not None
    flow.enter(dataclasses.replace(move, context="append"), conversation, inbox, None, {})
    assert conversation.items == [call, p.function_output("c1", '{"ok": true}')]
    assert inbox == [p.user_message("Meanwhile.")]
