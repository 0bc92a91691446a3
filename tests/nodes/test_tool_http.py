"""`tool.http` through the executor, against an aiohttp server on 127.0.0.1 (so its specs allow
the private network), and the network policy at call time: no name lookup leaves the process."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from flowspec.frames import (
    FunctionResultFrame,
    InterruptFrame,
    TextFrame,
)
from flowspec.nodes.tool_http import EXCERPT_CHARS, HttpToolNode
from flowspec.runtime import DEFAULT_REGISTRY, Bus, Context, Executor, Registry
from flowspec.spec.compiled import CompiledGraph
from flowspec.testing import RecorderNode, capture_events

from .tool_harness import HANG_GUARD_S, Run, TurnModel, compiled
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

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound(api.url("/echo"))

    app.router.add_post("/echo", echo)
    app.router.add_get("/query", query)
    app.router.add_post("/fail", fail)
    app.router.add_post("/text", text)
    app.router.add_post("/empty", empty)
    app.router.add_post("/slow", slow)
    app.router.add_post("/redirect", redirect)
    await api.server.start_server()
    try:
        yield api
    finally:
        api.release.set()  # let a held request finish before the server shuts down
        await api.server.close()


def http_tool(node_id: str, url: str, extra: str = "", *, private: bool = True) -> str:
    lines = [f"  {node_id}:", "    type: tool.http", f"    url: {url}",
             "    description: A test endpoint.",
             '    headers: {Authorization: "Bearer ${TOKEN}"}']
    if private:
        lines.append("    allow_private_network: true")
    return "\n".join(lines + [f"    {line}" for line in extra.splitlines() if line])


@asynccontextmanager
async def running(*tools: str) -> AsyncIterator[Run]:
    async with run_tools("\n".join(tools), env={"TOKEN": SECRET}) as run:
        yield run


class NameMap(AbstractResolver):
    """Answers host names from a table, as a DNS server (or a rebinding attacker) would."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.names:
            raise OSError(f"no such host {host}")
        return [ResolveResult(hostname=host, host=self.names[host], port=port,
                              family=socket.AF_INET, proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        return None


@asynccontextmanager
async def running_resolved(graph: CompiledGraph, names: NameMap) -> AsyncIterator[Run]:
    """The tool harness's session, with every tool.http node looking names up in `names`."""

    def factory(ctx: Context) -> HttpToolNode:
        return HttpToolNode(ctx, resolver=names)

    registry = Registry(parent=DEFAULT_REGISTRY)
    registry.register("transport.text", RecorderNode)
    registry.register("openai.responses", TurnModel)
    registry.register("tool.http", factory)
    bus = Bus()
    with capture_events(bus) as events:
        async with Executor(registry=registry, bus=bus).session(graph) as s:
            model = s.node("llm")
            assert isinstance(model, TurnModel)
            yield Run(s, model, events)


def unchecked(graph: CompiledGraph, node_id: str, **changes: Any) -> CompiledGraph:
    """`graph` with one node's fields changed after validation: the call-time checks must hold
    without the validator (a node built from data no check saw)."""
    nodes = dict(graph.nodes)
    nodes[node_id] = nodes[node_id].model_copy(update=changes)
    return dataclasses.replace(graph, nodes=nodes)


def never_shown(run: Run, results: Sequence[FunctionResultFrame]) -> bool:
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


async def test_a_name_that_resolves_to_loopback_is_refused_and_the_session_goes_on(
        api: Api) -> None:
    names = NameMap({"rebind.example": "127.0.0.1"})
    port = api.server.port
    graph = compiled(http_tool("lookup", f"http://rebind.example:{port}/echo", private=False),
                     {"TOKEN": SECRET})
    async with running_resolved(graph, names) as run:
        (first,) = await run.ask(("lookup", {"city": "Oslo"}))
        (second,) = await run.ask(("lookup", {"city": "Bergen"}))
    for result in (first, second):
        assert result.is_error and not result.cancelled
        assert "network policy" in json.loads(result.result)["error"]
    assert api.requests == [] and names.asked
    ended = run.ended()
    assert [e.ok for e in ended] == [False, False]
    assert "rebind.example resolves to 127.0.0.1, which is a loopback address" in ended[0].detail


async def test_allow_private_network_lets_a_resolved_loopback_call_through(api: Api) -> None:
    names = NameMap({"rebind.example": "127.0.0.1"})
    graph = compiled(http_tool("lookup", f"http://rebind.example:{api.server.port}/echo"),
                     {"TOKEN": SECRET})
    async with running_resolved(graph, names) as run:
        (result,) = await run.ask(("lookup", {"city": "Oslo"}))
    assert (result.is_error, json.loads(result.result)) == (False, {"got": {"city": "Oslo"}})
    assert names.asked == ["rebind.example"]


async def test_a_loopback_literal_is_refused_at_call_time_without_a_lookup(api: Api) -> None:
    names = NameMap({})
    graph = unchecked(compiled(http_tool("lookup", api.url("/echo")), {"TOKEN": SECRET}),
                      "lookup", allow_private_network=False)
    async with running_resolved(graph, names) as run:
        (result,) = await run.ask(("lookup", {}))
    assert result.is_error and "network policy" in json.loads(result.result)["error"]
    assert api.requests == [] and names.asked == []


async def test_a_url_with_credentials_is_refused_at_call_time(api: Api) -> None:
    graph = compiled(http_tool("lookup", api.url("/echo")), {"TOKEN": SECRET})
    url = api.url("/echo").replace("http://", "http://user:pw@")
    async with running_resolved(unchecked(graph, "lookup", url=url), NameMap({})) as run:
        (result,) = await run.ask(("lookup", {}))
    assert result.is_error and "network policy" in json.loads(result.result)["error"]
    assert api.requests == []
    assert run.ended()[0].detail == "the URL carries credentials"


async def test_a_redirect_is_not_followed(api: Api) -> None:
    async with running(http_tool("hop", api.url("/redirect"))) as run:
        (result,) = await run.ask(("hop", {"city": "Oslo"}))
    assert result.is_error
    assert json.loads(result.result)["error"] == (
        "The tool's service answered with a redirect (HTTP 302); redirects are not followed.")
    assert [r["path"] for r in api.requests] == ["/redirect"]
