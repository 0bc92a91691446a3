"""Responses WebSocket mode through `client.responses.connect()`."""

from __future__ import annotations

import json
from typing import Any

from openai import AsyncOpenAI

from flowspec.emulator import Emulator, parse_script

from .helpers import events_until

TOOLS = [{"type": "function", "name": "lookup_order", "strict": True,
          "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                         "required": ["order_id"], "additionalProperties": False}}]
TERMINAL = ("response.completed", "response.failed", "response.incomplete", "error")


async def until_terminal(conn: Any) -> list[Any]:
    events = []
    async for event in conn:
        events.append(event)
        if event.type in TERMINAL:
            return events
    raise AssertionError("connection closed early")


async def test_text_turn_and_sequence_numbers(emulator: Emulator, client: AsyncOpenAI) -> None:
    async with client.responses.connect() as conn:
        await conn.response.create(model="gpt-4.1", input="good morning")
        events = await until_terminal(conn)
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].response.output[0].content[0].text == "You said: good morning"
    record = emulator.connections[0]
    assert record.kind == "responses_ws" and record.path == "/v1/responses"
    assert record.received_of("response.create")[0]["input"] == "good morning"


async def test_function_call_then_store_false_chain_from_the_connection_cache(
    client: AsyncOpenAI,
) -> None:
    async with client.responses.connect() as conn:
        await conn.response.create(model="gpt-4.1", input="where is my order?", tools=TOOLS,  # type: ignore[arg-type]
                                   store=False)
        first = await until_terminal(conn)
        call = first[-1].response.output[0]
        assert call.type == "function_call" and json.loads(call.arguments) == {
            "order_id": "example"}
        deltas = [e for e in first if e.type == "response.function_call_arguments.delta"]
        assert "".join(e.delta for e in deltas) == call.arguments
        await conn.response.create(
            model="gpt-4.1", store=False, previous_response_id=first[-1].response.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "shipped"}],
        )
        second = await until_terminal(conn)
    assert second[-1].response.output[0].content[0].text == "The tool returned: shipped"
    # The cache is per connection: a new socket cannot continue a store:false response.
    async with client.responses.connect() as conn:
        await conn.response.create(model="gpt-4.1", store=False, input="more",
                                   previous_response_id=second[-1].response.id)
        (error,) = await until_terminal(conn)
    dumped = error.model_dump()
    assert dumped["status"] == 400
    assert dumped["error"]["code"] == "previous_response_not_found"
    assert dumped["error"]["type"] == "invalid_request_error"


async def test_stored_responses_chain_across_connections(client: AsyncOpenAI) -> None:
    async with client.responses.connect() as conn:
        await conn.response.create(model="gpt-4.1", input="remember me")
        first = (await until_terminal(conn))[-1].response
    async with client.responses.connect() as conn:
        await conn.response.create(model="gpt-4.1", input="again", previous_response_id=first.id)
        assert (await until_terminal(conn))[-1].type == "response.completed"


async def test_lanes_are_fifo_and_echo_stream_id(emulator: Emulator, client: AsyncOpenAI) -> None:
    emulator.script = parse_script("rules: [{when: {contains: slow}, stall_ms: 60000}]")
    async with client.responses.connect() as conn:
        await conn.send({"type": "response.create", "model": "m", "input": "slow one",
                         "stream_id": "a"})
        await conn.send({"type": "response.create", "model": "m", "input": "after",
                         "stream_id": "a"})
        await conn.send({"type": "response.create", "model": "m", "input": "quick",
                         "stream_id": "b"})
        events = await events_until(conn, "response.in_progress")
        lane_b = await until_terminal(conn)
        # Lane b finished while lane a's first response stalls; lane a's second has not started.
        assert {e.stream_id for e in lane_b} == {"b"}
        assert lane_b[-1].type == "response.completed"
        await conn.send({"type": "response.cancel", "stream_id": "a"})  # type: ignore[arg-type]
        cancelled = await until_terminal(conn)
        assert cancelled[-1].type == "response.incomplete"
        assert cancelled[-1].response.status == "cancelled"
        follow = await until_terminal(conn)
    assert {getattr(e, "stream_id", None) for e in events + cancelled + follow} == {"a"}
    assert follow[0].type == "response.created"
    assert follow[-1].response.output[0].content[0].text == "You said: after"


async def test_cancel_with_nothing_active_and_bad_messages(client: AsyncOpenAI) -> None:
    async with client.responses.connect() as conn:
        await conn.send({"type": "response.cancel"})  # type: ignore[arg-type]
        assert (await conn.recv()).error.code == "response_cancel_not_active"  # type: ignore[union-attr]
        await conn.send_raw("{nope")
        assert (await conn.recv()).error.code == "invalid_json"  # type: ignore[union-attr]
        await conn.send({"type": "response.frobnicate"})  # type: ignore[arg-type]
        assert (await conn.recv()).error.param == "type"  # type: ignore[union-attr]
        await conn.send({"type": "response.create", "model": "m", "bogus": True})  # type: ignore[arg-type]
        assert (await conn.recv()).error.code == "unknown_parameter"  # type: ignore[union-attr]
        await conn.send({"type": "response.create", "model": "m", "stream_id": "bad id!"})
        assert (await conn.recv()).error.code == "invalid_stream_id"  # type: ignore[union-attr]
        await conn.response.create(model="gpt-4.1", input="still fine")
        assert (await until_terminal(conn))[-1].type == "response.completed"


async def test_scripted_failure_is_nested_with_status(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    emulator.script = parse_script(
        "rules: [{when: {turn: 2}, fail: {type: invalid_request_error,"
        " code: context_length_exceeded, message: too long}}]"
    )
    async with client.responses.connect() as conn:
        await conn.response.create(model="gpt-4.1", input="one", store=False)
        first = (await until_terminal(conn))[-1].response
        await conn.response.create(model="gpt-4.1", input="two", store=False,
                                   previous_response_id=first.id)
        error = (await until_terminal(conn))[-1].model_dump()
        assert error["status"] == 400 and error["error"]["code"] == "context_length_exceeded"
        # A failed continuation evicts its cached parent.
        await conn.response.create(model="gpt-4.1", input="three", store=False,
                                   previous_response_id=first.id)
        again = (await until_terminal(conn))[-1].model_dump()
    assert again["error"]["code"] == "previous_response_not_found"
