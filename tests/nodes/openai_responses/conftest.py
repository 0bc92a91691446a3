"""Fixtures: a fast emulator, and a harness running a real compiled graph around the node."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from flowspec.conversation.clock import Clock
from flowspec.emulator import Emulator
from flowspec.frames import (
    Frame,
    InterruptFrame,
    ResponseEndedFrame,
    TextFrame,
)
from flowspec.nodes.openai_responses.node import ResponsesNode
from flowspec.nodes.openai_responses.ws import Backoff, Connector, WireSocket, aiohttp_connector
from flowspec.runtime.bus import Bus, BusEvent
from flowspec.runtime.executor import Executor
from flowspec.runtime.registry import Registry
from flowspec.runtime.session import Session
from flowspec.spec.compile import compile_text
from flowspec.spec.compiled import CompiledGraph
from flowspec.testing import RecorderNode, make_registry

SPEC = """
flowspec: 1
name: responses-test
nodes:
  caller:
    type: transport.text
  llm:
    type: openai.responses
    transport: {transport}
    api_key: test-secret-key
    base_url: {http}
    ws_url: {ws}/responses
    tools: [get_weather]
{fields}
    settings:
      system_instruction: "{instructions}"
{settings}
  get_weather:
    type: tool.python
    handler: flowspec.examples.weather:get_weather
    description: Current weather for a city.
    parameters: {{type: object, properties: {{location: {{type: string}}}}, required: [location]}}
edges:
  - caller -> llm -> caller
"""


def compile_graph(emu: Emulator, transport: str = "websocket", *, fields: str = "",
                  settings: str = "", top: str = "",
                  instructions: str = "Be brief.") -> CompiledGraph:
    """The spec above; `top` adds top-level sections (`variables:`, `conversation:`)."""
    text = SPEC.format(transport=transport, http=emu.http_base_url, ws=emu.ws_base_url,
                       fields=_indent(fields, 4), settings=_indent(settings, 6),
                       instructions=instructions) + top
    return compile_text(text, env={}).raise_for_errors()


def _indent(text: str, width: int) -> str:
    return "\n".join(" " * width + line for line in text.strip().splitlines())


class GatedSocket:
    """A real socket whose incoming messages the test can hold back (`gate.clear()`)."""

    def __init__(self, inner: WireSocket, gate: asyncio.Event, log: list[str]) -> None:
        self._inner = inner
        self._gate = gate
        self._log = log

    async def send_text(self, text: str) -> None:
        self._log.append("send " + json.loads(text)["type"])
        await self._inner.send_text(text)

    async def receive_text(self) -> str:
        # Wait before reading, as a real socket keeps an unread message when its reader is
        # cancelled.
        await self._gate.wait()
        text = await self._inner.receive_text()
        self._log.append("recv " + json.loads(text)["type"])
        poke()
        return text

    async def close(self) -> None:
        await self._inner.close()


@dataclass
class Wire:
    """The client's view of its WebSocket: everything sent and delivered, in one order."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gate.set()

    def connector(self) -> Connector:
        real = aiohttp_connector("llm")

        async def connect(url: str, headers: Mapping[str, str]) -> WireSocket:
            return GatedSocket(await real(url, headers), self.gate, self.log)

        return connect


@dataclass
class Harness:
    session: Session
    caller: RecorderNode
    events: list[BusEvent]

    @property
    def node(self) -> ResponsesNode:
        node = self.session.node("llm")
        assert isinstance(node, ResponsesNode)
        return node

    async def say(self, text: str) -> None:
        await self.session.send("caller", TextFrame(text=text, role="user"))

    async def interrupt(self) -> None:
        await self.session.send("caller", InterruptFrame())

    def answers(self) -> list[tuple[str, str]]:
        """(text, status) of each response that ended, in order."""
        done: list[tuple[str, str]] = []
        text = ""
        for frame in self.caller.frames:
            if isinstance(frame, TextFrame):
                text += frame.text
            elif isinstance(frame, ResponseEndedFrame):
                done.append((text, frame.status))
                text = ""
        return done

    async def wait_answers(self, count: int) -> list[tuple[str, str]]:
        await until(lambda: len(self.answers()) >= count)
        return self.answers()

    def of(self, kind: type[BusEvent]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


CHANGED: list[asyncio.Event] = []  # set whenever the caller or a gated socket sees something


def poke() -> None:
    for event in CHANGED:
        event.set()


async def until(predicate: Callable[[], bool]) -> None:
    """Wait for `predicate`, re-checked after each change; the deadline only guards a hang."""
    changed = asyncio.Event()
    CHANGED.append(changed)
    try:
        async with asyncio.timeout(10):
            while not predicate():
                changed.clear()
                await changed.wait()
    finally:
        CHANGED.remove(changed)


class Caller(RecorderNode):
    """The transport stand-in: records what the node emits."""

    async def handle(self, frame: Frame, port: str) -> None:
        await RecorderNode.handle(self, frame, port)
        poke()


@asynccontextmanager
async def running(graph: CompiledGraph, *, connect: Connector | None = None,
                  registry: Registry | None = None, backoff: Backoff | None = None,
                  clock: Clock | None = None,
                  variables: Mapping[str, Any] | None = None) -> AsyncIterator[Harness]:
    registry = registry or make_registry()
    registry.register("transport.text", Caller)
    if connect is not None or backoff is not None:
        options: dict[str, Any] = {"connect": connect}
        if backoff is not None:
            options["backoff"] = backoff
        registry.register("openai.responses", lambda ctx: ResponsesNode(ctx, **options))
    bus = Bus()
    events: list[BusEvent] = []
    with bus.subscribe(events.append):
        async with Executor(registry=registry, bus=bus).session(
                graph, clock=clock, variables=variables) as session:
            caller = session.node("caller")
            assert isinstance(caller, RecorderNode)
            yield Harness(session, caller, events)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator.start(pace=0, keep_records=True) as emu:
        yield emu
