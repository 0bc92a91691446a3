"""A flow on a Responses node (HTTP and WebSocket) against the emulator, with scripted tool
calls: each request carries the current state's instructions and tools, a branch table routes
by the tool's result, a transition-only function is answered by the node, `reset` starts the
next request without the old items, `reset_with_summary` with one summary item, and a final
state's words are said before the call ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowspec.conversation.events import CallEnding, FlowTransition
from flowspec.emulator import Emulator
from flowspec.spec.compile import compile_text

from .conftest import Harness, running, until

ROOT = Path(__file__).resolve().parents[3]
TRANSPORTS = pytest.mark.parametrize("transport", ["http", "websocket"])
SCRIPT = """
rules:
  - when: {contains: Summarize the conversation}
    say: The caller Ann wants a table.
  - when: {contains: book}
    call: {name: wants_booking}
  - when: {contains: four people}
    call: {name: check_availability, arguments: {people: 4, time: "19:30"}}
  - when: {contains: twelve people}
    call: {name: check_availability, arguments: {people: 12, time: "20:00"}}
  - when: {contains: that is right}
    call: {name: confirmed}
"""
COLLECT = "Ask how many people are coming and at what time, then check availability."


def booking(emu: Emulator, transport: str, *, collect_context: str = "") -> str:
    """specs/restaurant-booking.yaml's flow on an openai.responses node typed at."""
    text = (ROOT / "specs" / "restaurant-booking.yaml").read_text()
    flow = text[text.index("variables:"):]
    if collect_context:
        flow = flow.replace("      tools: [check_availability]\n",
                            f"      tools: [check_availability]\n"
                            f"      context: {collect_context}\n")
    return f"""
flowspec: 1
name: booking-responses
nodes:
  caller:
    type: transport.text
  host:
    type: openai.responses
    transport: {transport}
    api_key: test
    base_url: {emu.http_base_url}
    ws_url: {emu.ws_base_url}/responses
    tools: [check_availability]
    settings:
      system_instruction: You are the host of Trattoria Nina.
{text[text.index("  check_availability:"):text.index("edges:")]}edges:
  - caller -> host -> caller
{flow}"""


def requests(emulator: Emulator) -> list[dict[str, Any]]:
    """Every request body the emulator's Responses endpoints received, in order."""
    bodies: list[dict[str, Any]] = []
    for record in emulator.of_kind("responses_http") + emulator.of_kind("responses_ws"):
        bodies += [dict(e.get("response") or e) for e in record.received
                   if e.get("type") in (None, "response.create")]
    return bodies


def tool_names(body: dict[str, Any]) -> list[str]:
    return [str(tool["name"]) for tool in body.get("tools") or []]


def texts(body: dict[str, Any]) -> list[str]:
    return [str(part.get("text")) for item in body["input"] if item.get("type") == "message"
            for part in item["content"]]


async def turn(run: Harness, emulator: Emulator, text: str, requests_now: int) -> None:
    await run.say(text)
    await until(lambda: len(requests(emulator)) >= requests_now)


@TRANSPORTS
async def test_each_request_carries_the_state_and_a_branch_table_routes(
        emulator: Emulator, transport: str) -> None:
    emulator.load_script(SCRIPT, text=True)
    graph = compile_text(booking(emulator, transport), env={}).raise_for_errors()
    async with running(graph, variables={"customer_name": "Ann"}) as run:
        await run.wait_answers(1)  # the opening: exact words, no request
        assert requests(emulator) == []
        await turn(run, emulator, "I would like to book a table.", 2)
        first, second = requests(emulator)[:2]
        assert first["instructions"] == ("You are the host of Trattoria Nina.\n\nFind out "
                                         "whether the caller wants to book a table.")
        assert tool_names(first) == ["wants_booking"]
        # The function's call is the move: the node answers it, and the next request is in
        # the new state.
        assert second["instructions"].startswith(f"You are the host of Trattoria Nina.\n\n"
                                                 f"{COLLECT}")
        assert tool_names(second) == ["check_availability"]
        await run.wait_answers(3)
        await turn(run, emulator, "We are twelve people at eight.", 4)
        await run.wait_answers(4)
        full = requests(emulator)[3]
        assert tool_names(full) == ["check_availability"]  # `full` stays in collect
        await turn(run, emulator, "Then four people at half past seven.", 6)
        confirm = requests(emulator)[5]
        assert "Read back the booking for Ann: 4 people at 19:30" in confirm["instructions"]
        assert tool_names(confirm) == ["confirmed", "change_booking"]
        await run.wait_answers(6)
        await run.say("Yes, that is right.")
        await until(lambda: bool(run.of(CallEnding)))
        answers = [text for text, _ in run.answers()]
        assert answers[-1] == "You are all set, Ann. We look forward to seeing you at 19:30!"
        assert len(requests(emulator)) == 7  # the goodbye needed no request
    moves = [(e.source, e.target, e.tool) for e in run.of(FlowTransition)]
    assert moves == [("greet", "collect", "wants_booking"),
                     ("collect", "collect", "check_availability"),
                     ("collect", "confirm", "check_availability"),
                     ("confirm", "done", "confirmed")]
    assert run.of(CallEnding)[0].reason == "end_call"


@TRANSPORTS
async def test_reset_starts_the_state_without_the_old_items(emulator: Emulator,
                                                            transport: str) -> None:
    emulator.load_script(SCRIPT, text=True)
    graph = compile_text(booking(emulator, transport, collect_context="reset"),
                         env={}).raise_for_errors()
    async with running(graph) as run:
        await run.wait_answers(1)
        await turn(run, emulator, "I would like to book a table.", 2)
        before, after = requests(emulator)[:2]
        assert "I would like to book a table." in texts(before)
        # Nothing of greet: not the words, not the call. With no input left, the state's
        # instructions are the request's one message.
        assert [(i["type"], i["role"]) for i in after["input"]] == [("message", "developer")]
        assert COLLECT in after["input"][0]["content"]
        assert "previous_response_id" not in after or after["previous_response_id"] is None


@TRANSPORTS
async def test_reset_with_summary_keeps_one_summary_item(emulator: Emulator,
                                                         transport: str) -> None:
    emulator.load_script(SCRIPT, text=True)
    graph = compile_text(booking(emulator, transport, collect_context="reset_with_summary"),
                         env={}).raise_for_errors()
    async with running(graph, variables={"customer_name": "Ann"}) as run:
        await run.wait_answers(1)
        await turn(run, emulator, "I would like to book a table.", 3)
        bodies = requests(emulator)  # by endpoint: the summary is one HTTP request
        (summary,) = [b for b in bodies if "Summarize the conversation" in texts(b)[-1]]
        assert not summary.get("stream") and "I would like to book a table." in texts(summary)
        (after,) = [b for b in bodies if tool_names(b) == ["check_availability"]]
        assert texts(after) == ["Summary of the conversation so far: The caller Ann wants a "
                                "table."]
        assert after["input"][0]["role"] == "developer"
