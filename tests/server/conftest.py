"""Run a `Server` on a free loopback port, with an echoing stand-in for a model node."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from aiohttp import web

from flowspec.frames import (
    AudioFrame,
    Frame,
    ResponseEndedFrame,
    ResponseStartedFrame,
    StartFrame,
    TextFrame,
    TranscriptFrame,
)
from flowspec.runtime import Context, Registry
from flowspec.server.app import Server
from flowspec.spec.compiled import CompiledGraph
from flowspec.testing import make_registry


@asynccontextmanager
async def running(graphs: Sequence[CompiledGraph], registry: Registry | None = None
                  ) -> AsyncIterator[tuple[Server, str]]:
    server = Server(graphs, **({"registry": registry} if registry else {}))
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


class EchoNode:
    """`test.echo`: answers typed text with text, and sends received audio straight back as the
    assistant's item `item_1`. Records every frame it receives."""

    instances: list[EchoNode] = []

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.received: list[Frame] = []
        EchoNode.instances.append(self)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def handle(self, frame: Frame, port: str) -> None:
        if isinstance(frame, StartFrame):
            return
        self.received.append(frame)
        if isinstance(frame, AudioFrame):
            await self.ctx.emit(dataclasses.replace(frame, item_id="item_1"))
        elif isinstance(frame, TextFrame) and frame.role == "user":
            await self.ctx.emit(ResponseStartedFrame(response_id="r1"))
            await self.ctx.emit(TranscriptFrame(text=frame.text, role="user", final=True))
            await self.ctx.emit(TextFrame(text="echo: ", item_id="m1"))
            await self.ctx.emit(TextFrame(text=frame.text, item_id="m1"))
            await self.ctx.emit(ResponseEndedFrame(response_id="r1"))

    def of(self, kind: type[Frame]) -> list[Frame]:
        return [f for f in self.received if isinstance(f, kind)]


def echo_registry() -> Registry:
    registry = make_registry()
    registry.register("test.echo", EchoNode)
    return registry


async def until(predicate: Callable[[], object], *, polls: int = 5000) -> None:
    """Yield to the event loop until `predicate()` holds (a guard against hangs, not a timing
    assertion: each poll sleeps 1 ms)."""
    for _ in range(polls):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never became true")
