"""Responses over HTTP: `POST /v1/responses` with SSE, JSON, chaining and error paths."""

from __future__ import annotations

import json

import openai
import pytest
from openai import AsyncOpenAI

from flowspec.emulator import Emulator, parse_script

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False},
    "strict": True,
}


async def test_text_stream_events_and_invariants(emulator: Emulator, client: AsyncOpenAI) -> None:
    stream = await client.responses.create(model="gpt-4.1", input="hello there", stream=True)
    events = [event async for event in stream]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[1].type == "response.in_progress"
    assert events[-1].type == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = [e for e in events if e.type == "response.output_text.done"][0]
    assert deltas == done.text == "You said: hello there"
    items = [e.item for e in events if e.type == "response.output_item.done"]
    assert events[-1].response.output == items
    usage = events[-1].response.usage
    assert usage is not None and usage.input_tokens_details.cache_write_tokens == 0
    record = emulator.connections[0]
    assert record.kind == "responses_http" and record.received[0]["stream"] is True


async def test_stream_helper_function_call_then_chained_answer(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    async with client.responses.stream(
        model="gpt-4.1", input="What's the weather in Paris?", tools=[WEATHER]  # type: ignore[list-item]
    ) as stream:
        first = await stream.get_final_response()
    (call,) = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "example"}
    async with client.responses.stream(
        model="gpt-4.1",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    ) as stream:
        second = await stream.get_final_response()
    assert second.output_text == "The tool returned: sunny"
    assert second.previous_response_id == first.id
    assert emulator.connections[1].received[0]["previous_response_id"] == first.id


async def test_non_streaming_create_returns_the_response(client: AsyncOpenAI) -> None:
    response = await client.responses.create(model="gpt-4.1", input="plain")
    assert response.status == "completed" and response.output_text == "You said: plain"


async def test_unknown_or_unstored_parent_is_previous_response_not_found(
    client: AsyncOpenAI,
) -> None:
    unstored = await client.responses.create(model="gpt-4.1", input="x", store=False)
    for parent in ("resp_missing", unstored.id):
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="gpt-4.1", input="y",
                                          previous_response_id=parent, stream=True)
        assert caught.value.code == "previous_response_not_found"
        assert caught.value.param == "previous_response_id"


async def test_bad_request_bodies_get_json_errors(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="gpt-4.1", input="x", extra_body={"bogus": 1})
    assert caught.value.code == "unknown_parameter" and caught.value.param == "bogus"
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(input="x", stream=True)
    assert caught.value.code == "missing_required_parameter"


async def test_scripted_errors_before_and_during_the_stream(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    emulator.script = parse_script(
        """
rules:
  - when: {contains: busy}
    fail: {type: rate_limit_error, code: rate_limit_exceeded, message: Slow down, status: 429}
  - when: {contains: nested}
    fail: {stage: stream, message: boom}
    after_chunks: 1
  - when: {contains: flat}
    fail: {stage: stream, shape: flat, code: server_error, message: flat boom}
"""
    )
    with pytest.raises(openai.RateLimitError) as limited:
        await client.responses.create(model="gpt-4.1", input="busy?", stream=True)
    assert limited.value.code == "rate_limit_exceeded"
    stream = await client.responses.create(model="gpt-4.1", input="nested please", stream=True)
    seen: list[str] = []
    with pytest.raises(openai.APIError, match="boom"):
        async for event in stream:
            seen.append(event.type)
    # The fault fires after exactly one text delta, as scripted.
    assert seen.count("response.output_text.delta") == 1
    stream = await client.responses.create(model="gpt-4.1", input="flat please", stream=True)
    events = [event async for event in stream]
    assert [e.type for e in events][-2:] == ["error", "response.failed"]
    assert events[-2].message == "flat boom"  # type: ignore[union-attr]
    assert events[-1].response.error.code == "server_error"  # type: ignore[union-attr]


async def test_dropped_stream(emulator: Emulator, client: AsyncOpenAI) -> None:
    emulator.script = parse_script("rules: [{when: {contains: drop}, drop: true, after_chunks: 2}]")
    stream = await client.responses.create(model="gpt-4.1", input="drop it now", stream=True)
    seen: list[str] = []
    with pytest.raises(openai.APIError):
        async for event in stream:
            seen.append(event.type)
    assert seen.count("response.output_text.delta") == 2
    assert "response.completed" not in seen
