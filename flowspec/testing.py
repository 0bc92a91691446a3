"""Test helpers for graphs and nodes, shipped with flowspec so users can test their own nodes.

- `graph(...)` builds a `CompiledGraph` from node types and `a -> b` edges, without a spec file;
- `make_registry()` layers `test.passthrough`, `test.recorder` and `test.echo` over the default
  registry;
- `RecorderNode` records what reaches it, and can be held busy to let frames queue behind it;
- `EchoNode` stands in for a model node: it answers text with text and plays audio back;
- `until(predicate)` yields to the event loop until a condition holds (a guard against hangs);
- `run_graph(...)` runs one session with scripted inputs and returns what the recorders received
  and every bus event;
- `capture_events(bus)` collects bus events within a `with` block.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from flowspec.frames import (
    AudioFrame,
    Frame,
    Lane,
    ResponseEndedFrame,
    ResponseStartedFrame,
    StartFrame,
    TextFrame,
    TranscriptFrame,
)
from flowspec.runtime.bus import Bus, BusEvent
from flowspec.runtime.executor import Executor
from flowspec.runtime.node import Context
from flowspec.runtime.registry import DEFAULT_REGISTRY, Registry
from flowspec.spec.compiled import DEFAULT_CAPACITY, CompiledEdge, CompiledGraph, Overflow, PortRef
from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.graph import GraphSpec

F = TypeVar("F", bound=Frame)
E = TypeVar("E", bound=BusEvent)


class RecorderSpec(NodeSpec):
    """Spec of `test.recorder`: `forward` re-emits every received frame on `out`."""

    type: str = "test.recorder"
    forward: bool = False


class PassthroughNode:
    """`test.passthrough`: emits every frame it receives on `out`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        return None

    async def handle(self, frame: Frame, port: str) -> None:
        await self.ctx.emit(frame)

    async def stop(self) -> None:
        return None


class RecorderNode:
    """`test.recorder`: records each frame (and its port) on arrival.

    `hold()` makes it wait, before finishing each data or control frame, until `release()`: the
    node stays busy, so later frames queue on its input edges, with no timing involved."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.forward = bool(getattr(ctx.spec, "forward", False))
        self.received: list[tuple[str, Frame]] = []
        self.started = False
        self.stopped = False
        self._gate: asyncio.Event | None = None

    @property
    def frames(self) -> list[Frame]:
        """Received frames, without the executor's StartFrame."""
        return [f for _port, f in self.received if not isinstance(f, StartFrame)]

    def of(self, kind: type[F]) -> list[F]:
        return [f for f in self.frames if isinstance(f, kind)]

    def hold(self) -> None:
        if self._gate is None:
            self._gate = asyncio.Event()

    def release(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    async def start(self) -> None:
        self.started = True

    async def handle(self, frame: Frame, port: str) -> None:
        self.received.append((port, frame))
        gate = self._gate
        if gate is not None and frame.lane is not Lane.SYSTEM:
            await gate.wait()
        if self.forward and not isinstance(frame, StartFrame):
            await self.ctx.emit(frame)

    async def stop(self) -> None:
        self.stopped = True


class EchoNode:
    """`test.echo`: a stand-in for a model node. It answers user text with `echo: <text>` (a
    response with the user's transcript and two text deltas) and sends received audio straight
    back as the assistant's item `item_1`. Records every frame it receives."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.received: list[Frame] = []

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

    def of(self, kind: type[F]) -> list[F]:
        return [f for f in self.received if isinstance(f, kind)]


async def until(predicate: Callable[[], object], *, polls: int = 5000) -> None:
    """Yield to the event loop until `predicate()` holds. A guard against hangs, not a timing
    assertion: each poll sleeps 1 ms, and running out raises AssertionError."""
    for _ in range(polls):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never became true")


def make_registry(parent: Registry | None = DEFAULT_REGISTRY) -> Registry:
    """A fresh registry with the test nodes, over `parent`; register your own nodes into it."""
    registry = Registry(parent=parent)
    registry.register("test.passthrough", PassthroughNode)
    registry.register("test.recorder", RecorderNode)
    registry.register("test.echo", EchoNode)
    return registry


def graph(
    nodes: Mapping[str, str | NodeSpec],
    edges: Iterable[str | CompiledEdge] = (),
    *,
    tools: Mapping[str, Iterable[str]] | None = None,
    entry: str | None = None,
    name: str = "test",
    capacity: int = DEFAULT_CAPACITY,
    overflow: Overflow = Overflow.BLOCK,
) -> CompiledGraph:
    """A `CompiledGraph` from node types (or specs) and edges such as `"a -> b -> c"` or
    `"a.audio -> b.in"` (ports default to `out` and `in`; a named port on a middle node of a chain
    is its input), with no spec file and no checks."""
    specs = {
        node_id: NodeSpec.model_construct(type=spec) if isinstance(spec, str) else spec
        for node_id, spec in nodes.items()
    }
    compiled: list[CompiledEdge] = []
    for edge in edges:
        if isinstance(edge, CompiledEdge):
            compiled.append(edge)
            continue
        hops = [part.strip() for part in edge.split("->")]
        for index, (left, right) in enumerate(zip(hops, hops[1:], strict=False)):
            # Inside a chain, a named port on a middle node is the port the chain enters by.
            source = _port(left.partition(".")[0] if index else left, "out")
            compiled.append(CompiledEdge(source=source, target=_port(right, "in"),
                                         capacity=capacity, overflow=overflow))
    return CompiledGraph(
        name=name,
        spec=GraphSpec.model_construct(name=name),
        nodes=specs,
        edges=tuple(compiled),
        tools={model: tuple(ids) for model, ids in (tools or {}).items()},
        entry=entry,
    )


def _port(text: str, default: str) -> PortRef:
    node, _, port = text.partition(".")
    return PortRef(node, port or default)


@dataclass
class GraphRun:
    """What `run_graph` saw: frames each recorder received, and every bus event."""

    session_id: str
    received: dict[str, list[Frame]] = field(default_factory=dict)
    events: list[BusEvent] = field(default_factory=list)

    def frames(self, node_id: str, kind: type[F] = Frame) -> list[F]:  # type: ignore[assignment]
        return [f for f in self.received.get(node_id, []) if isinstance(f, kind)]

    def events_of(self, kind: type[BusEvent]) -> list[BusEvent]:
        return [e for e in self.events if isinstance(e, kind)]


async def run_graph(
    compiled: CompiledGraph,
    inputs: Iterable[tuple[str, Frame]],
    *,
    registry: Registry | None = None,
    cancel: bool = False,
) -> GraphRun:
    """Run one session of `compiled`: emit each `(node_id, frame)` from that node's `out` port in
    order, then end the session (drain, or cancel if `cancel`) and report what happened."""
    bus = Bus()
    with capture_events(bus) as events:
        executor = Executor(registry=registry or make_registry(), bus=bus)
        session = executor.session(compiled)
        async with session:
            for node_id, frame in inputs:
                await session.send(node_id, frame)
            if cancel:
                session.request_cancel("run_graph")
        run = GraphRun(session.id, events=events)
        for node_id in compiled.nodes:
            node = session.node(node_id)
            if isinstance(node, RecorderNode):
                run.received[node_id] = node.frames
    return run


@overload
def capture_events(bus: Bus) -> AbstractContextManager[list[BusEvent]]: ...


@overload
def capture_events(bus: Bus, kind: type[E], /) -> AbstractContextManager[list[E]]: ...


@overload
def capture_events(bus: Bus, *kinds: type[BusEvent]) -> AbstractContextManager[list[BusEvent]]:
    ...


def capture_events(bus: Bus, *kinds: type[BusEvent]) -> AbstractContextManager[list[Any]]:
    """Collect the events published on `bus` inside the block (all of them, or only `kinds`;
    with one kind the list is typed as that kind)."""
    return _capture(bus, kinds)


@contextmanager
def _capture(bus: Bus, kinds: tuple[type[BusEvent], ...]) -> Iterator[list[BusEvent]]:
    events: list[BusEvent] = []
    with bus.subscribe(events.append, *kinds):
        yield events
