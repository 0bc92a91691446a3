"""A hostile provider: events nested 30,000 deep, 400-digit numbers, NaN, and tool arguments a
model wrote the same way. Each is skipped (or refused to the model) where it arrives, and what
follows is read as usual: no RecursionError or OverflowError reaches a node."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from flowspec.nodes.openai_realtime.connection import aiohttp_connect
from flowspec.nodes.openai_responses.protocol import ResponsesApiError
from flowspec.nodes.openai_responses.sse import open_stream, post_json
from flowspec.nodes.tool_calls import ToolCallFailed, parse_arguments

from .conftest import Figures

HOSTILE = ["[" * 30_000, '{"type": "x", "n": ' + "9" * 400 + "}", '{"type": "x", "n": NaN}',
           '{"type": "x", "n": 1e999}', '{"a": ' * 5_000 + "1" + "}" * 5_000]
GOOD = {"type": "session.created", "event_id": "e1", "session": {"id": "s"}}


@pytest.fixture
async def provider() -> AsyncIterator[str]:
    async def realtime(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for text in HOSTILE:
            await ws.send_str(text)
        await ws.send_str(json.dumps(GOOD))
        await ws.close()
        return ws

    async def responses(request: web.Request) -> web.StreamResponse:
        if "stream" not in await request.text() or '"stream": false' in await request.text():
            return web.Response(text="[" * 30_000, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for text in HOSTILE:
            await response.write(f"data: {text}\n\n".encode())
        done = {"type": "response.completed", "sequence_number": 1,
                "response": {"id": "r", "status": "completed", "output": []}}
        await response.write(f"data: {json.dumps(done)}\n\n".encode())
        return response

    app = web.Application()
    app.router.add_get("/realtime", realtime)
    app.router.add_post("/responses", responses)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_realtime_events_beyond_the_bounds_are_skipped(provider: str,
                                                             figures: Figures) -> None:
    socket = await aiohttp_connect(f"ws://{provider}/realtime", {}, "llm")
    try:
        assert await socket.receive() == GOOD
        assert await socket.receive() is None
    finally:
        await socket.close()
    figures.record("hostile/provider/realtime", skipped=len(HOSTILE), survived=True)


async def test_responses_sse_events_beyond_the_bounds_are_skipped(provider: str) -> None:
    async with aiohttp.ClientSession() as http:
        stream = await open_stream(http, f"http://{provider}/responses", {}, {}, "llm")
        try:
            event = await stream.next_event()
            assert type(event).__name__ == "ResponseFinished"
        finally:
            stream.close()
        with pytest.raises(ResponsesApiError):  # a body nested 30,000 deep
            await post_json(http, f"http://{provider}/responses", {}, {"stream": False}, "llm")


@pytest.mark.parametrize("arguments", [*HOSTILE, '{"n": ' + "1" * 80 + "}"])
def test_tool_arguments_beyond_the_bounds_are_refused_to_the_model(arguments: str) -> None:
    with pytest.raises(ToolCallFailed) as refused:
        parse_arguments(arguments, {"type": "object"})
    assert "JSON" in str(refused.value) or "refused" in str(refused.value)
