"""The aiohttp server behind `flowspec serve`: one session per connection on each spec's entry.

Routes, for each served spec by its entry transport:
- `transport.websocket`: its WebSocket `path`, and the browser page at `/` (with its assets under
  `/flowspec/static/` and the page's settings at `/flowspec/config.json`);
- `transport.text`: its WebSocket `path`;
- `transport.twilio`: its media-stream WebSocket `path` and the TwiML webhook (`POST`);
and `/healthz` (200 while serving, 503 while draining) and `/metrics` (Prometheus text).

`Server.drain()` is the graceful shutdown: stop accepting, let running calls finish up to a
timeout, then end the rest.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from aiohttp import web

from flowspec.errors import FlowspecError, UsageError
from flowspec.runtime.bus import Bus
from flowspec.runtime.node import Context, Node, NodeFactory
from flowspec.runtime.registry import DEFAULT_REGISTRY, Registry
from flowspec.runtime.session import Session
from flowspec.server.metrics import CONTENT_TYPE, ServerMetrics
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.models.transports import (
    TextTransportSpec,
    TwilioTransportSpec,
    WebsocketTransportSpec,
)
from flowspec.transports.wire import AiohttpClientSocket, Connection

log = logging.getLogger("flowspec.server")

STATIC = {"index.html": "text/html", "app.js": "text/javascript",
          "capture.js": "text/javascript", "style.css": "text/css"}
SERVABLE = ("transport.websocket", "transport.text", "transport.twilio")
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_AGAIN = 1013


class Server:
    """Serves compiled graphs. `app` is the aiohttp application; `drain` shuts it down gently."""

    def __init__(self, graphs: Sequence[CompiledGraph], *, registry: Registry = DEFAULT_REGISTRY,
                 bus: Bus | None = None) -> None:
        self.graphs = tuple(graphs)
        self.current: dict[str, CompiledGraph] = {g.name: g for g in self.graphs}
        """What new sessions start from, by the name each spec was served under (hot reload
        replaces the graph; the routes stay)."""
        self.registry = registry
        self.bus = bus or Bus()
        self.sessions: dict[str, Session] = {}
        self.metrics = ServerMetrics(self.bus, lambda: self.sessions.values())
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.app = web.Application()
        self._routes()

    # -- routing ---------------------------------------------------------------------------------

    def _routes(self) -> None:
        paths: dict[str, str] = {}
        page: CompiledGraph | None = None

        def claim(path: str, graph: CompiledGraph) -> None:
            if path in paths:
                raise UsageError(f"Specs {paths[path]!r} and {graph.name!r} both serve {path}.")
            paths[path] = graph.name

        for graph in self.graphs:
            entry = self._entry(graph)
            spec = graph.nodes[entry]
            claim(getattr(spec, "path", ""), graph)
            match spec:
                case WebsocketTransportSpec():
                    self.app.router.add_get(spec.path, functools.partial(
                        self._connect, graph, spec.max_message_bytes))
                    if spec.page and page is None:
                        page = graph
                case TextTransportSpec():
                    self.app.router.add_get(spec.path, functools.partial(
                        self._connect, graph, spec.max_message_bytes))
                case TwilioTransportSpec():
                    claim(spec.webhook_path, graph)
                    self.app.router.add_get(spec.path, functools.partial(
                        self._connect, graph, 65_536))
                    self.app.router.add_post(spec.webhook_path, functools.partial(
                        self._twiml, spec))
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics)
        if page is not None:
            self._page = page
            self.app.router.add_get("/", self._static)
            self.app.router.add_get("/flowspec/config.json", self._config)
            self.app.router.add_get("/flowspec/static/{name}", self._static)

    def _entry(self, graph: CompiledGraph) -> str:
        entry = graph.entry
        if entry is None or graph.nodes[entry].type not in SERVABLE:
            kind = graph.nodes[entry].type if entry else "no entry transport"
            hint = {"transport.console": "use `flowspec chat`",
                    "transport.wav": "use `flowspec run`"}.get(kind, "give it a "
                                                                   "transport.websocket, "
                                                                   "transport.text or "
                                                                   "transport.twilio")
            raise UsageError(f"Spec {graph.name!r} cannot be served ({kind}): {hint}.")
        return entry

    # -- sessions --------------------------------------------------------------------------------

    def _factory(self, graph: CompiledGraph, connection: Connection) -> Registry:
        """A registry for one connection: the entry transport is built around `connection`."""
        entry = self._entry(graph)
        transport: Callable[..., Node] = self.registry.resolve(graph.nodes[entry].type)
        return with_entry(self.registry, graph,
                          functools.partial(transport, connection=connection))

    async def _connect(self, graph: CompiledGraph, max_bytes: int,
                       request: web.Request) -> web.StreamResponse:
        if self.draining:
            return web.json_response({"error": "The server is shutting down."}, status=503)
        graph = self.current.get(graph.name, graph)
        ws = web.WebSocketResponse(max_msg_size=max_bytes, heartbeat=30.0)
        await ws.prepare(request)
        entry = self._entry(graph)
        connection = Connection(socket=AiohttpClientSocket(ws), spec_name=graph.name,
                                spec_version=graph.version, remote=request.remote or "",
                                on_frame=self.metrics.frame_counter(graph.name, entry))
        session = Session(graph, registry=self._factory(graph, connection), bus=self.bus)
        self.sessions[session.id] = session
        self._idle.clear()
        extra = {"session_id": session.id, "spec": graph.name, "remote": connection.remote}
        log.info("session started", extra=extra)
        try:
            async with session:
                await session.wait()
        except FlowspecError as exc:
            log.warning("session could not start: %s", exc, extra=extra)
            await ws.send_str(json.dumps({"type": "error", "code": "session_failed",
                                          "message": "The bot could not start; see the server "
                                          "log."}))
            await ws.close(code=CLOSE_SERVER_ERROR, message=b"session failed")
        finally:
            self.sessions.pop(session.id, None)
            if not self.sessions:
                self._idle.set()
            if not ws.closed:
                await ws.close()
            log.info("session ended: %s", session.close_reason or "closed", extra=extra)
        return ws

    async def _twiml(self, spec: TwilioTransportSpec, request: web.Request) -> web.Response:
        from flowspec.transports.twilio import signature_valid, stream_url, twiml

        form = {k: str(v) for k, v in (await request.post()).items()}
        if spec.auth_token:
            url = str(request.url)
            if spec.public_url:
                url = spec.public_url.rstrip("/") + request.path_qs
            given = request.headers.get("X-Twilio-Signature", "")
            if not signature_valid(spec.auth_token, url, form, given):
                return web.Response(status=403, text="Invalid Twilio signature.")
        scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
        host = request.headers.get("X-Forwarded-Host", request.host)
        url = stream_url(spec.public_url, scheme, host, spec.path)
        params: dict[str, str] = {k: form[k] for k in ("From", "To", "CallSid") if k in form}
        return web.Response(text=twiml(url, params), content_type="application/xml")

    # -- plain HTTP ------------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        status = "draining" if self.draining else "ok"
        body = {"status": status, "sessions": len(self.sessions),
                "specs": [{"name": g.name, "version": g.version}
                          for g in self.current.values()]}
        return web.json_response(body, status=503 if self.draining else 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def _config(self, request: web.Request) -> web.Response:
        graph = self.current.get(self._page.name, self._page)
        spec = graph.nodes[self._entry(graph)]
        assert isinstance(spec, WebsocketTransportSpec)
        body: dict[str, Any] = {"name": graph.name, "version": graph.version,
                                "description": graph.spec.description or "",
                                "path": spec.path, "audio": spec.audio.model_dump()}
        return web.json_response(body)

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "index.html")
        if name not in STATIC:
            raise web.HTTPNotFound()
        data = resources.files("flowspec.transports").joinpath("web").joinpath(name).read_bytes()
        return web.Response(body=data, content_type=STATIC[name],
                            headers={"Cache-Control": "no-cache"})

    # -- shutdown --------------------------------------------------------------------------------

    async def drain(self, grace_s: float) -> None:
        """Stop taking new sessions; wait up to `grace_s` s for running ones to end, then end
        what is left (their clients are told the server is going away)."""
        self.draining = True
        if self.sessions:
            log.info("draining %d session(s), up to %s s", len(self.sessions), grace_s)
            try:
                async with asyncio.timeout(grace_s):
                    await self._idle.wait()
            except TimeoutError:
                log.warning("%d session(s) still running; ending them", len(self.sessions))
        for session in list(self.sessions.values()):
            session.request_end("server shutting down")
        self.metrics.close()



def with_entry(registry: Registry, graph: CompiledGraph, factory: NodeFactory) -> Registry:
    """A registry over `registry` in which `graph`'s entry node is built by `factory` (other
    nodes of the same type keep theirs): how a session's transport gets its connection."""
    entry = graph.entry
    if entry is None:
        raise UsageError(f"Spec {graph.name!r} has no entry transport.")
    node_type = graph.nodes[entry].type
    layered = Registry(parent=registry)
    base = registry.resolve(node_type) if node_type in registry else None

    def build(ctx: Context) -> Node:
        if ctx.node_id == entry or base is None:
            return factory(ctx)
        return base(ctx)

    layered.register(node_type, build)
    return layered
