"""A test transport that plays audio on a clock the test drives, and a harness that runs a
compiled spec (with the real `tool.python` node) against the emulator and checks every client
event the node sent against the openai SDK's models (GA or beta, by the connection's dialect)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

import numpy as np
from openai.types.beta.realtime import RealtimeClientEvent as BetaClientEvent
from openai.types.realtime import RealtimeClientEvent as GAClientEvent
from pydantic import BaseModel, Field, TypeAdapter

from flowspec.conversation.clock import Clock
from flowspec.emulator import Emulator
from flowspec.emulator.records import ConnectionRecord
from flowspec.emulator.voice import synthesize
from flowspec.frames import (
    AudioFrame,
    BotSpeechEndedFrame,
    BotSpeechStartedFrame,
    Frame,
    InterruptFrame,
    PlaybackProgressFrame,
    StartFrame,
)
from flowspec.nodes.openai_realtime.connection import WireSocket, aiohttp_connect
from flowspec.nodes.openai_realtime.node import RealtimeNode
from flowspec.runtime.bus import Bus, BusEvent
from flowspec.runtime.executor import Executor
from flowspec.runtime.node import Context
from flowspec.runtime.registry import DEFAULT_REGISTRY, Registry
from flowspec.runtime.session import Session
from flowspec.spec.compile import compile_text

F = TypeVar("F", bound=Frame)
E = TypeVar("E", bound=BusEvent)

GA_CLIENT: TypeAdapter[Any] = TypeAdapter(Annotated[GAClientEvent, Field(discriminator="type")])
BETA_CLIENT: TypeAdapter[Any] = TypeAdapter(
    Annotated[BetaClientEvent, Field(discriminator="type")])
RATE = 24000
BYTES_PER_MS = RATE * 2 // 1000
STEP = asyncio.timeout  # every wait in these tests is bounded: a hang fails, it never stalls


def unknown_fields(model: Any, path: str = "") -> list[str]:
    """Fields the SDK model does not declare (its models accept them silently)."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        found += [f"{path}.{k}" for k in (model.__pydantic_extra__ or {})]
        for name in type(model).model_fields:
            found += unknown_fields(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list):
        for value in model:
            found += unknown_fields(value, f"{path}[]")
    return found


def check_client_events(record: ConnectionRecord) -> int:
    """Validate every client event of one connection; returns how many were checked."""
    adapter = BETA_CLIENT if record.dialect == "beta" else GA_CLIENT
    for event in record.received:
        model = adapter.validate_python(event)
        assert unknown_fields(model) == [], (event["type"], unknown_fields(model))
    return len(record.received)


def speech(text: str = "Hello there, what is the weather like today?") -> bytes:
    """Speech-like audio at 24 kHz, loud enough for the emulator's VAD."""
    return synthesize(text, RATE)


def silence(ms: int) -> bytes:
    return bytes(ms * BYTES_PER_MS)


class FakeTransport:
    """`transport.websocket` stand-in: feeds user audio, records what reaches it, and plays
    assistant audio on a clock the test advances with `play(ms)`, reporting playback as a real
    output transport does."""

    boundary = True

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.received: list[Frame] = []
        self.queue: list[AudioFrame] = []
        self.played: dict[str, float] = {}
        self.playing: str | None = None
        self.interrupts = 0
        self.changed = asyncio.Event()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def handle(self, frame: Frame, port: str) -> None:
        if isinstance(frame, StartFrame):
            return
        self.received.append(frame)
        if isinstance(frame, AudioFrame):
            self.queue.append(frame)
        elif isinstance(frame, InterruptFrame):
            self.interrupts += 1
            self.queue.clear()
            if self.playing is not None:
                item, self.playing = self.playing, None
                await self.ctx.emit(PlaybackProgressFrame(item_id=item,
                                                          played_ms=int(self.played[item])))
                await self.ctx.emit(BotSpeechEndedFrame(item_id=item))
        self.changed.set()

    def of(self, kind: type[F]) -> list[F]:
        return [f for f in self.received if isinstance(f, kind)]

    def audio_ms(self) -> float:
        return sum(f.duration_ms for f in self.of(AudioFrame))

    async def wait_for(self, check: Callable[[], bool]) -> None:
        while not check():
            self.changed.clear()
            await self.changed.wait()

    async def feed(self, pcm: bytes, chunk_ms: int = 20) -> None:
        size = chunk_ms * BYTES_PER_MS
        for start in range(0, len(pcm), size):
            await self.ctx.emit(AudioFrame(audio=pcm[start:start + size]))
            await asyncio.sleep(0)

    async def play(self, ms: float) -> None:
        """Play `ms` of queued audio, one frame at a time, reporting progress per frame."""
        while ms > 0 and self.queue:
            frame = self.queue[0]
            item = frame.item_id or ""
            if self.playing != item:
                self.playing = item
                await self.ctx.emit(BotSpeechStartedFrame(item_id=item))
            step = min(ms, frame.duration_ms)
            self.played[item] = self.played.get(item, 0.0) + step
            ms -= step
            if step >= frame.duration_ms:
                self.queue.pop(0)
            else:
                cut = int(step * BYTES_PER_MS) & ~1
                self.queue[0] = AudioFrame(audio=frame.audio[cut:], item_id=frame.item_id)
            await self.ctx.emit(PlaybackProgressFrame(item_id=item,
                                                      played_ms=int(self.played[item])))


class GatedConnector:
    """The node's real connector behind a gate: connections after the first `open_first` ones
    wait until the test opens `gate`, so a test can act while the node is not connected."""

    def __init__(self, *, open_first: int = 1) -> None:
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()
        """Set once a connection waits at the gate."""
        self.attempts = 0
        self._open_first = open_first

    async def __call__(self, url: str, headers: Mapping[str, str], node_id: str) -> WireSocket:
        self.attempts += 1
        if self.attempts > self._open_first:
            self.waiting.set()
            await self.gate.wait()
        return await aiohttp_connect(url, headers, node_id)


WEATHER = "flowspec.examples.weather:get_weather"


def spec(emu: Emulator, *, beta: bool = False, settings: str = "", node: str = "",
         tools: bool = False, handler: str = WEATHER, tool: str = "") -> str:
    """A caller, the model node, and with `tools` one `tool.python` node named `get_weather`
    (its `handler`; `tool` adds lines to its spec, indented by four spaces)."""
    kind = "openai.realtime_beta" if beta else "openai.realtime"
    tool_nodes = f"""
  get_weather:
    type: tool.python
    handler: {handler}
    description: Current weather for a city.
    parameters:
      type: object
      properties:
        location: {{type: string}}
      required: [location]
{tool}
""" if tools else ""
    return f"""\
flowspec: 1
name: realtime-test
nodes:
  caller:
    type: transport.websocket
    audio: {{encoding: pcm16, sample_rate: 24000}}
  llm:
    type: {kind}
    base_url: {emu.ws_base_url}/realtime
    api_key: test
{"    tools: [get_weather]" if tools else ""}
{node}
    settings:
      model: {"gpt-4o-realtime-preview-2025-06-03" if beta else "gpt-realtime-1.5"}
{settings}
{tool_nodes}
edges:
  - caller -> llm -> caller
"""


@dataclass
class Run:
    session: Session
    events: list[BusEvent]
    emu: Emulator
    published: asyncio.Event

    async def wait_event(self, check: Callable[[], bool]) -> None:
        """Wait until `check()` holds, re-checking after each bus event."""
        while not check():
            self.published.clear()
            await self.published.wait()

    @property
    def caller(self) -> FakeTransport:
        node = self.session.node("caller")
        assert isinstance(node, FakeTransport)
        return node

    @property
    def llm(self) -> RealtimeNode:
        node = self.session.node("llm")
        assert isinstance(node, RealtimeNode)
        return node

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    async def connection(self, index: int = 0) -> ConnectionRecord:
        async with STEP(10):
            record = await self.emu.wait_connection("realtime", index=index)
            await record.wait_received("session.update")
            return record

    async def ready(self) -> ConnectionRecord:
        async with STEP(10):
            record = await self.connection()
            await self.llm.wait_ready()
            return record


@asynccontextmanager
async def run_spec(emu: Emulator, text: str, *, clock: Clock | None = None,
                   variables: Mapping[str, Any] | None = None,
                   extra_nodes: Mapping[str, Callable[..., Any]] | None = None,
                   **node_options: Any) -> AsyncIterator[Run]:
    graph = compile_text(text, env={}).raise_for_errors()
    registry = Registry(parent=DEFAULT_REGISTRY)
    registry.register("transport.websocket", FakeTransport)
    options = {"reconnect_delays": (0.01, 0.05, 0.1), **node_options}
    registry.register("openai.realtime", partial(RealtimeNode, **options))
    registry.register("openai.realtime_beta", partial(RealtimeNode, **options))
    for node_type, factory in (extra_nodes or {}).items():
        registry.register(node_type, factory)
    bus = Bus()
    events: list[BusEvent] = []
    published = asyncio.Event()

    def note(event: BusEvent) -> None:
        events.append(event)
        published.set()

    with bus.subscribe(note):
        async with Executor(registry=registry, bus=bus).session(
                graph, clock=clock, variables=variables) as session:
            yield Run(session, events, emu, published)
    for record in emu.of_kind("realtime"):
        check_client_events(record)


def tone(ms: int) -> bytes:
    t = np.arange(RATE * ms // 1000) / RATE
    return (np.sin(2 * np.pi * 220 * t) * 0.3 * 32767).astype("<i2").tobytes()
