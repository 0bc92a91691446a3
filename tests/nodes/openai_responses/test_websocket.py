"""`openai.responses` over WebSocket, against the emulator: chaining, recovery, interruption, and
text that arrives while the connection is down (answered after a reconnect, or an error the
client sees when the provider stays unreachable)."""

from __future__ import annotations

import asyncio

from flowspec.emulator import Emulator, parse_script
from flowspec.errors import NodeError
from flowspec.frames import ErrorFrame
from flowspec.nodes.openai_responses.ws import Backoff
from flowspec.runtime.bus import Metrics, NodeFailed

from .conftest import Wire, compile_graph, running, until


async def test_three_turns_send_the_full_context_once_then_only_new_items(
    emulator: Emulator,
) -> None:
    graph = compile_graph(emulator, settings="temperature: 0.5")
    async with running(graph) as bot:
        for number, text in enumerate(("hello there", "how are you", "goodbye"), start=1):
            await bot.say(text)
            await bot.wait_answers(number)
        assert bot.answers() == [("You said: hello there", "completed"),
                                 ("You said: how are you", "completed"),
                                 ("You said: goodbye", "completed")]
    (record,) = emulator.of_kind("responses_ws")
    first, second, third = record.received_of("response.create")
    done = [event["response"]["id"] for event in record.sent_of("response.completed")]
    assert "previous_response_id" not in first
    assert [item["content"][0]["text"] for item in first["input"]] == ["hello there"]
    assert second["previous_response_id"] == done[0]
    assert second["input"] == [{"type": "message", "role": "user",
                                "content": [{"type": "input_text", "text": "how are you"}]}]
    assert third["previous_response_id"] == done[1] and len(third["input"]) == 1
    for create in (first, second, third):
        assert create["store"] is False and create["instructions"] == "Be brief."
        assert create["temperature"] == 0.5 and "top_p" not in create
        assert create["tools"][0]["name"] == "get_weather" and "stream" not in create
    assert record.headers["Authorization"] == "Bearer test-secret-key"


async def test_a_cache_miss_recovers_with_one_full_context_retry(emulator: Emulator) -> None:
    emulator.script = parse_script("""
rules:
  - when: {turn: 2}
    times: 1
    fail: {type: invalid_request_error, code: previous_response_not_found, status: 400,
           message: "Previous response with id 'x' not found."}
""")
    async with running(compile_graph(emulator)) as bot:
        await bot.say("first")
        await bot.wait_answers(1)
        await bot.say("second")
        answers = await bot.wait_answers(2)
        assert answers == [("You said: first", "completed"), ("You said: second", "completed")]
        assert not bot.of(NodeFailed)
    (record,) = emulator.of_kind("responses_ws")  # no reconnect for a cache miss
    creates = record.received_of("response.create")
    assert len(creates) == 3
    assert "previous_response_id" in creates[1]
    retry = creates[2]
    assert "previous_response_id" not in retry
    assert [item["role"] for item in retry["input"]] == ["user", "assistant", "user"]


async def test_a_dropped_socket_reconnects_and_retries_once_with_full_context(
    emulator: Emulator,
) -> None:
    emulator.script = parse_script("rules: [{when: {contains: drop}, drop: true, times: 1}]")
    async with running(compile_graph(emulator)) as bot:
        await bot.say("hello")
        await bot.wait_answers(1)
        await bot.say("please drop now")
        answers = await bot.wait_answers(2)
        assert answers[1] == ("You said: please drop now", "completed")
        assert len(answers) == 2 and not bot.of(NodeFailed)
        await bot.say("and after")
        await bot.wait_answers(3)
    old, new = emulator.of_kind("responses_ws")
    assert old.received_of("response.create")[1]["previous_response_id"]
    retry, after = new.received_of("response.create")
    assert "previous_response_id" not in retry and len(retry["input"]) == 3
    assert after["previous_response_id"] and len(after["input"]) == 1  # chaining resumes


async def test_connection_limit_reconnects_and_retries_with_full_context(
    emulator: Emulator,
) -> None:
    emulator.script = parse_script("""
rules:
  - when: {turn: 2}
    times: 1
    fail: {type: invalid_request_error, code: websocket_connection_limit_reached,
           message: Connection limit reached, status: 400}
""")
    async with running(compile_graph(emulator)) as bot:
        await bot.say("one")
        await bot.wait_answers(1)
        await bot.say("two")
        assert (await bot.wait_answers(2))[1] == ("You said: two", "completed")
    old, new = emulator.of_kind("responses_ws")
    assert len(old.received_of("response.create")) == 2
    (retry,) = new.received_of("response.create")
    assert "previous_response_id" not in retry and len(retry["input"]) == 3


async def test_interruption_sends_cancel_and_the_next_turn_waits_for_no_drain(
    emulator: Emulator,
) -> None:
    emulator.script = parse_script("rules: [{when: {contains: story}, stall_ms: 60000}]")
    wire = Wire()
    async with running(compile_graph(emulator), connect=wire.connector()) as bot:
        await bot.say("tell me a long story")
        await until(lambda: "recv response.in_progress" in wire.log)
        wire.gate.clear()  # from now on the client hears nothing from the server
        delivered = len([entry for entry in wire.log if entry.startswith("recv")])
        await bot.interrupt()
        await bot.say("hello")
        (record,) = emulator.of_kind("responses_ws")
        async with asyncio.timeout(10):
            await record.wait_received("response.create", count=2)
        # The cancel and the next request went out without a single server event consumed.
        assert len([entry for entry in wire.log if entry.startswith("recv")]) == delivered
        assert [m["type"] for m in record.received] == [
            "response.create", "response.cancel", "response.create"]
        first_id = record.sent_of("response.created")[0]["response"]["id"]
        assert record.received[1]["response_id"] == first_id
        wire.gate.set()
        answers = await bot.wait_answers(2)
    assert answers == [("", "cancelled"), ("You said: hello", "completed")]
    # The stale events of the cancelled response were dropped, not shown to the user.
    assert "recv response.incomplete" in wire.log


async def test_interruption_before_the_response_is_created_cancels_it_when_it_is(
    emulator: Emulator,
) -> None:
    emulator.script = parse_script("rules: [{when: {contains: story}, stall_ms: 60000}]")
    wire = Wire()
    async with running(compile_graph(emulator), connect=wire.connector()) as bot:
        wire.gate.clear()
        await bot.say("tell me a long story")
        (record,) = emulator.of_kind("responses_ws")
        async with asyncio.timeout(10):
            await record.wait_received("response.create")
            await record.wait_sent("response.in_progress")
            await bot.interrupt()  # the client has not seen the response's id yet
            await bot.say("hello")
            await record.wait_received("response.create", count=2)
        assert not [entry for entry in wire.log if entry.startswith("recv")]
        wire.gate.set()
        answers = await bot.wait_answers(2)
    assert answers == [("", "cancelled"), ("You said: hello", "completed")]
    assert [m["type"] for m in record.received] == [
        "response.create", "response.create", "response.cancel"]


async def test_a_nested_error_ends_the_turn_and_the_session_goes_on(emulator: Emulator) -> None:
    emulator.script = parse_script("""
rules:
  - when: {contains: boom}
    times: 1
    fail: {type: server_error, code: server_error, message: The engine stalled, status: 500}
  - when: {contains: late}
    times: 1
    fail: {type: server_error, code: rate_limit_exceeded, message: Slow down, stage: stream}
""")
    async with running(compile_graph(emulator)) as bot:
        for number, text in enumerate(("boom", "late failure", "still there?"), start=1):
            await bot.say(text)
            answers = await bot.wait_answers(number)
        assert answers == [("", "failed"), ("", "failed"), ("You said: still there?",
                                                              "completed")]
        failures = bot.of(NodeFailed)
        assert [f.error.code for f in failures] == ["server_error", "rate_limit_exceeded"]
        assert not any(f.fatal for f in failures)
        assert all(isinstance(f.error, NodeError) and "test-secret-key" not in str(f.error)
                   for f in failures)
        usage = [e.values for e in bot.of(Metrics) if "input_tokens" in e.values]
        assert usage and usage[-1]["total_tokens"] == (usage[-1]["input_tokens"]
                                                     + usage[-1]["output_tokens"])
        assert any("ttfb_ms" in e.values for e in bot.of(Metrics))


async def test_run_inference_works_while_a_turn_streams(emulator: Emulator) -> None:
    emulator.script = parse_script("rules: [{when: {contains: story}, stall_ms: 60000}]")
    async with running(compile_graph(emulator)) as bot:
        await bot.say("tell me a long story")
        (socket,) = emulator.of_kind("responses_ws")
        async with asyncio.timeout(10):
            await socket.wait_sent("response.in_progress")
        text = await bot.node.run_inference([{"role": "user", "content": "quick one"}],
                                            max_tokens=50, system_instruction="Terse.")
        assert text == "You said: quick one"
        assert bot.answers() == []  # the streaming turn is still running
        await bot.interrupt()
    (post,) = emulator.of_kind("responses_http")
    (body,) = post.received
    assert body["stream"] is False and body["max_output_tokens"] == 50
    assert body["instructions"] == "Terse." and "tools" not in body


# -- text while the WebSocket is down ----------------------------------------------------------


async def test_text_sent_after_the_provider_dropped_the_socket_is_answered_after_a_reconnect(
    emulator: Emulator,
) -> None:
    async with running(compile_graph(emulator)) as bot:
        await bot.say("hello")
        await bot.wait_answers(1)
        (first,) = emulator.of_kind("responses_ws")
        assert emulator.drop("responses_ws") == 1  # the provider is gone between turns
        async with asyncio.timeout(10):  # a hang guard
            await first.wait_closed()
        await bot.say("are you there?")
        answers = await bot.wait_answers(2)
        assert answers[1] == ("You said: are you there?", "completed")
        assert not bot.of(NodeFailed)
    old, new = emulator.of_kind("responses_ws")
    assert len(old.received_of("response.create")) == 1
    (retry,) = new.received_of("response.create")
    # A new connection has no cache: the whole conversation goes again, the text once.
    assert "previous_response_id" not in retry
    texts = [part["text"] for item in retry["input"] for part in item["content"]]
    assert texts.count("are you there?") == 1 and len(retry["input"]) == 3


async def test_text_sent_while_the_provider_stays_unreachable_gets_an_error_the_client_sees(
    emulator: Emulator,
) -> None:
    quick = Backoff(attempts=2, first=0.01, limit=0.01)
    async with running(compile_graph(emulator), backoff=quick) as bot:
        await bot.say("hello")
        await bot.wait_answers(1)
        await emulator.stop()
        await bot.say("are you there?")
        async with asyncio.timeout(10):  # a hang guard
            await bot.session.wait()
        (error,) = bot.caller.of(ErrorFrame)
        assert error.fatal and error.node_id == "llm"
        assert "cannot reconnect" in error.message
        assert bot.answers()[1] == ("", "failed")
    (failed,) = bot.of(NodeFailed)
    assert failed.fatal
    assert bot.session.close_reason.startswith("node 'llm' failed")
