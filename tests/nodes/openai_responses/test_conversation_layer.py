"""The conversation layer on a Responses node (HTTP and WebSocket): exact openings need no
request, prompts and seeded context shape the first request, silences and the longest call run
on a manual clock, and the model ends the call with the built-in tool."""

from __future__ import annotations

from typing import Any

import pytest

from flowspec.conversation.clock import ManualClock, settle
from flowspec.conversation.events import CallEnding
from flowspec.emulator import Emulator
from flowspec.runtime.bus import FunctionCallEnded

from .conftest import Harness, compile_graph, running, until

TRANSPORTS = pytest.mark.parametrize("transport", ["http", "websocket"])
TOP = """
variables:
  customer_name: {default: there}
conversation:
"""


def requests(emulator: Emulator) -> list[dict[str, Any]]:
    """Every request body the emulator's Responses endpoints received, in order."""
    bodies: list[dict[str, Any]] = []
    for record in emulator.of_kind("responses_http") + emulator.of_kind("responses_ws"):
        bodies += [dict(e.get("response") or e) for e in record.received
                   if e.get("type") in (None, "response.create")]
    return bodies


async def said(run: Harness, count: int) -> list[str]:
    answers = await run.wait_answers(count)
    return [text for text, _ in answers]


@TRANSPORTS
async def test_an_exact_opening_is_the_first_text_and_needs_no_request(
        emulator: Emulator, transport: str) -> None:
    graph = compile_graph(emulator, transport, top=TOP +
                          "  opening: {say: 'Hello {{customer_name}}, how can I help?'}\n")
    async with running(graph, variables={"customer_name": "Ann"}) as run:
        assert await said(run, 1) == ["Hello Ann, how can I help?"]
        await settle()
        assert requests(emulator) == []
        await run.say("What is my order status?")
        answers = await said(run, 2)
        assert answers[1].startswith("You said:")
        body = requests(emulator)[0]
        roles = [item["role"] for item in body["input"] if item.get("type") == "message"]
        assert roles[:2] == ["assistant", "user"]


@TRANSPORTS
async def test_a_prompt_opening_and_seeded_context_shape_the_first_request(
        emulator: Emulator, transport: str) -> None:
    graph = compile_graph(emulator, transport, instructions="Serve {{customer_name}}.",
                          top=TOP + """  opening: {prompt: Greet the caller.}
  context:
    - {role: system, text: 'Account of {{customer_name}}.'}
    - {role: user, text: I called yesterday.}
""")
    async with running(graph, variables={"customer_name": "Bo"}) as run:
        await said(run, 1)
        body = requests(emulator)[0]
        assert body["instructions"] == "Serve Bo.\n\nGreet the caller."
        texts = [(i["role"], i["content"][0]["text"]) for i in body["input"]]
        assert texts == [("system", "Account of Bo."), ("user", "I called yesterday.")]


@TRANSPORTS
async def test_idle_prompts_then_hang_up(emulator: Emulator, transport: str) -> None:
    clock = ManualClock()
    graph = compile_graph(emulator, transport, top=TOP + """  opening: {say: Hi.}
  idle: {after_s: 5, say: Still there?, max_prompts: 1}
""")
    async with running(graph, clock=clock) as run:
        await said(run, 1)
        await settle()
        await clock.advance(5)
        assert await said(run, 2) == ["Hi.", "Still there?"]
        await clock.advance(5)
        await until(lambda: bool(run.of(CallEnding)))
        assert run.of(CallEnding)[0].reason == "idle"


@TRANSPORTS
async def test_max_duration_says_the_closing_line(emulator: Emulator, transport: str) -> None:
    clock = ManualClock()
    graph = compile_graph(emulator, transport, top=TOP + """  max_duration_s: 30
  closing: {say: Time is up.}
""")
    async with running(graph, clock=clock) as run:
        await settle()
        await clock.advance(30)
        assert await said(run, 1) == ["Time is up."]
        await until(lambda: bool(run.of(CallEnding)))
        assert run.of(CallEnding)[0].reason == "max_duration"


@TRANSPORTS
async def test_the_model_ends_the_call(emulator: Emulator, transport: str) -> None:
    graph = compile_graph(emulator, transport, top=TOP + "  end_call: {}\n")
    async with running(graph) as run:
        await run.say("Please end the call.")
        await until(lambda: bool(run.of(CallEnding)))
        body = requests(emulator)[0]
        assert "end_call" in [t["name"] for t in body["tools"]]
        assert [e.name for e in run.of(FunctionCallEnded)] == ["end_call"]
        answers = await said(run, 2)
        assert answers[-1].startswith("The tool returned")  # the model's own goodbye
        assert run.of(CallEnding)[0].reason == "end_call"
