"""Provider faults, staged by emulator scripts (and a loopback proxy that garbles the wire), each
against a live session: the session survives and answers the next turn, or ends cleanly with a
clear reason. Covers both model node families."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from flowspec.emulator import Emulator
from flowspec.frames import ResponseEndedFrame, TextFrame, TranscriptFrame
from flowspec.runtime import Bus, Executor
from flowspec.runtime.bus import BusEvent, CompletionTimeout, NodeFailed, ProviderError
from flowspec.runtime.session import Session
from flowspec.spec.compile import compile_text
from flowspec.testing import RecorderNode, capture_events, make_registry, until

from .conftest import Figures

SURVIVED: list[str] = []
REALTIME = """\
flowspec: 1
name: faults
nodes:
  caller: {{type: transport.websocket}}
  llm:
    type: {kind}
    base_url: {ws}/realtime
    api_key: test
edges:
  - caller -> llm -> caller
"""
RESPONSES = """\
flowspec: 1
name: faults
nodes:
  caller: {{type: transport.text}}
  llm:
    type: openai.responses
    transport: {transport}
    api_key: test
    base_url: {http}
    ws_url: {ws}/responses
    retry_timeout_secs: 0.5
    retry_on_timeout: {retry}
edges:
  - caller -> llm -> caller
"""


@dataclass
class Live:
    session: Session
    caller: RecorderNode
    events: list[BusEvent]

    def ended(self) -> list[ResponseEndedFrame]:
        return self.caller.of(ResponseEndedFrame)

    def errors(self) -> list[ProviderError]:
        return [e for e in self.events if isinstance(e, ProviderError)]

    def failures(self) -> list[NodeFailed]:
        return [e for e in self.events if isinstance(e, NodeFailed)]

    async def turn(self, text: str) -> ResponseEndedFrame:
        """Send user text and wait (bounded) for the response to end."""
        before = len(self.ended())
        await self.session.send("caller", TextFrame(text=text, role="user"))
        await until(lambda: len(self.ended()) > before, polls=15000)  # a hang guard
        return self.ended()[before]

    def said(self) -> str:
        return "".join(f.text for f in self.caller.frames
                       if isinstance(f, TextFrame | TranscriptFrame) and f.role == "assistant")


@asynccontextmanager
async def live(text: str, kind: str) -> AsyncIterator[Live]:
    from flowspec.nodes.openai_realtime.node import RealtimeNode

    graph = compile_text(text, env={}).raise_for_errors()
    registry = make_registry()
    registry.register(kind, RecorderNode)
    quick = functools.partial(RealtimeNode, reconnect_delays=(0.01, 0.05, 0.1))
    registry.register("openai.realtime", quick)
    registry.register("openai.realtime_beta", quick)
    bus = Bus()
    with capture_events(bus) as events:
        async with Executor(registry=registry, bus=bus).session(graph) as session:
            caller = session.node("caller")
            assert isinstance(caller, RecorderNode)
            yield Live(session, caller, events)
            session.request_end("test over")


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator.start(pace=0, keep_records=True) as emu:
        yield emu


def realtime(ws: str, beta: bool = False) -> str:
    return REALTIME.format(kind="openai.realtime_beta" if beta else "openai.realtime", ws=ws)


async def ready(run: Live) -> None:
    from flowspec.nodes.openai_realtime.node import RealtimeNode

    node = run.session.node("llm")
    assert isinstance(node, RealtimeNode)
    async with asyncio.timeout(10):
        await node.wait_ready()


# -- Realtime ------------------------------------------------------------------------------

# An error refusing the key, its permissions or its quota ends the call instead (see
# tests/nodes/test_access_refused.py).
KNOWN_CODES = ["server_error", "invalid_value", "invalid_event", "rate_limit_exceeded",
               "response_cancel_not_active", "conversation_already_has_active_response",
               "a_code_nobody_documented"]
BENIGN = {"response_cancel_not_active", "conversation_already_has_active_response"}


@pytest.mark.parametrize("beta", [False, True], ids=["ga", "beta"])
@pytest.mark.parametrize("code", KNOWN_CODES)
async def test_realtime_error_event_of_each_code(emulator: Emulator, code: str,
                                                 beta: bool) -> None:
    kind = "rate_limit_error" if code.startswith("rate") else "invalid_request_error"
    emulator.load_script(f"rules: [{{when: {{turn: 1}}, times: 1, fail: {{type: {kind}, "
                         f"code: {code}, message: 'staged {code}'}}}}]", text=True)
    async with live(realtime(emulator.ws_base_url, beta), "transport.websocket") as run:
        await ready(run)
        await run.session.send("caller", TextFrame(text="first", role="user"))
        await until(lambda: code in BENIGN or run.errors())
        second = await run.turn("second")
        assert second.status == "completed"
        codes = [e.code for e in run.errors()]
        assert codes == ([] if code in BENIGN else [code]), codes
        assert not any(e.fatal for e in run.errors()) and run.failures() == []
        assert len(emulator.of_kind("realtime")) == 1  # the same connection carried on
    SURVIVED.append(f"realtime {'beta' if beta else 'ga'} error {code}")


async def test_realtime_response_failing_mid_stream(emulator: Emulator) -> None:
    emulator.load_script("rules: [{when: {turn: 1}, times: 1, after_chunks: 2, fail: "
                         "{type: server_error, code: server_error, stage: stream}}]", text=True)
    async with live(realtime(emulator.ws_base_url), "transport.websocket") as run:
        await ready(run)
        first = await run.turn("first")
        assert first.status == "failed"
        assert (await run.turn("second")).status == "completed"
        assert run.failures() == []
    SURVIVED.append("realtime response failed mid-stream")


async def test_realtime_dropped_socket_mid_response(emulator: Emulator) -> None:
    emulator.load_script("rules: [{when: {turn: 1}, times: 1, after_chunks: 2, drop: true}]",
                         text=True)
    async with live(realtime(emulator.ws_base_url), "transport.websocket") as run:
        await ready(run)
        first = await run.turn("first")
        assert first.status == "disconnected"
        await ready(run)
        assert (await run.turn("second")).status == "completed"
        assert [e.code for e in run.errors()] == ["connection_lost"]
        assert run.failures() == [] and len(emulator.of_kind("realtime")) == 2
    SURVIVED.append("realtime socket dropped mid-response")


async def test_realtime_session_expired_at_the_cap(emulator: Emulator) -> None:
    emulator.load_script("rules: [{when: {turn: 2}, times: 1, fail: {type: "
                         "invalid_request_error, code: session_expired, message: Your session "
                         "hit the maximum duration of 60 minutes.}}]", text=True)
    async with live(realtime(emulator.ws_base_url), "transport.websocket") as run:
        await ready(run)
        await run.turn("My name is Ada.")
        await run.session.send("caller", TextFrame(text="What is my name?", role="user"))
        await until(lambda: len(emulator.of_kind("realtime")) >= 2)
        await ready(run)
        assert (await run.turn("Still there?")).status == "completed"
        assert [e.code for e in run.errors()][0] == "session_expired"
        assert not any(e.fatal for e in run.errors()) and run.failures() == []
    SURVIVED.append("realtime session_expired (60-minute cap)")


async def test_realtime_unreachable_provider_ends_the_session_with_a_reason(
        emulator: Emulator) -> None:
    async with live(realtime(emulator.ws_base_url), "transport.websocket") as run:
        await ready(run)
        await emulator.stop()
        async with asyncio.timeout(10):
            await run.session.wait()
        assert "could not be restored" in run.session.close_reason
        assert run.errors()[-1].fatal
    SURVIVED.append("realtime provider gone: session ended with a reason")


# -- a garbling proxy: malformed JSON and unknown events on the real wire --------------------

GARBAGE: list[str | bytes] = ["not json {", "[1, 2, 3]", '"a string"', "{}",
                              '{"type": "a.type.nobody.knows", "x": 1}',
                              '{"type": 42}', b"\x00\xff\xfe binary"]


@asynccontextmanager
async def garbling_proxy(emu: Emulator) -> AsyncIterator[str]:
    """A WebSocket proxy to the emulator that sends every piece of `GARBAGE` before each real
    server message. Yields its `ws://host:port/v1` base URL."""

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("authorization", "openai-beta")}
        async with aiohttp.ClientSession() as http, http.ws_connect(
                f"{emu.base_url.replace('http', 'ws')}{request.path_qs}", headers=headers,
                max_msg_size=0) as upstream:

            async def down() -> None:
                async for message in upstream:
                    for junk in GARBAGE:
                        await (ws.send_bytes(junk) if isinstance(junk, bytes)
                               else ws.send_str(junk))
                    await ws.send_str(message.data)
                await ws.close()

            async def up() -> None:
                async for message in ws:
                    await upstream.send_str(message.data)
                await upstream.close()

            with contextlib.suppress(ConnectionError):
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(down())
                    tg.create_task(up())
        return ws

    app = web.Application()
    app.router.add_get("/v1/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"ws://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("beta", [False, True], ids=["ga", "beta"])
async def test_realtime_malformed_json_and_unknown_events_on_the_wire(emulator: Emulator,
                                                                      beta: bool) -> None:
    async with garbling_proxy(emulator) as base, live(realtime(base, beta),
                                                      "transport.websocket") as run:
        await ready(run)
        for text in ("first", "second"):
            assert (await run.turn(text)).status == "completed"
        assert run.said() and run.errors() == [] and run.failures() == []
    SURVIVED.append(f"realtime {'beta' if beta else 'ga'} malformed JSON and unknown events")


# -- Responses -------------------------------------------------------------------------------


def responses(emu: Emulator, transport: str, *, ws: str | None = None,
              retry: bool = False) -> str:
    return RESPONSES.format(transport=transport, http=emu.http_base_url,
                            ws=ws or emu.ws_base_url, retry=str(retry).lower())


async def test_responses_malformed_json_and_unknown_events_on_the_wire(
        emulator: Emulator) -> None:
    async with garbling_proxy(emulator) as base, live(
            responses(emulator, "websocket", ws=base), "transport.text") as run:
        for text in ("first", "second"):
            assert (await run.turn(text)).status == "completed"
        assert run.said() and run.failures() == []
    SURVIVED.append("responses malformed JSON and unknown events")


@pytest.mark.parametrize("transport", ["websocket", "http"])
async def test_responses_previous_response_not_found_and_rate_limits(
        emulator: Emulator, transport: str) -> None:
    emulator.load_script("""\
rules:
  - {when: {turn: 1}, times: 1, fail: {type: invalid_request_error,
     code: previous_response_not_found, message: gone, status: 400}}
  - {when: {contains: slow}, times: 1, fail: {type: rate_limit_error,
     code: rate_limit_exceeded, message: Rate limit reached, status: 429}}
""", text=True)
    async with live(responses(emulator, transport), "transport.text") as run:
        first = await run.turn("first")
        if transport == "websocket":
            assert first.status == "completed"  # retried once with the full context
        limited = await run.turn("slow down")
        assert limited.status == "failed"
        assert (await run.turn("third")).status == "completed"
        failures = run.failures()
        assert failures and all(not f.fatal for f in failures)
        assert "rate_limit_exceeded" in str(failures[-1].error)
    SURVIVED.append(f"responses {transport} previous_response_not_found and rate limit")


@pytest.mark.parametrize("transport", ["websocket", "http"])
async def test_responses_dropped_mid_response(emulator: Emulator, transport: str) -> None:
    emulator.load_script("rules: [{when: {turn: 1}, times: 1, drop: true}]", text=True)
    async with live(responses(emulator, transport), "transport.text") as run:
        await run.turn("first")
        assert (await run.turn("second")).status == "completed"
        assert all(not f.fatal for f in run.failures())
    SURVIVED.append(f"responses {transport} dropped mid-response")


@pytest.mark.parametrize("transport", ["websocket", "http"])
async def test_responses_stalled_response_times_out(emulator: Emulator, transport: str) -> None:
    emulator.load_script("rules: [{when: {contains: first}, times: 1, stall_ms: 3000}]",
                         text=True)
    async with live(responses(emulator, transport), "transport.text") as run:
        first = await run.turn("first")
        assert first.status == "failed"
        assert any(isinstance(e, CompletionTimeout) for e in run.events)
        assert "timed out" in str(run.failures()[-1].error)
        assert (await run.turn("second")).status == "completed"
        assert all(not f.fatal for f in run.failures())
    SURVIVED.append(f"responses {transport} stalled response (timeout)")


def test_zz_figures(figures: Figures) -> None:
    figures.record("provider_faults", survived=len(SURVIVED), cases=sorted(SURVIVED))
    assert len(SURVIVED) >= 25, SURVIVED

