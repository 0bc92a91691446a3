"""Random and mutated input to every message parser a client or a provider can reach.

Each property: the input is tolerated (ignored) or reported (an `error` reply, a bus event), the
parser never raises out of its loop, and a valid message sent afterwards still works: the receive
loop is alive. Sizes come from the hypothesis profile in conftest.py.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowspec.frames import EndFrame, TextFrame
from flowspec.nodes.openai_realtime.node import RealtimeNode
from flowspec.nodes.openai_responses import protocol as rp
from flowspec.nodes.openai_responses.sse import SseDecoder
from flowspec.runtime import Bus, Executor
from flowspec.runtime.bus import ClientMessageRejected, NodeFailed
from flowspec.spec.compile import compile_text
from flowspec.spec.models.transports import TwilioTransportSpec, WebsocketTransportSpec
from flowspec.testing import RecorderNode, capture_events, graph, make_registry, until
from flowspec.transports.twilio import TwilioTransport
from flowspec.transports.websocket import WebsocketTransport
from flowspec.transports.wire import Connection, MemorySocketPair

from .conftest import Figures
from .helpers import JSON, ScriptedConnector, mutated

# -- Realtime server events ------------------------------------------------------------------

AUDIO = base64.b64encode(bytes(480)).decode()
GA_SESSION = {"type": "realtime", "output_modalities": ["audio"], "audio": {
    "input": {"format": {"type": "audio/pcm", "rate": 24000},
              "turn_detection": {"type": "server_vad"}},
    "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}}}
BETA_SESSION = {"modalities": ["audio", "text"], "input_audio_format": "pcm16",
                "output_audio_format": "pcm16", "turn_detection": {"type": "server_vad"}}
ITEM = {"id": "item_1", "type": "message", "role": "assistant", "status": "completed",
        "content": [{"type": "output_text", "text": "hi"}]}
CALL = {"id": "item_2", "type": "function_call", "call_id": "call_1", "name": "get_weather",
        "arguments": "{\"location\": \"Paris\"}", "status": "completed"}
REALTIME_EVENTS: list[dict[str, Any]] = [
    {"type": "session.updated", "session": GA_SESSION},
    {"type": "error", "error": {"type": "invalid_request_error", "code": "invalid_value",
                                "message": "bad", "event_id": "fs_1"}},
    {"type": "input_audio_buffer.speech_started", "audio_start_ms": 10, "item_id": "item_u"},
    {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 900, "item_id": "item_u"},
    {"type": "input_audio_buffer.committed", "item_id": "item_u", "previous_item_id": None},
    {"type": "conversation.item.added", "item": ITEM, "previous_item_id": None},
    {"type": "conversation.item.done", "item": CALL},
    {"type": "conversation.item.retrieved", "item": ITEM},
    {"type": "conversation.item.input_audio_transcription.delta", "item_id": "item_u",
     "content_index": 0, "delta": "hel"},
    {"type": "conversation.item.input_audio_transcription.completed", "item_id": "item_u",
     "content_index": 0, "transcript": "hello"},
    {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}},
    {"type": "response.output_audio.delta", "response_id": "resp_1", "item_id": "item_1",
     "output_index": 0, "content_index": 0, "delta": AUDIO},
    {"type": "response.output_audio_transcript.delta", "response_id": "resp_1",
     "item_id": "item_1", "delta": "Hi"},
    {"type": "response.output_audio_transcript.done", "response_id": "resp_1",
     "item_id": "item_1", "transcript": "Hi there"},
    {"type": "response.output_text.delta", "response_id": "resp_1", "item_id": "item_1",
     "delta": "Hi"},
    {"type": "response.output_text.done", "response_id": "resp_1", "item_id": "item_1",
     "text": "Hi there"},
    {"type": "response.function_call_arguments.done", "response_id": "resp_1",
     "item_id": "item_2", "call_id": "call_1", "name": "get_weather",
     "arguments": "{\"location\": \"Paris\"}"},
    {"type": "response.done", "response": {
        "id": "resp_1", "status": "completed", "output": [ITEM, CALL],
        "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7,
                  "input_token_details": {"cached_tokens": 1},
                  "output_token_details": {"reasoning_tokens": 0}}}},
    {"type": "response.done", "response": {
        "id": "resp_1", "status": "failed",
        "status_details": {"error": {"type": "server_error", "code": "x", "message": "y"}}}},
    {"type": "rate_limits.updated", "rate_limits": [{"name": "requests", "remaining": 1}]},
    {"type": "a.type.nobody.knows", "payload": [1, 2, 3]},
]
BETA_RENAMES = {"response.output_audio.delta": "response.audio.delta",
                "response.output_audio_transcript.delta": "response.audio_transcript.delta",
                "response.output_audio_transcript.done": "response.audio_transcript.done",
                "response.output_text.delta": "response.text.delta",
                "response.output_text.done": "response.text.done",
                "conversation.item.added": "conversation.item.created"}
BETA_EVENTS = [{**e, "type": BETA_RENAMES.get(e["type"], e["type"])} for e in REALTIME_EVENTS]
BETA_EVENTS[0] = {"type": "session.updated", "session": BETA_SESSION}

REALTIME_SPEC = """\
flowspec: 1
name: fuzz
nodes:
  caller: {{type: transport.websocket}}
  llm:
    type: {kind}
    base_url: ws://127.0.0.1:9/v1/realtime
    api_key: test
    tools: [get_weather]
  get_weather:
    type: tool.python
    handler: flowspec.examples.weather:get_weather
    description: Weather.
    parameters: {{type: object, properties: {{location: {{type: string}}}}}}
edges:
  - caller -> llm -> caller
"""
PROBE: list[dict[str, Any]] = [
    {"type": "response.created", "response": {"id": "probe"}},
    {"type": "response.output_text.delta", "response_id": "probe", "item_id": "probe_item",
     "delta": "PROBE"},
    {"type": "response.done", "response": {"id": "probe", "status": "completed", "output": []}},
]


async def realtime_survives(kind: str, events: list[Any]) -> list[NodeFailed]:
    """Play `events` to a live Realtime node, then a valid text response: the probe must reach
    the caller. Returns the node failures seen."""
    beta = kind == "openai.realtime_beta"
    graph_ = compile_text(REALTIME_SPEC.format(kind=kind), env={}).raise_for_errors()
    connector = ScriptedConnector(BETA_SESSION if beta else GA_SESSION)
    registry = make_registry()
    registry.register("transport.websocket", RecorderNode)
    registry.register(kind, functools.partial(RealtimeNode, connect=connector,
                                              reconnect_delays=(0, 0, 0)))
    bus = Bus()
    with capture_events(bus, NodeFailed) as failures:
        async with Executor(registry=registry, bus=bus).session(graph_) as session:
            llm = session.node("llm")
            assert isinstance(llm, RealtimeNode)
            caller = session.node("caller")
            assert isinstance(caller, RecorderNode)
            async with asyncio.timeout(10):  # a hang guard, not a measurement
                await llm.wait_ready()
                for event in events:
                    connector.wires[-1].push(event)
                    await asyncio.sleep(0)
                await until(lambda: connector.wires[-1].inbox.empty())
                await llm.wait_ready()
                for event in PROBE:
                    connector.wires[-1].push(event if not beta else {
                        **event, "type": BETA_RENAMES.get(event["type"], event["type"])})
                await until(lambda: any(f.text == "PROBE" for f in caller.of(TextFrame)))
            session.request_end("done")
    return [f for f in failures if isinstance(f, NodeFailed)]


COUNTS: dict[str, int] = {}


def count(name: str, n: int = 1) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + n


@pytest.mark.parametrize("kind", ["openai.realtime", "openai.realtime_beta"])
def test_realtime_receive_loop_survives_random_and_mutated_events(kind: str,
                                                                  figures: Figures) -> None:
    samples = BETA_EVENTS if kind.endswith("beta") else REALTIME_EVENTS
    events = st.lists(st.one_of(mutated(samples), st.sampled_from(samples)), max_size=12)

    @given(events)
    def check(batch: list[Any]) -> None:
        batch = [e for e in batch if isinstance(e, dict)]  # the wire only hands on objects
        failures = asyncio.run(realtime_survives(kind, batch))
        count(f"{kind} events", len(batch))
        count(f"{kind} sequences")
        assert failures == [], [repr(f.error) for f in failures]

    check()
    figures.record(f"parsers/{kind}", sequences=COUNTS[f"{kind} sequences"],
                   events=COUNTS[f"{kind} events"], receive_loop_died=0)


# -- Responses server events -----------------------------------------------------------------

RESPONSES_EVENTS: list[dict[str, Any]] = [
    {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}},
    {"type": "response.output_text.delta", "item_id": "msg_1", "delta": "Hi"},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "delta": "think"},
    {"type": "response.output_item.added", "item": {"id": "fc_1", "type": "function_call",
                                                    "call_id": "call_1", "name": "f",
                                                    "arguments": ""}},
    {"type": "response.function_call_arguments.done", "item_id": "fc_1", "arguments": "{}"},
    {"type": "response.output_item.done", "item": {
        "id": "msg_1", "type": "message", "role": "assistant",
        "content": [{"type": "output_text", "text": "Hi", "annotations": []}]}},
    {"type": "response.output_item.done", "item": {"id": "fc_1", "type": "function_call",
                                                   "call_id": "call_1", "name": "f",
                                                   "arguments": "{}"}},
    {"type": "response.output_item.done", "item": {"id": "rs_1", "type": "reasoning",
                                                   "summary": [], "encrypted_content": "x"}},
    {"type": "response.completed", "response": {"id": "resp_1", "status": "completed",
                                                "usage": {"input_tokens": 1}}},
    {"type": "response.failed", "response": {"id": "resp_1", "status": "failed",
                                             "error": {"code": "x", "message": "y"}}},
    {"type": "response.incomplete", "response": {"id": "resp_1", "status": "incomplete",
                                                 "incomplete_details": {"reason": "max"}}},
    {"type": "error", "error": {"type": "invalid_request_error",
                                "code": "previous_response_not_found", "message": "gone"}},
    {"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "status": 429},
]


def test_responses_events_parse_and_fold_without_raising(figures: Figures) -> None:
    @given(st.lists(st.one_of(mutated(RESPONSES_EVENTS), JSON), max_size=15),
           st.booleans())
    def check(batch: list[Any], store: bool) -> None:
        acc = rp.ResponseAccumulator(store=store)
        for data in batch:
            event = rp.parse_event(data)
            acc.apply(event)
            match event:
                case rp.ResponseFinished():
                    assert isinstance(event.problem(), str)
                    rp.usage_values(event.response.get("usage"))
                    rp.output_text(event.response)
                case rp.ApiError():
                    assert isinstance(event.raise_for("llm"), rp.ResponsesApiError)
        for call in acc.calls():
            assert isinstance(call.arguments, str)
        json.dumps(acc.output)  # what is replayed must be sendable
        count("responses events", len(batch))
        count("responses sequences")

    check()
    figures.record("parsers/openai.responses", sequences=COUNTS["responses sequences"],
                   events=COUNTS["responses events"], exceptions=0)


def test_the_sse_decoder_takes_any_lines(figures: Figures) -> None:
    lines = st.one_of(st.text(max_size=40), st.sampled_from(["", "data: {}", "data: [DONE]",
                                                             ": keep-alive", "event: x"]))

    @given(st.lists(lines, max_size=30))
    def check(batch: list[str]) -> None:
        decoder = SseDecoder()
        for line in batch:
            data = decoder.feed(line.replace("\n", " ").replace("\r", " "))
            assert data is None or isinstance(data, str)
            if data is not None:
                try:
                    rp.parse_event(json.loads(data))
                except ValueError:
                    pass  # the stream reader logs and skips non-JSON events
        decoder.flush()
        count("sse lines", len(batch))

    check()
    figures.record("parsers/sse", lines=COUNTS["sse lines"], exceptions=0)


# -- client transports -----------------------------------------------------------------------

BROWSER_MESSAGES: list[dict[str, Any]] = [
    {"type": "text", "text": "hello"},
    {"type": "playback", "item_id": "item_1", "played_ms": 120, "playing": True},
    {"type": "commit"},
    {"type": "ping"},
]
TWILIO_MESSAGES: list[dict[str, Any]] = [
    {"event": "connected", "protocol": "Call", "version": "1.0.0"},
    {"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
        "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound"],
        "customParameters": {"From": "+1555"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}},
    {"event": "media", "streamSid": "MZ1", "media": {
        "track": "inbound", "chunk": "1", "timestamp": "5",
        "payload": base64.b64encode(bytes([0xFF]) * 160).decode()}},
    {"event": "mark", "streamSid": "MZ1", "mark": {"name": "item_1:120:1"}},
    {"event": "dtmf", "streamSid": "MZ1", "dtmf": {"track": "inbound_track", "digit": "5"}},
]


def client_messages(samples: list[dict[str, Any]], key: str) -> st.SearchStrategy[Any]:
    def encode(value: Any) -> str | bytes:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value
        return json.dumps(value)

    ending = {"end", "stop"}
    messages = st.one_of(
        mutated(samples).filter(lambda m: not (isinstance(m, dict) and str(m.get(key)) in ending)),
        st.text(max_size=50), st.binary(max_size=64), JSON)
    return messages.map(encode)


async def transport_survives(kind: str, messages: list[str | bytes]) -> tuple[int, int]:
    """Send `messages` through a live transport, then a probe; returns (errors replied,
    rejections published)."""
    pair = MemorySocketPair()
    connection = Connection(socket=pair.server, spec_name="fuzz")
    factory: Callable[..., Any]
    if kind == "browser":
        spec: Any = WebsocketTransportSpec.model_validate({"type": "transport.websocket"})
        factory = functools.partial(WebsocketTransport, connection=connection)
    else:
        spec = TwilioTransportSpec.model_validate({"type": "transport.twilio"})
        factory = functools.partial(TwilioTransport, connection=connection)
    compiled = graph({"caller": spec, "llm": "test.echo"}, ["caller -> llm -> caller"],
                     entry="caller")
    registry = make_registry()
    registry.register(spec.type, factory)
    bus = Bus()
    replies: list[dict[str, Any]] = []
    with capture_events(bus, ClientMessageRejected, NodeFailed) as events:
        async with Executor(registry=registry, bus=bus).session(compiled) as session:
            async with asyncio.timeout(10):  # a hang guard
                for message in messages:
                    if isinstance(message, bytes):
                        await pair.client.send_bytes(message)
                    else:
                        await pair.client.send_text(message)
                if kind == "browser":
                    await pair.client.send_json({"type": "ping"})
                    while True:
                        reply = await pair.client.receive_json()
                        replies.append(reply)
                        if reply["type"] == "pong":
                            break
                else:
                    await pair.client.send_json({"event": "dtmf", "dtmf": {"digit": "9"}})
                    await until(lambda: any(getattr(f, "digit", None) == "9"
                                            for f in session.node("llm").received))  # type: ignore[attr-defined]
                assert not pair.client.closed, pair.client.close_code
                await pair.client.close()
                await session.wait()
    failures = [e for e in events if isinstance(e, NodeFailed)]
    assert failures == [], [repr(f.error) for f in failures]
    assert isinstance(session.close_reason, str)
    errors = sum(1 for r in replies if r["type"] == "error")
    return errors, sum(1 for e in events if isinstance(e, ClientMessageRejected))


@pytest.mark.parametrize("kind", ["browser", "twilio"])
def test_client_messages_are_answered_or_rejected_and_the_session_goes_on(
        kind: str, figures: Figures) -> None:
    samples, key = (BROWSER_MESSAGES, "type") if kind == "browser" else (TWILIO_MESSAGES,
                                                                          "event")
    totals = {"messages": 0, "sequences": 0, "rejected": 0}

    @given(st.lists(client_messages(samples, key), max_size=12))
    def check(messages: list[str | bytes]) -> None:
        errors, rejected = asyncio.run(transport_survives(kind, messages))
        totals["messages"] += len(messages)
        totals["sequences"] += 1
        totals["rejected"] += errors + rejected

    check()
    figures.record(f"parsers/{kind}", **totals, sessions_lost=0)


def test_the_end_of_a_session_is_clean(figures: Figures) -> None:
    # A guard on the probe above: `EndFrame` is what the transport emits when the client goes.
    assert EndFrame(reason="x").reason == "x"
