"""A key the provider refuses (401, or 403 for a missing permission) is not retried, and the
provider's own reason is what the session reports: on both Realtime dialects and both
Responses transports, against a stand-in that answers as OpenAI does. The same holds for an
error that refuses the key, its permissions or its quota in the middle of a call (staged by the
emulator): the call ends with the provider's words, and nothing reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

import pytest
from aiohttp import web

from flowspec.emulator import Emulator
from flowspec.errors import AccessRefused, FlowspecError
from flowspec.frames import ResponseEndedFrame, TextFrame
from flowspec.nodes.openai_realtime.node import RealtimeNode
from flowspec.nodes.refusal import error_text, refuses_access
from flowspec.runtime.bus import Bus, BusEvent, NodeFailed, ProviderError
from flowspec.runtime.executor import Executor
from flowspec.spec.compile import compile_text
from flowspec.testing import RecorderNode, make_registry, until

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


def realtime_spec(host: str, kind: str) -> str:
    return f"""\
flowspec: 1
name: t
nodes:
  chat: {{type: transport.text}}
  llm:
    type: {kind}
    base_url: ws://{host}/v1/realtime
    api_key: sk-bad
    settings: {{session_properties: {{{"modalities: [text]" if "beta" in kind
                                      else "output_modalities: [text]"}}}}}
edges: [chat -> llm -> chat]
"""


def responses_spec(host: str, transport: str) -> str:
    return f"""\
flowspec: 1
name: t
nodes:
  chat: {{type: transport.text}}
  llm:
    type: openai.responses
    transport: {transport}
    api_key: sk-bad
    base_url: http://{host}/v1
    ws_url: ws://{host}/v1/responses
edges: [chat -> llm -> chat]
"""


async def run_until_ended(text: str, *, then: str = "") -> tuple[list[BusEvent], str]:
    """Run `text` with one user message (and, once it is answered, `then`) until it ends."""
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
            if then:
                chat = session.node("chat")
                assert isinstance(chat, RecorderNode)
                await until(lambda: bool(chat.of(ResponseEndedFrame)), polls=10_000)
                assert chat.of(ResponseEndedFrame)[0].status == "completed"
                await session.send("chat", TextFrame(text=then, role="user"))
            await session.wait()
    return events, session.close_reason or ""


@pytest.mark.parametrize("kind", ["openai.realtime", "openai.realtime_beta"])
async def test_a_realtime_node_gives_up_at_once_with_the_providers_reason(
        stand_in: StandIn, kind: str) -> None:
    events, reason = await run_until_ended(realtime_spec(stand_in.url, kind))
    # One upgrade, and one plain request that reads the reason: no retry.
    assert stand_in.requests == ["upgrade /v1/realtime", "GET /v1/realtime"]
    (lost,) = [e for e in events if isinstance(e, ProviderError) and e.code == "connection_lost"]
    assert lost.fatal
    assert f"HTTP {stand_in.status}: {MESSAGE} [invalid_api_key]" in lost.message
    assert "Invalid response status" not in lost.message
    assert MESSAGE in reason


async def test_a_responses_websocket_refused_at_start_is_not_retried(stand_in: StandIn) -> None:
    with pytest.raises(FlowspecError) as raised:
        await run_until_ended(responses_spec(stand_in.url, "websocket"))
    error = raised.value
    while not isinstance(error, AccessRefused) and error.__cause__ is not None:
        error = error.__cause__  # type: ignore[assignment]
    assert isinstance(error, AccessRefused), raised.value
    assert f"HTTP {stand_in.status}: {MESSAGE} [invalid_api_key]" in str(error)
    assert stand_in.requests == ["upgrade /v1/responses", "GET /v1/responses"]


async def test_a_responses_request_refused_over_http_ends_the_call(stand_in: StandIn) -> None:
    events, reason = await run_until_ended(responses_spec(stand_in.url, "http"))
    assert stand_in.requests == ["POST /v1/responses"]
    assert MESSAGE in reason and "[invalid_api_key]" in reason, reason


def test_the_reason_is_read_from_openai_shaped_and_other_bodies() -> None:
    import json

    assert error_text(401, json.dumps(BODY).encode()) == \
        f"the server answered HTTP 401: {MESSAGE} [invalid_api_key]"
    assert error_text(403, b'{"error": "forbidden"}') == "the server answered HTTP 403: forbidden"
    assert error_text(401, b"<html>no</html>") == "the server answered HTTP 401"
    assert error_text(401, b"") == "the server answered HTTP 401"


# -- refused in the middle of a call ---------------------------------------------------------

PATHS = ["openai.realtime", "openai.realtime_beta", "responses websocket", "responses http"]
REFUSALS = [  # (type, code) as OpenAI sends them
    ("invalid_request_error", "invalid_api_key"),
    ("authentication_error", None),
    ("permission_error", None),
    ("insufficient_quota", "insufficient_quota"),
]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator.start(pace=0, keep_records=True) as emu:
        yield emu


def emulated_spec(emulator: Emulator, path: str) -> str:
    host = emulator.base_url.removeprefix("http://")
    if path.startswith("openai."):
        return realtime_spec(host, path)
    return responses_spec(host, path.split()[1])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("kind", "code"), REFUSALS, ids=lambda v: str(v))
async def test_an_access_error_mid_call_ends_it_with_the_providers_words(
        emulator: Emulator, path: str, kind: str, code: str | None) -> None:
    # In the stream: an `error` event while the response runs (Responses), the response
    # failing with the error (Realtime); an `error` event answering the request is below.
    stage = "stream" if path.startswith("responses") else "before"
    emulator.load_script(f"rules: [{{when: {{contains: refuse}}, fail: {{type: {kind}, "
                         f"code: {code or 'null'}, message: 'Refused, sorry.', "
                         f"stage: {stage}}}}}]", text=True)
    events, reason = await run_until_ended(emulated_spec(emulator, path), then="refuse me")
    tag = code or kind
    assert "could not be used" in reason and f"Refused, sorry. [{tag}]" in reason, reason
    if path.startswith("openai."):
        assert len(emulator.of_kind("realtime")) == 1  # given up, not reconnected
        (fatal,) = [e for e in events if isinstance(e, ProviderError) and e.fatal]
        assert fatal.code == (code or "connection_lost") and "Refused, sorry." in fatal.message
    else:
        (failed,) = [e for e in events if isinstance(e, NodeFailed)]
        assert failed.fatal and isinstance(failed.error, AccessRefused)
        if "websocket" in path:
            assert len(emulator.of_kind("responses_ws")) == 1
        else:
            assert len(emulator.of_kind("responses_http")) == 2  # one request a turn


@pytest.mark.parametrize("path", ["openai.realtime", "openai.realtime_beta",
                                  "responses websocket"])
async def test_an_error_event_refusing_a_request_ends_the_call(emulator: Emulator,
                                                                path: str) -> None:
    emulator.load_script("rules: [{when: {contains: refuse}, fail: {type: invalid_request_error,"
                         " code: invalid_api_key, message: Incorrect API key provided.}}]",
                         text=True)
    _events, reason = await run_until_ended(emulated_spec(emulator, path), then="refuse me")
    assert "Incorrect API key provided. [invalid_api_key]" in reason, reason


async def test_a_spent_quota_over_http_ends_the_call(emulator: Emulator) -> None:
    # OpenAI answers a spent quota with 429, as it does a rate limit: the code tells them apart.
    emulator.load_script("rules: [{when: {contains: refuse}, fail: {type: insufficient_quota, "
                         "code: insufficient_quota, message: You exceeded your current quota., "
                         "status: 429}}]", text=True)
    events, reason = await run_until_ended(emulated_spec(emulator, "responses http"),
                                           then="refuse me")
    assert "HTTP 429: You exceeded your current quota. [insufficient_quota]" in reason, reason
    assert [e.fatal for e in events if isinstance(e, NodeFailed)] == [True]


def test_which_errors_refuse_access() -> None:
    assert refuses_access("invalid_api_key") and refuses_access(None, "authentication_error")
    assert refuses_access("insufficient_quota", "insufficient_quota")
    assert refuses_access(None, None, 401) and refuses_access(None, "permission_error")
    for code, kind, status in [("rate_limit_exceeded", "rate_limit_error", 429),
                               ("server_error", "server_error", 500), (None, None, None),
                               ("session_expired", "invalid_request_error", 400)]:
        assert not refuses_access(code, kind, status), code
