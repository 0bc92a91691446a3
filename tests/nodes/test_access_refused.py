"""A key the provider refuses (401, or 403 for a missing permission) is not retried, and the
provider's own reason is what the session reports: on both Realtime dialects and both
Responses transports, against a stand-in that answers as OpenAI does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

import pytest
from aiohttp import web

from flowspec.errors import AccessRefused, FlowspecError
from flowspec.frames import TextFrame
from flowspec.nodes.openai_realtime.node import RealtimeNode
from flowspec.nodes.refusal import error_text
from flowspec.runtime.bus import Bus, BusEvent, ProviderError
from flowspec.runtime.executor import Executor
from flowspec.spec.compile import compile_text
from flowspec.testing import RecorderNode, make_registry

MESSAGE = "Incorrect API key provided: sk-bad. You can find your API key at https://x."
BODY = {"error": {"message": MESSAGE, "type": "invalid_request_error", "param": None,
                  "code": "invalid_api_key"}}


@dataclass
class StandIn:
    url: str
    status: int
    requests: list[str] = field(default_factory=list)


@pytest.fixture(params=[401, 403])
async def stand_in(request: pytest.FixtureRequest) -> AsyncIterator[StandIn]:
    status: int = request.param
    server = StandIn("", status)

    async def refuse(req: web.Request) -> web.Response:
        upgrade = req.headers.get("Upgrade", "").lower() == "websocket"
        server.requests.append(f"{'upgrade' if upgrade else req.method} {req.path}")
        return web.json_response(BODY, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


def realtime_spec(server: StandIn, kind: str) -> str:
    return f"""\
flowspec: 1
name: t
nodes:
  chat: {{type: transport.text}}
  llm:
    type: {kind}
    base_url: ws://{server.url}/v1/realtime
    api_key: sk-bad
    settings: {{session_properties: {{{"modalities: [text]" if "beta" in kind
                                      else "output_modalities: [text]"}}}}}
edges: [chat -> llm -> chat]
"""


def responses_spec(server: StandIn, transport: str) -> str:
    return f"""\
flowspec: 1
name: t
nodes:
  chat: {{type: transport.text}}
  llm:
    type: openai.responses
    transport: {transport}
    api_key: sk-bad
    base_url: http://{server.url}/v1
    ws_url: ws://{server.url}/v1/responses
edges: [chat -> llm -> chat]
"""


async def run_until_ended(text: str) -> tuple[list[BusEvent], str]:
    graph = compile_text(text, "t.yaml", env={}).raise_for_errors()
    registry = make_registry()
    registry.register("transport.text", RecorderNode)
    # Fast backoff: were the refusal retried, the stand-in would count each try.
    registry.register("openai.realtime", partial(RealtimeNode, reconnect_delays=(0.01,) * 3))
    registry.register("openai.realtime_beta",
                      partial(RealtimeNode, reconnect_delays=(0.01,) * 3))
    bus = Bus()
    events: list[BusEvent] = []
    with bus.subscribe(events.append):
        async with asyncio.timeout(20), Executor(registry=registry, bus=bus).session(
                graph) as session:
            await session.send("chat", TextFrame(text="Hello?", role="user"))
            await session.wait()
    return events, session.close_reason or ""


@pytest.mark.parametrize("kind", ["openai.realtime", "openai.realtime_beta"])
async def test_a_realtime_node_gives_up_at_once_with_the_providers_reason(
        stand_in: StandIn, kind: str) -> None:
    events, reason = await run_until_ended(realtime_spec(stand_in, kind))
    # One upgrade, and one plain request that reads the reason: no retry.
    assert stand_in.requests == ["upgrade /v1/realtime", "GET /v1/realtime"]
    (lost,) = [e for e in events if isinstance(e, ProviderError) and e.code == "connection_lost"]
    assert lost.fatal
    assert f"HTTP {stand_in.status}: {MESSAGE} [invalid_api_key]" in lost.message
    assert "Invalid response status" not in lost.message
    assert MESSAGE in reason


async def test_a_responses_websocket_refused_at_start_is_not_retried(stand_in: StandIn) -> None:
    with pytest.raises(FlowspecError) as raised:
        await run_until_ended(responses_spec(stand_in, "websocket"))
    error = raised.value
    while not isinstance(error, AccessRefused) and error.__cause__ is not None:
        error = error.__cause__  # type: ignore[assignment]
    assert isinstance(error, AccessRefused), raised.value
    assert f"HTTP {stand_in.status}: {MESSAGE} [invalid_api_key]" in str(error)
    assert stand_in.requests == ["upgrade /v1/responses", "GET /v1/responses"]


async def test_a_responses_request_refused_over_http_ends_the_call(stand_in: StandIn) -> None:
    events, reason = await run_until_ended(responses_spec(stand_in, "http"))
    assert stand_in.requests == ["POST /v1/responses"]
    assert MESSAGE in reason and "[invalid_api_key]" in reason, reason


def test_the_reason_is_read_from_openai_shaped_and_other_bodies() -> None:
    import json

    assert error_text(401, json.dumps(BODY).encode()) == \
        f"the server answered HTTP 401: {MESSAGE} [invalid_api_key]"
    assert error_text(403, b'{"error": "forbidden"}') == "the server answered HTTP 403: forbidden"
    assert error_text(401, b"<html>no</html>") == "the server answered HTTP 401"
    assert error_text(401, b"") == "the server answered HTTP 401"
