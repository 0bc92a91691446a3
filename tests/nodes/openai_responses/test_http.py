"""`openai.responses` over HTTP with SSE, and tool round trips over both transports."""

from __future__ import annotations

import asyncio
import json

import pytest

from flowspec.emulator import Emulator, parse_script
from flowspec.emulator.records import Kind
from flowspec.errors import NodeTimeout
from flowspec.runtime.bus import CompletionTimeout, FunctionCallsStarted, NodeFailed

from .conftest import compile_graph, running


@pytest.mark.parametrize("transport", ["websocket", "http"])
async def test_a_tool_round_trip(emulator: Emulator, transport: str) -> None:
    async with running(compile_graph(emulator, transport)) as bot:
        await bot.say("what is the weather like?")
        answers = await bot.wait_answers(2)
        (started,) = bot.of(FunctionCallsStarted)
    assert answers[0] == ("", "completed")
    assert answers[1][0].startswith("The tool returned: ") and "example" in answers[1][0]
    (call_id, name), = started.calls
    assert name == "get_weather"
    kind: Kind = "responses_ws" if transport == "websocket" else "responses_http"
    records = emulator.of_kind(kind)
    bodies = (records[0].received_of("response.create") if transport == "websocket"
              else [record.received[0] for record in records])
    assert len(bodies) == 2
    output = bodies[1]["input"][-1]
    assert output["type"] == "function_call_output" and output["call_id"] == call_id
    assert json.loads(output["output"])["location"] == "example"
    if transport == "websocket":
        assert bodies[1]["previous_response_id"] and len(bodies[1]["input"]) == 1
    else:
        assert bodies[1]["stream"] is True and "previous_response_id" not in bodies[1]
        assert [item["type"] for item in bodies[1]["input"]] == [
            "message", "function_call", "function_call_output"]


@pytest.mark.parametrize("shape", ["flat", "nested"])
async def test_both_error_event_shapes_end_the_turn_and_the_session_goes_on(
    emulator: Emulator, shape: str
) -> None:
    emulator.script = parse_script(f"""
rules:
  - when: {{contains: fail}}
    times: 1
    fail: {{type: server_error, code: rate_limit_exceeded, message: Slow down, stage: stream,
           shape: {shape}}}
""")
    async with running(compile_graph(emulator, "http")) as bot:
        await bot.say("please fail")
        await bot.wait_answers(1)
        await bot.say("and now?")
        answers = await bot.wait_answers(2)
        (failure,) = bot.of(NodeFailed)
    assert answers == [("", "failed"), ("You said: and now?", "completed")]
    assert failure.error.code == "rate_limit_exceeded" and not failure.fatal
    assert "Slow down" in str(failure.error)
    sent = emulator.of_kind("responses_http")[0].sent_of("error")[0]
    assert ("error" in sent) is (shape == "nested")


async def test_a_non_2xx_reply_is_an_error_with_its_code(emulator: Emulator) -> None:
    emulator.script = parse_script("""
rules: [{when: {contains: fail}, times: 1,
         fail: {type: invalid_request_error, code: invalid_value, message: Bad input}}]
""")
    async with running(compile_graph(emulator, "http")) as bot:
        await bot.say("fail please")
        await bot.wait_answers(1)
        await bot.say("again")
        answers = await bot.wait_answers(2)
        (failure,) = bot.of(NodeFailed)
    assert answers[1] == ("You said: again", "completed")
    assert failure.error.code == "invalid_value" and failure.error.status == 400
    assert "test-secret-key" not in str(failure.error)


async def test_interruption_closes_the_stream(emulator: Emulator) -> None:
    emulator.script = parse_script("rules: [{when: {contains: story}, stall_ms: 60000}]")
    async with running(compile_graph(emulator, "http")) as bot:
        await bot.say("tell me a long story")
        first = await _wait_http(emulator, 0)
        async with asyncio.timeout(10):
            await first.wait_sent("response.in_progress")
            await bot.interrupt()
            await bot.say("hello")
            await first.wait_closed()
        answers = await bot.wait_answers(2)
    assert answers == [("", "cancelled"), ("You said: hello", "completed")]
    second = emulator.of_kind("responses_http")[1].received[0]
    assert [item["role"] for item in second["input"]] == ["user", "user"]


async def test_a_client_timeout_is_reported_and_ends_the_turn(emulator: Emulator) -> None:
    emulator.script = parse_script("rules: [{when: {contains: slow}, stall_ms: 60000}]")
    graph = compile_graph(emulator, "http", fields="retry_timeout_secs: 0.2")
    async with running(graph) as bot:
        await bot.say("slow please")
        answers = await bot.wait_answers(1)
        (timeout,) = bot.of(CompletionTimeout)
        (failure,) = bot.of(NodeFailed)
    assert answers == [("", "failed")]
    assert timeout.timeout_s == 0.2 and isinstance(failure.error, NodeTimeout)


async def test_retry_on_timeout_retries_once(emulator: Emulator) -> None:
    emulator.script = parse_script("rules: [{when: {contains: slow}, stall_ms: 60000, times: 1}]")
    graph = compile_graph(emulator, "http",
                          fields="retry_timeout_secs: 0.2\nretry_on_timeout: true")
    async with running(graph) as bot:
        await bot.say("slow please")
        answers = await bot.wait_answers(1)
        assert len(bot.of(CompletionTimeout)) == 1 and not bot.of(NodeFailed)
    assert answers == [("You said: slow please", "completed")]
    assert len(emulator.of_kind("responses_http")) == 2


async def _wait_http(emulator: Emulator, index: int):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(10):
        return await emulator.wait_connection("responses_http", index=index)
