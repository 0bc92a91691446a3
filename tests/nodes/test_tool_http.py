"""`tool.http` through the executor, against an aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from flowspec.frames import (
    FunctionResultFrame,
    InterruptFrame,
    TextFrame,
)
from flowspec.nodes.tool_http import EXCERPT_CHARS

from .tool_harness import HANG_GUARD_S, Run
from .tool_harness import running as run_tools

SECRET = "s3cret-token-value"


@dataclass
class Api:
    """The test server: what it received, and a gate the slow route waits at."""

    server: TestServer
    requests: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    app = web.Application()
    api = Api(TestServer(app, host="127.0.0.1"))

    async def record(request: web.Request) -> dict[str, Any]:
        body = await request.text()
        seen = {"method": request.method, "path": request.path, "query": dict(request.query),
                "authorization": request.headers.get("Authorization"),
                "json": json.loads(body) if body else None}
        api.requests.append(seen)
        return seen

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"got": (await record(request))["json"]})

    async def query(request: web.Request) -> web.Response:
        return web.json_response({"query": (await record(request))["query"]})

    async def fail(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=500, text="E" * 2000)

    async def text(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="not { json at all")

    async def empty(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=204)

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        api.arrived.set()
        await api.release.wait()
        return web.Response(text="late")

    app.router.add_post("/echo", echo)
    app.router.add_get("/query", query)
    app.router.add_post("/fail", fail)
    app.router.add_post("/text", text)
    app.router.add_post("/empty", empty)
    app.router.add_post("/slow", slow)
    await api.server.start_server()
    try:
        yield api
    finally:
        api.release.set()  # let a held request finish before the server shuts down
        await api.server.close()


def http_tool(node_id: str, url: str, extra: str = "") -> str:
    lines = [f"  {node_id}:", "    type: tool.http", f"    url: {url}",
             "    description: A test endpoint.",
             '    headers: {Authorization: "Bearer ${TOKEN}"}']
    return "\n".join(lines + [f"    {line}" for line in extra.splitlines() if line])


@asynccontextmanager
async def running(*tools: str) -> AsyncIterator[Run]:
    async with run_tools("\n".join(tools), env={"TOKEN": SECRET}) as run:
        yield run


def never_shown(run: Run, results: list[FunctionResultFrame]) -> bool:
    return all(SECRET not in r.result for r in results) and all(
        SECRET not in repr(e) for e in run.events)


async def test_post_sends_the_arguments_as_json_and_a_2xx_body_is_the_result(api: Api) -> None:
    async with running(http_tool("lookup", api.url("/echo"))) as run:
        results = await run.ask(("lookup", {"city": "Oslo", "days": 2}))
    ((result,), (request,)) = results, api.requests
    assert (result.name, result.is_error) == ("lookup", False)
    assert json.loads(result.result) == {"got": {"city": "Oslo", "days": 2}}
    assert request["method"] == "POST" and request["authorization"] == f"Bearer {SECRET}"
    assert [(e.call_id, e.ok) for e in run.ended()] == [("call-0", True)]


async def test_get_sends_the_arguments_as_query_parameters(api: Api) -> None:
    async with running(http_tool("search", api.url("/query"), "method: GET")) as run:
        (result,) = await run.ask(("search", {"q": "rain", "limit": 3, "exact": True}))
    assert json.loads(result.result) == {"query": {"q": "rain", "limit": "3", "exact": "true"}}
    assert api.requests[0]["method"] == "GET"


async def test_a_2xx_body_that_is_not_json_is_returned_as_is(api: Api) -> None:
    async with running(http_tool("text", api.url("/text")),
                       http_tool("empty", api.url("/empty"))) as run:
        text, empty = await run.ask(("text", {}), ("empty", {}))
    assert (text.result, text.is_error) == ("not { json at all", False)
    assert (json.loads(empty.result), empty.is_error) == ({"status": 204}, False)


async def test_an_error_status_is_an_error_result_with_a_short_excerpt(api: Api) -> None:
    async with running(http_tool("fail", api.url("/fail"))) as run:
        results = await run.ask(("fail", {"city": "Oslo"}))
    (result,) = results
    message = json.loads(result.result)["error"]
    assert result.is_error
    assert message.startswith("The tool's service answered with HTTP status 500: ")
    assert message.endswith(": " + "E" * EXCERPT_CHARS)
    (ended,) = run.ended()
    assert not ended.ok and ended.detail == "HTTP 500 from 127.0.0.1"
    assert never_shown(run, results)


async def test_a_slow_service_times_out(api: Api) -> None:
    async with running(http_tool("slow", api.url("/slow"), "timeout_s: 0.05")) as run:
        (result,) = await run.ask(("slow", {}))
    assert result.is_error and not result.cancelled
    assert json.loads(result.result) == {"error": "The tool did not answer within 0.05 s."}
    assert api.arrived.is_set()


async def test_a_network_error_is_an_error_result_without_secrets(api: Api) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with running(http_tool("down", f"http://127.0.0.1:{port}/x")) as run:
        results = await run.ask(("down", {"city": "Oslo"}))
    (result,) = results
    assert result.is_error
    assert json.loads(result.result) == {"error": "The tool's service could not be reached."}
    (ended,) = run.ended()
    assert not ended.ok and ended.detail.startswith("Client")
    assert never_shown(run, results)


async def test_bad_json_arguments_send_no_request(api: Api) -> None:
    async with running(http_tool("lookup", api.url("/echo"))) as run:
        (result,) = await run.ask(("lookup", '{"city": '))
    assert result.is_error and "not valid JSON" in result.result
    assert api.requests == []


async def test_arguments_are_validated_before_the_request(api: Api) -> None:
    schema = "parameters: {type: object, properties: {city: {type: string}}, required: [city]}"
    async with running(http_tool("lookup", api.url("/echo"), schema)) as run:
        (result,) = await run.ask(("lookup", {"city": 7}))
    assert "$.city: 7 is not of type 'string'" in json.loads(result.result)["error"]
    assert api.requests == []


async def test_an_interrupt_cancels_a_request_in_flight(api: Api) -> None:
    async with running(http_tool("slow", api.url("/slow"))) as run:
        await run.session.send("chat", TextFrame(text='[["slow", {}]]', role="user"))
        async with asyncio.timeout(HANG_GUARD_S):
            await api.arrived.wait()
        await run.session.send("chat", InterruptFrame())
        (result,) = await run.model.answered()
    assert (result.is_error, result.cancelled) == (True, True)
    assert [e.cancelled for e in run.ended()] == [True]


async def test_parallel_requests_of_one_turn_return_together(api: Api) -> None:
    async with running(http_tool("lookup", api.url("/echo")),
                       http_tool("search", api.url("/query"), "method: GET")) as run:
        one, two = await run.ask(("lookup", {"n": 1}), ("search", {"n": 2}))
    assert json.loads(one.result) == {"got": {"n": 1}}
    assert json.loads(two.result) == {"query": {"n": "2"}}
