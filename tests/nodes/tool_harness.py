"""A stand-in model node and a session runner shared by the tool-node tests."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from flowspec.frames import Frame, FunctionCallFrame, FunctionResultFrame, TextFrame
from flowspec.runtime import DEFAULT_REGISTRY, Bus, BusEvent, Context, Executor, Registry, Session
from flowspec.runtime.bus import FunctionCallEnded, FunctionCallsStarted
from flowspec.spec.compile import compile_text
from flowspec.spec.compiled import CompiledGraph
from flowspec.testing import RecorderNode, capture_events

HANG_GUARD_S = 10.0  # only reached when a test is failing: fail instead of hanging


class TurnModel:
    """Stands in for a model node. Each user text is a JSON list of `[name, arguments]` calls made
    as one turn (`arguments` a JSON object, or raw text sent as is); the turn's answers are
    collected and released together once the last one is in, as a model node sends them."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.turns: list[tuple[FunctionResultFrame, ...]] = []
        self._ids = itertools.count()
        self._waiting: set[str] = set()
        self._answers: list[FunctionResultFrame] = []
        self._done = asyncio.Event()

    async def start(self) -> None:
        return None

    async def handle(self, frame: Frame, port: str) -> None:
        if isinstance(frame, TextFrame) and frame.role == "user":
            calls = [FunctionCallFrame(call_id=f"call-{next(self._ids)}", name=name,
                                       arguments=a if isinstance(a, str) else json.dumps(a))
                     for name, a in json.loads(frame.text)]
            self._waiting = {call.call_id for call in calls}
            self._answers, self._done = [], asyncio.Event()
            self.ctx.publish(FunctionCallsStarted(
                session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                calls=tuple((call.call_id, call.name) for call in calls)))
            for call in calls:
                await self.ctx.call_tool(call)
        elif isinstance(frame, FunctionResultFrame) and frame.call_id in self._waiting:
            self._waiting.discard(frame.call_id)
            self._answers.append(frame)
            if not self._waiting:
                self.turns.append(tuple(sorted(self._answers, key=lambda r: r.call_id)))
                self._done.set()

    async def stop(self) -> None:
        return None

    async def answered(self) -> tuple[FunctionResultFrame, ...]:
        async with asyncio.timeout(HANG_GUARD_S):
            await self._done.wait()
        return self.turns[-1]


def turn(*calls: tuple[str, Any]) -> TextFrame:
    return TextFrame(text=json.dumps(list(calls)), role="user")


@dataclass
class Run:
    session: Session
    model: TurnModel
    events: list[BusEvent]

    async def ask(self, *calls: tuple[str, Any]) -> tuple[FunctionResultFrame, ...]:
        await self.session.send("chat", turn(*calls))
        return await self.model.answered()

    def ended(self) -> list[FunctionCallEnded]:
        return [e for e in self.events if isinstance(e, FunctionCallEnded)]


def compiled(tools: str, env: Mapping[str, str] | None = None) -> CompiledGraph:
    ids = [line.split(":")[0].strip() for line in tools.splitlines()
           if line.startswith("  ") and not line.startswith("   ")]
    return compile_text(f"""\
flowspec: 1
name: tools
nodes:
  chat: {{type: transport.text}}
  llm: {{type: openai.responses, tools: [{", ".join(ids)}]}}
{tools}
edges: [chat -> llm -> chat]
""", env=dict(env or {})).raise_for_errors()


@asynccontextmanager
async def running(tools: str | CompiledGraph,
                  env: Mapping[str, str] | None = None) -> AsyncIterator[Run]:
    registry = Registry(parent=DEFAULT_REGISTRY)
    registry.register("transport.text", RecorderNode)
    registry.register("openai.responses", TurnModel)
    graph = compiled(tools, env) if isinstance(tools, str) else tools
    bus = Bus()
    with capture_events(bus) as events:
        async with Executor(registry=registry, bus=bus).session(graph) as s:
            model = s.node("llm")
            assert isinstance(model, TurnModel)
            yield Run(s, model, events)
