"""A small stand-in for a model node, and a session runner for transports under test."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from flowspec.frames import (
    AudioFrame,
    Frame,
    ResponseEndedFrame,
    ResponseStartedFrame,
    StartFrame,
    TextFrame,
    TranscriptFrame,
)
from flowspec.runtime import Bus, Context, Executor, Registry
from flowspec.runtime.node import NodeFactory
from flowspec.runtime.session import Session
from flowspec.spec.models.base import NodeSpec
from flowspec.testing import graph, make_registry


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


def echo_registry(node_type: str, factory: NodeFactory) -> Registry:
    registry = make_registry()
    registry.register("test.echo", EchoNode)
    registry.register(node_type, factory)
    return registry


@asynccontextmanager
async def echo_session(spec: NodeSpec, factory: Callable[[Context], object],
                       bus: Bus | None = None) -> AsyncIterator[tuple[Session, EchoNode]]:
    """A running session of `caller -> llm -> caller` with `spec` as the caller transport (built
    by `factory`) and an `EchoNode` as the model."""
    compiled = graph({"caller": spec, "llm": "test.echo"}, ["caller -> llm -> caller"],
                     entry="caller")
    registry = echo_registry(spec.type, factory)  # type: ignore[arg-type]
    executor = Executor(registry=registry, bus=bus)
    async with executor.session(compiled) as session:
        llm = session.node("llm")
        assert isinstance(llm, EchoNode)
        yield session, llm


async def until(predicate: Callable[[], object], *, polls: int = 5000) -> None:
    """Yield to the event loop until `predicate()` holds (a guard against hangs, not a timing
    assertion: each poll sleeps 1 ms)."""
    import asyncio

    for _ in range(polls):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never became true")
