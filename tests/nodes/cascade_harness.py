"""Running the nodes of a cascaded voice bot (`openai.transcribe`, `openai.speech`) against the
emulator: a caller that feeds audio and plays on a clock the test drives
(`tests/nodes/openai_realtime/harness.py`'s `FakeTransport`), recorders around the node under
test, and checks of every client event a transcription connection sent against the SDK's
models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from flowspec.emulator import Emulator
from flowspec.frames import Frame
from flowspec.nodes.openai_transcribe.node import TranscribeNode
from flowspec.runtime.bus import Bus, BusEvent
from flowspec.runtime.executor import Executor
from flowspec.runtime.registry import Registry
from flowspec.runtime.session import Session
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.speech import SpeechNodeSpec, TranscribeNodeSpec
from flowspec.testing import RecorderNode, graph, make_registry
from tests.emulator.conformance import check_client
from tests.nodes.openai_realtime.harness import STEP, FakeTransport

F = TypeVar("F", bound=Frame)
E = TypeVar("E", bound=BusEvent)


def transcribe_spec(emu: Emulator, **fields: Any) -> TranscribeNodeSpec:
    return TranscribeNodeSpec.model_validate({
        "type": "openai.transcribe", "base_url": f"{emu.ws_base_url}/realtime",
        "api_key": "test-key", **fields})


def speech_spec(emu: Emulator, **fields: Any) -> SpeechNodeSpec:
    return SpeechNodeSpec.model_validate({
        "type": "openai.speech", "base_url": emu.http_base_url, "api_key": "test-key",
        **fields})


class Recorder(RecorderNode):
    """`test.recorder` that wakes the test on each frame."""

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.changed = asyncio.Event()

    async def handle(self, frame: Frame, port: str) -> None:
        await RecorderNode.handle(self, frame, port)
        self.changed.set()

    async def wait_for(self, check: Callable[[], bool]) -> None:
        while not check():
            self.changed.clear()
            await self.changed.wait()


@dataclass
class Run:
    session: Session
    events: list[BusEvent]
    emu: Emulator
    published: asyncio.Event

    def node(self, node_id: str) -> Any:
        return self.session.node(node_id)

    @property
    def caller(self) -> FakeTransport:
        node = self.session.node("caller")
        assert isinstance(node, FakeTransport)
        return node

    def recorder(self, node_id: str) -> Recorder:
        node = self.session.node(node_id)
        assert isinstance(node, Recorder)
        return node

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_event(self, check: Callable[[], bool]) -> None:
        while not check():
            self.published.clear()
            await self.published.wait()


@asynccontextmanager
async def run_nodes(emu: Emulator, nodes: Mapping[str, str | NodeSpec], edges: Iterable[str], *,
                    entry: str | None = "caller",
                    registry: Registry | None = None) -> AsyncIterator[Run]:
    """One session of a graph built without checks (`flowspec.testing.graph`): `caller` is a
    `FakeTransport` (node type `transport.websocket`), `test.recorder` nodes are `Recorder`s."""
    compiled: CompiledGraph = graph(nodes, edges, entry=entry)
    registry = Registry(parent=registry or make_registry())
    registry.register("transport.websocket", FakeTransport)
    registry.register("test.recorder", Recorder)
    registry.register("openai.transcribe", partial(TranscribeNode,
                                                   reconnect_delays=(0.01, 0.05, 0.1)))
    bus = Bus()
    events: list[BusEvent] = []
    published = asyncio.Event()

    def note(event: BusEvent) -> None:
        events.append(event)
        published.set()

    with bus.subscribe(note):
        async with Executor(registry=registry, bus=bus).session(compiled) as session:
            yield Run(session, events, emu, published)
    check_transcription_clients(emu)


def check_transcription_clients(emu: Emulator) -> int:
    """Every client event of every transcription connection, against the SDK's models."""
    checked = 0
    for record in emu.of_kind("transcription"):
        for event in record.received:
            check_client(record.dialect, event)
            checked += 1
    return checked


__all__ = ["STEP", "FakeTransport", "Recorder", "Run", "run_nodes", "speech_spec",
           "transcribe_spec"]
