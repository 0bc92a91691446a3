"""The aiohttp server behind `flowspec serve`: one session per connection on each spec's entry.

Routes, for each served spec by its entry transport:
- `transport.websocket`: its WebSocket `path`, and the browser page at `/` (with its assets under
  `/flowspec/static/` and the page's settings at `/flowspec/config.json`);
- `transport.text`: its WebSocket `path`;
- `transport.twilio`: its media-stream WebSocket `path` and the TwiML webhook (`POST`);
and `/healthz` (200 while serving, 503 while draining) and `/metrics` (Prometheus text).

Every request's `Host` must name this server (`flowspec.server.guard`). A connection becomes a
session only when it passes the doors of its transport: a browser socket's `Origin` (the server's
own page, or one in `allowed_origins`), a Twilio stream's signature (when `auth_token` is set),
and the session caps (the server's `max_sessions` and the transport's own); a refused connection
is counted in `/metrics` by reason.

`Server.drain()` is the graceful shutdown: stop accepting, let running calls finish up to a
timeout, then end the rest. `/healthz` answers 503 from its first moment, so a load balancer
stops sending calls while the running ones finish.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from aiohttp import web

from flowspec import limits
from flowspec.conversation.clock import Clock
from flowspec.errors import FlowspecError, UsageError
from flowspec.reload.source import SpecSource
from flowspec.runtime.bus import Bus
from flowspec.runtime.node import Context, Node, NodeFactory
from flowspec.runtime.registry import DEFAULT_REGISTRY, Registry
from flowspec.runtime.session import Session
from flowspec.server.guard import HostPolicy, origin_allowed
from flowspec.server.metrics import CONTENT_TYPE, ServerMetrics
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.transports import (
    BrowserTransportSpec,
    ServedTransportSpec,
    TextTransportSpec,
    TwilioTransportSpec,
    WebsocketTransportSpec,
)
from flowspec.transports.wire import AiohttpClientSocket, Connection, dumps

log = logging.getLogger("flowspec.server")

STATIC = {"index.html": "text/html", "app.js": "text/javascript",
          "capture.js": "text/javascript", "style.css": "text/css"}
SERVABLE = ("transport.websocket", "transport.text", "transport.twilio")
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_AGAIN = 1013



def manual_turns(graph: CompiledGraph) -> bool:
    """Whether the graph's model hears turns only when the client ends them: a Realtime or
    transcription node with `turn_detection: false`."""
    from flowspec.spec.models.realtime import RealtimeNodeSpec
    from flowspec.spec.models.realtime_beta import RealtimeBetaNodeSpec
    from flowspec.spec.models.speech import TranscribeNodeSpec

    for node in graph.nodes.values():
        detection: object
        if isinstance(node, RealtimeNodeSpec):
            audio = node.effective_settings().session_properties.audio
            detection = audio.input.turn_detection if audio and audio.input else None
        elif isinstance(node, RealtimeBetaNodeSpec):
            detection = node.effective_settings().session_properties.turn_detection
        elif isinstance(node, TranscribeNodeSpec):
            detection = node.settings.turn_detection
        else:
            continue
        if detection is False:
            return True
    return False

class Server:
    """Serves compiled graphs. `app` is the aiohttp application; `drain` shuts it down gently."""

    def __init__(self, graphs: Sequence[CompiledGraph], *, registry: Registry = DEFAULT_REGISTRY,
                 bus: Bus | None = None, max_sessions: int = limits.MAX_SESSIONS,
                 hosts: HostPolicy | None = None, clock: Clock | None = None) -> None:
        self.graphs = tuple(graphs)
        self.current: dict[str, CompiledGraph] = {g.name: g for g in self.graphs}
        """What new sessions start from, by the name each spec was served under (hot reload
        replaces the graph; the routes stay)."""
        self.registry = registry
        self.clock = clock
        """What times each call's conversation (None: the event loop's clock)."""
        self.bus = bus or Bus()
        self.sessions: dict[str, Session] = {}
        self.metrics = ServerMetrics(self.bus, lambda: self.sessions.values(),
                                     lambda: self.sources)
        self.sources: dict[str, SpecSource] = {}
        """Where each served spec's truth lives (set by `serve`), for `/healthz`."""
        self.max_sessions = max_sessions
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()
        # Connections admitted and not yet ended, overall and by spec: counted before the
        # WebSocket handshake, so a burst of connects cannot slip past a cap.
        self._admitted = 0
        self._admitted_by: dict[str, int] = {}
        self.hosts = hosts or HostPolicy()
        self.app = web.Application(middlewares=[self.hosts.middleware()])
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
            self.metrics.refused(graph.name, "draining")
            return web.json_response({"error": "The server is shutting down."}, status=503)
        graph = self.current.get(graph.name, graph)
        entry = self._entry(graph)
        refused = _door(graph.nodes[entry], request)
        if refused is not None:
            reason, status, message = refused
            self.metrics.refused(graph.name, reason)
            log.warning("connection refused (%s) from %s", reason, request.remote or "?",
                        extra={"spec": graph.name})
            return web.json_response({"error": reason, "message": message}, status=status)
        over = self._over_capacity(graph, graph.nodes[entry])
        self._admit(graph.name, +1)
        try:
            ws = web.WebSocketResponse(max_msg_size=max_bytes, heartbeat=30.0)
            await ws.prepare(request)
            if over is not None:
                self.metrics.refused(graph.name, "capacity")
                log.warning("connection refused: %s", over, extra={"spec": graph.name})
                if not isinstance(graph.nodes[entry], TwilioTransportSpec):
                    await ws.send_str(dumps({"type": "error", "code": "server_busy",
                                             "message": over}))
                await ws.close(code=CLOSE_TRY_AGAIN, message=b"server busy")
                return ws
            await self._run_session(graph, entry, ws, request)
            return ws
        finally:
            self._admit(graph.name, -1)

    def _over_capacity(self, graph: CompiledGraph, spec: NodeSpec) -> str | None:
        """Why one more session of `graph` is refused, or None. Counts connections admitted
        and not yet ended (a session being set up counts too)."""
        if self._admitted >= self.max_sessions:
            return f"The server holds its most sessions ({self.max_sessions}); try again later."
        cap = spec.max_sessions if isinstance(spec, ServedTransportSpec) else None
        if cap is not None and self._admitted_by.get(graph.name, 0) >= cap:
            return f"{graph.name} holds its most sessions ({cap}); try again later."
        return None

    def _admit(self, name: str, delta: int) -> None:
        self._admitted += delta
        count = self._admitted_by.get(name, 0) + delta
        if count > 0:
            self._admitted_by[name] = count
        else:
            self._admitted_by.pop(name, None)

    async def _run_session(self, graph: CompiledGraph, entry: str, ws: web.WebSocketResponse,
                           request: web.Request) -> None:
        connection = Connection(socket=AiohttpClientSocket(ws), spec_name=graph.name,
                                spec_version=graph.version, remote=request.remote or "",
                                on_frame=self.metrics.frame_counter(graph.name, entry),
                                query=dict(request.query))
        session = Session(graph, registry=self._factory(graph, connection), bus=self.bus,
                          clock=self.clock)
        self.sessions[session.id] = session
        self._idle.clear()
        extra = {"session_id": session.id, "spec": graph.name, "remote": connection.remote}
        log.info("session started", extra=extra)
        spec = graph.nodes[entry]
        try:
            try:
                async with session:
                    await session.wait()
            except FlowspecError as exc:
                log.warning("session could not start: %s", exc, extra=extra)
                if not isinstance(spec, TwilioTransportSpec):  # a caller hears it (below)
                    await ws.send_str(json.dumps({"type": "error", "code": "session_failed",
                                                  "message": "The bot could not start; see "
                                                  "the server log."}))
                    await ws.close(code=CLOSE_SERVER_ERROR, message=b"session failed")
            if isinstance(spec, TwilioTransportSpec):
                from flowspec.transports.unavailable import tell_caller

                await tell_caller(connection.socket, session, spec.unavailable_audio)
        finally:
            self.sessions.pop(session.id, None)
            if not self.sessions:
                self._idle.set()
            if not ws.closed:
                await ws.close()
            log.info("session ended: %s", session.close_reason or "closed", extra=extra)

    async def _twiml(self, spec: TwilioTransportSpec, request: web.Request) -> web.Response:
        from flowspec.transports.twilio import signature_valid, stream_url, twiml

        form = {k: str(v) for k, v in (await request.post()).items()}
        if spec.auth_token:
            given = request.headers.get("X-Twilio-Signature", "")
            if not signature_valid(spec.auth_token, public_url(spec, request), form, given):
                self.metrics.refused(self._name_of(spec), "signature")
                return web.Response(status=403, text="Invalid Twilio signature.")
        scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
        host = request.headers.get("X-Forwarded-Host", request.host)
        url = stream_url(spec.public_url, scheme, host, spec.path)
        params: dict[str, str] = {k: form[k] for k in ("From", "To", "CallSid") if k in form}
        # A number's webhook URL may carry the call's variables (`?customer_name=Ann`): the
        # declared ones travel on as stream parameters.
        declared = self._graph_of(spec).spec.variables
        params |= {k: v for k, v in request.query.items() if k in declared}
        return web.Response(text=twiml(url, params), content_type="application/xml")

    def _graph_of(self, spec: NodeSpec) -> CompiledGraph:
        return next((g for g in self.current.values() if spec in g.nodes.values()),
                    self.graphs[0])

    def _name_of(self, spec: NodeSpec) -> str:
        return next((g.name for g in self.current.values() if spec in g.nodes.values()), "")

    # -- plain HTTP ------------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        status = "draining" if self.draining else "ok"
        body = {"status": status, "sessions": len(self.sessions), "pid": os.getpid(),
                "specs": [self._spec_health(g) for g in self.current.values()]}
        return web.json_response(body, status=503 if self.draining else 200)

    def _spec_health(self, graph: CompiledGraph) -> dict[str, Any]:
        body: dict[str, Any] = {"name": graph.name, "version": graph.version,
                                "etag": graph.content_hash}
        source = self.sources.get(graph.name)
        if source is not None:
            # A replica whose store is away still serves its last good version: it says so,
            # and stays in rotation.
            body["source"] = source.health()
        return body

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
                                "path": spec.path, "audio": spec.audio.model_dump(),
                                # The page passes these on from its own query string, and no
                                # other parameter: an unrelated one would refuse the call.
                                "variables": list(graph.spec.variables),
                                # Manual turns: the page talks while a button or the space
                                # bar is held, and its release ends the turn.
                                "turns": "manual" if manual_turns(graph) else "server",
                                "video": spec.video.model_dump()}
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
        """Stop taking new sessions (while still answering `/healthz`, with 503); wait up to
        `grace_s` s for running ones to end, then end what is left (their clients are told the
        server is going away)."""
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



def public_url(spec: TwilioTransportSpec, request: web.Request) -> str:
    """The URL Twilio requested, as it signed it: under `public_url` when set (a proxy in front
    changes scheme and host), else as this server received it."""
    if spec.public_url:
        return spec.public_url.rstrip("/") + request.path_qs
    return str(request.url)


def _door(spec: NodeSpec, request: web.Request) -> tuple[str, int, str] | None:
    """`(reason, status, message)` when a connection may not open `spec`'s transport."""
    if isinstance(spec, BrowserTransportSpec) and not origin_allowed(request.headers,
                                                                      spec.allowed_origins):
        return ("origin", 403, "This page may not open the bot: list its origin in the "
                "transport's allowed_origins.")
    if isinstance(spec, TwilioTransportSpec) and spec.auth_token and \
            not _stream_signed(spec, request):
        return "signature", 403, "Invalid Twilio signature."
    return None


def _stream_signed(spec: TwilioTransportSpec, request: web.Request) -> bool:
    """Twilio signs the media-stream upgrade like a webhook with no form fields, over the URL it
    connected to. That URL is `wss://` while a proxy in front (or `public_url` written as
    `https://`) may show another scheme, so each scheme of the same address is tried: every one
    is an HMAC under the auth token."""
    from flowspec.transports.twilio import signature_valid

    assert spec.auth_token is not None
    given = request.headers.get("X-Twilio-Signature", "")
    if not given:
        return False
    _scheme, sep, rest = public_url(spec, request).partition("://")
    return any(signature_valid(spec.auth_token, f"{scheme}{sep}{rest}", {}, given)
               for scheme in ("wss", "https", "ws", "http"))


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
