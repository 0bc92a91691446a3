"""The admin API of `flowspec serve`: read and change the running spec.

    GET   /admin/spec       the document as written (`${VAR}` unresolved), version and ETag
    PATCH /admin/spec       `application/json-patch+json` (RFC 6902) or
                            `application/merge-patch+json` (RFC 7396), optional `If-Match`;
                            200 with the plan and per-session outcomes, 409 for a stale
                            `If-Match`, 422 with located errors (nothing changed)
    PUT   /admin/spec       a whole new document (YAML or JSON text), same answers
    GET   /admin/sessions   the live sessions and the version each runs

With several specs served, `?spec=NAME` picks one. Every request needs `Authorization: Bearer
TOKEN` (compared in constant time), loopback included: `flowspec serve` makes a token per start
unless one is configured (`flowspec.server.guard`). A request carrying an `Origin` other than
the server's own is refused whatever it carries, so no web page can drive the API through the
user's browser. What an admin change may do is bounded by `flowspec.reload.policy`; bodies are
bounded in size, nesting, number length and the time they take to arrive (`flowspec.limits`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from flowspec import limits
from flowspec.redact import Redactor
from flowspec.reload.apply import LiveSession
from flowspec.reload.policy import AdminPolicy
from flowspec.reload.service import Reloader, Result
from flowspec.reload.source import SpecSource
from flowspec.reload.store import PatchKind, SpecStore
from flowspec.server.app import Server
from flowspec.server.guard import bearer_matches, new_token, same_origin
from flowspec.spec.compiled import CompiledGraph

PATCH_TYPES: dict[str, PatchKind] = {"application/json-patch+json": "json-patch",
                                     "application/merge-patch+json": "merge-patch"}
MAX_BODY = limits.MAX_DOCUMENT_BYTES


class ServedSpec:
    """One spec of a `Server` as a reload target: its sessions (those started from any graph it
    served) and the graph new sessions start from."""

    def __init__(self, server: Server, name: str,
                 prepare: Callable[[CompiledGraph], CompiledGraph]) -> None:
        self._server = server
        self._name = name
        self._prepare = prepare
        self._graphs = [server.current[name]]

    def live_sessions(self) -> Iterable[LiveSession]:
        ours = {id(graph) for graph in self._graphs}
        return [s for s in list(self._server.sessions.values()) if id(s.graph) in ours]

    def serve(self, graph: CompiledGraph) -> None:
        prepared = self._prepare(graph)
        running = {id(s.graph) for s in self._server.sessions.values()}
        # Keep only graphs a session still runs (session graphs are matched by identity).
        self._graphs = [g for g in self._graphs if id(g) in running]
        self._graphs.append(prepared)
        self._server.current[self._name] = prepared


def allowed(headers: Mapping[str, str], token: str) -> int:
    """0 when a request may use the admin API, else the HTTP status to refuse it with: 403 for
    a foreign `Origin` (a web page), 401 without the token."""
    origin = headers.get("Origin")
    if origin is not None and not same_origin(origin, headers.get("Host")):
        return 403
    return 0 if bearer_matches(headers, token) else 401


class Admin:
    def __init__(self, reloaders: Mapping[str, Reloader], *, token: str) -> None:
        if not token:
            raise ValueError("the admin API needs a token")
        self.reloaders = dict(reloaders)
        self.token = token

    def install(self, app: web.Application) -> None:
        app.router.add_get("/admin/spec", self._get)
        app.router.add_patch("/admin/spec", self._patch)
        app.router.add_put("/admin/spec", self._put)
        app.router.add_get("/admin/sessions", self._sessions)

    def _pick(self, request: web.Request) -> Reloader:
        refused = allowed(request.headers, self.token)
        if refused == 403:
            raise _error(403, "foreign_origin", "The admin API does not answer requests from "
                         "web pages.")
        if refused:
            raise _error(401, "unauthorized", "Send Authorization: Bearer <admin token> (the "
                         "token `flowspec serve` printed at start, also in its token file).")
        name = request.query.get("spec")
        if name is None and len(self.reloaders) == 1:
            return next(iter(self.reloaders.values()))
        reloader = self.reloaders.get(name or "")
        if reloader is None:
            raise _error(404, "unknown_spec", "Name the spec with ?spec=: one of "
                         f"{', '.join(sorted(self.reloaders))}.")
        return reloader

    async def _get(self, request: web.Request) -> web.Response:
        store = self._pick(request).store
        return _json(200, store.document(), store)

    async def _sessions(self, request: web.Request) -> web.Response:
        reloader = self._pick(request)
        return _json(200, {"version": reloader.store.version,
                           "sessions": reloader.sessions()}, reloader.store)

    async def _patch(self, request: web.Request) -> web.Response:
        reloader = self._pick(request)
        kind = PATCH_TYPES.get(request.content_type)
        if kind is None:
            raise _error(415, "unsupported_media_type", "Send application/json-patch+json or "
                         "application/merge-patch+json.")
        body = await _read(request)
        try:
            patch = limits.loads(body)
        except limits.InputTooComplex as exc:
            raise _error(400, "too_complex", f"The patch is refused: {exc}.") from None
        except ValueError as exc:
            raise _error(400, "bad_json", f"The patch is not JSON: {exc}.") from None
        result = await reloader.patch(kind, patch, request.headers.get("If-Match"))
        return _result(result, reloader.store)

    async def _put(self, request: web.Request) -> web.Response:
        reloader = self._pick(request)
        text = await _read(request)
        result = await reloader.replace(text, "admin", request.headers.get("If-Match"))
        return _result(result, reloader.store)


async def _read(request: web.Request) -> str:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _error(413, "too_large", f"The body is over {MAX_BODY} bytes.")
    try:
        async with asyncio.timeout(limits.BODY_TIMEOUT_S):
            data = await request.content.read(MAX_BODY + 1)
    except TimeoutError:
        raise _error(408, "timeout", f"The body did not arrive within "
                     f"{limits.BODY_TIMEOUT_S:g} s.") from None
    if len(data) > MAX_BODY:
        raise _error(413, "too_large", f"The body is over {MAX_BODY} bytes.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _error(400, "bad_encoding", "The body is not UTF-8.") from None


def _json(status: int, body: dict[str, Any], store: SpecStore) -> web.Response:
    return web.json_response(body, status=status, headers={"ETag": store.etag})


def _result(result: Result, store: SpecStore) -> web.Response:
    return _json(result.status, result.body, store)


def _error(status: int, code: str, message: str) -> web.HTTPException:
    text = json.dumps({"error": code, "message": message})
    if status == 413:
        return web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=MAX_BODY + 1,
                                             text=text, content_type="application/json")
    kinds: dict[int, type[web.HTTPException]] = {
        400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden,
        404: web.HTTPNotFound, 408: web.HTTPRequestTimeout, 415: web.HTTPUnsupportedMediaType}
    return kinds[status](text=text, content_type="application/json")


def attach(server: Server, specs: Iterable[tuple[CompiledGraph, str]],
           prepare: Callable[[CompiledGraph], CompiledGraph], *, token: str | None = None,
           env: Mapping[str, str] | None = None, confirm_timeout: float = 5.0,
           allow_code: bool = False, api: bool = True,
           redactor: Redactor | None = None,
           sources: Mapping[str, SpecSource] | None = None) -> Admin:
    """Give `server` hot reload and (unless `api` is false) the admin API for `specs`:
    (compiled graph as written, its text). `prepare` turns a reloaded graph into what sessions
    run (the offline rewrite). `sources` holds the truth of each spec by name (without one, a
    spec's changes live in memory only). Without a `token` one is made (`Admin.token`). Call
    `Reloader.open` on each reloader before serving when there are sources."""
    reloaders: dict[str, Reloader] = {}
    policy = AdminPolicy(allow_code=allow_code)
    for graph, text in specs:
        store = SpecStore(text, graph.source, graph, env=env)
        target = ServedSpec(server, graph.name, prepare)
        reloaders[graph.name] = Reloader(store, target, server.bus,
                                         confirm_timeout=confirm_timeout, policy=policy,
                                         redactor=redactor,
                                         source=(sources or {}).get(graph.name))
    admin = Admin(reloaders, token=token or new_token())
    if api:
        admin.install(server.app)
    return admin
