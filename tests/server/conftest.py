"""Run a `Server` on a free loopback port, with an echoing stand-in for a model node."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from aiohttp import web

from flowspec.runtime import Registry
from flowspec.server.app import Server
from flowspec.spec.compiled import CompiledGraph
from flowspec.testing import make_registry


@asynccontextmanager
async def running(graphs: Sequence[CompiledGraph], registry: Registry | None = None, *,
                  server: Server | None = None) -> AsyncIterator[tuple[Server, str]]:
    if server is None:
        server = Server(graphs, registry=registry) if registry else Server(graphs)
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield server, f"127.0.0.1:{port}"
    finally:
        await site.stop()
        await server.drain(5)
        await runner.cleanup()


def echo_registry() -> Registry:
    registry = make_registry()
    return registry

