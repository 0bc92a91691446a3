"""The admin API of `flowspec serve`: read and change the running spec.

    GET   /admin/spec       the document as written (`${VAR}` unresolved), version and ETag
    PATCH /admin/spec       `application/json-patch+json` (RFC 6902) or
                            `application/merge-patch+json` (RFC 7396), optional `If-Match`;
                            200 with the plan and per-session outcomes, 409 for a stale
                            `If-Match`, 422 with located errors (nothing changed)
    PUT   /admin/spec       a whole new document (YAML or JSON text), same answers
    GET   /admin/sessions   the live sessions and the version each runs

With several specs served, `?spec=NAME` picks one. Closed to everything but loopback unless a
token is configured; then other addresses must send `Authorization: Bearer TOKEN` (compared in
constant time). A request relayed by a proxy (`Forwarded`, `X-Forwarded-For`) is not loopback.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from flowspec.reload.apply import LiveSession
from flowspec.reload.service import Reloader, Result
from flowspec.reload.store import PatchKind, SpecStore
from flowspec.server.app import Server
from flowspec.spec.compiled import CompiledGraph

PATCH_TYPES: dict[str, PatchKind] = {"application/json-patch+json": "json-patch",
                                     "application/merge-patch+json": "merge-patch"}
MAX_BODY = 1 << 20
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


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


def allowed(remote: str | None, headers: Mapping[str, str], token: str | None) -> int:
    """0 when the request may use the admin API, else the HTTP status to refuse it with."""
    given = headers.get("Authorization", "")
    if token:
        scheme, _, value = given.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                             token.encode()):
            return 0
    if _loopback(remote) and not any(h in headers for h in PROXY_HEADERS):
        return 0
    return 401 if token else 403


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


class Admin:
    def __init__(self, reloaders: Mapping[str, Reloader], *, token: str | None = None) -> None:
        self.reloaders = dict(reloaders)
        self.token = token or None

    def install(self, app: web.Application) -> None:
        app.router.add_get("/admin/spec", self._get)
        app.router.add_patch("/admin/spec", self._patch)
        app.router.add_put("/admin/spec", self._put)
        app.router.add_get("/admin/sessions", self._sessions)

    def _pick(self, request: web.Request) -> Reloader:
        refused = allowed(request.remote, request.headers, self.token)
        if refused == 401:
            raise _error(401, "unauthorized", "Send Authorization: Bearer <admin token>.")
        if refused:
            raise _error(403, "forbidden", "The admin API answers loopback only; start "
                         "`flowspec serve` with --admin-token to open it to other addresses.")
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
            patch = json.loads(body)
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
    data = await request.content.read(MAX_BODY + 1)
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
        404: web.HTTPNotFound, 415: web.HTTPUnsupportedMediaType}
    return kinds[status](text=text, content_type="application/json")


def attach(server: Server, specs: Iterable[tuple[CompiledGraph, str]],
           prepare: Callable[[CompiledGraph], CompiledGraph], *, token: str | None = None,
           env: Mapping[str, str] | None = None, confirm_timeout: float = 5.0) -> Admin:
    """Give `server` hot reload and the admin API for `specs`: (compiled graph as written,
    its text). `prepare` turns a reloaded graph into what sessions run (the offline rewrite)."""
    reloaders: dict[str, Reloader] = {}
    for graph, text in specs:
        store = SpecStore(text, graph.source, graph, env=env)
        target = ServedSpec(server, graph.name, prepare)
        reloaders[graph.name] = Reloader(store, target, server.bus,
                                         confirm_timeout=confirm_timeout)
    admin = Admin(reloaders, token=token)
    admin.install(server.app)
    return admin
