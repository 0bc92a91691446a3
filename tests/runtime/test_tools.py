"""Tool calls: model node -> tool node -> back to the same model node."""

from __future__ import annotations

import asyncio
import json

import pytest

from flowspec.frames import (
    Frame,
    FunctionCallFrame,
    FunctionResultFrame,
    InterruptFrame,
    TextFrame,
)
from flowspec.runtime import Context, Executor, Registry
from flowspec.runtime.node import TOOL_CALL_PORT, TOOL_RESULT_PORT
from flowspec.spec.compiled import CompiledGraph
from flowspec.testing import RecorderNode, graph


class ModelNode:
    """Calls the tool named by each text frame; records results and the port they came on."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.results: list[tuple[str, FunctionResultFrame]] = []

    async def start(self) -> None:
        return None

    async def handle(self, frame: Frame, port: str) -> None:
        if isinstance(frame, FunctionResultFrame):
            self.results.append((port, frame))
        elif isinstance(frame, TextFrame):
            call_id = f"{self.ctx.session_id}:{frame.text}"
            await self.ctx.call_tool(FunctionCallFrame(call_id=call_id, name=frame.text,
                                                       arguments='{"city": "Oslo"}'))

    async def stop(self) -> None:
        return None


class WeatherTool:
    """Answers after suspending once, so the answer crosses a task boundary."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.seen: list[tuple[str, Frame]] = []

    async def start(self) -> None:
        return None

    async def handle(self, frame: Frame, port: str) -> None:
        self.seen.append((port, frame))
        if isinstance(frame, FunctionCallFrame):
            await asyncio.sleep(0)
            city = json.loads(frame.arguments)["city"]
            await self.ctx.return_result(FunctionResultFrame(
                call_id=frame.call_id, name=frame.name, result=f"sunny in {city}"))

    async def stop(self) -> None:
        return None


@pytest.fixture
def registry(registry: Registry) -> Registry:
    registry.register("test.model", ModelNode)
    registry.register("test.tool", WeatherTool)
    return registry


def tool_graph() -> CompiledGraph:
    return graph(
        {"caller": "test.recorder", "llm": "test.model", "weather": "test.tool",
         "clock": "test.tool"},
        ["caller -> llm -> caller"],
        tools={"llm": ["weather", "clock"]},
        entry="caller",
    )


async def test_call_reaches_the_named_tool_and_the_result_comes_back(executor: Executor) -> None:
    async with executor.session(tool_graph()) as one, executor.session(tool_graph()) as two:
        llm_one = one.node("llm")
        assert isinstance(llm_one, ModelNode)
        assert llm_one.ctx.tools == ("weather", "clock")
        await one.send("caller", TextFrame(text="weather", role="user"))
        await two.send("caller", TextFrame(text="clock", role="user"))
    weather = one.node("weather")
    assert isinstance(weather, WeatherTool)
    assert [(p, type(f)) for p, f in weather.seen if isinstance(f, FunctionCallFrame)] == [
        (TOOL_CALL_PORT, FunctionCallFrame)]
    assert [(p, r.call_id, r.result) for p, r in llm_one.results] == [
        (TOOL_RESULT_PORT, f"{one.id}:weather", "sunny in Oslo")]
    llm_two = two.node("llm")
    assert isinstance(llm_two, ModelNode)
    assert [r.call_id for _, r in llm_two.results] == [f"{two.id}:clock"]


async def test_unknown_tool_answers_with_an_error_result(executor: Executor) -> None:
    async with executor.session(tool_graph()) as session:
        await session.send("caller", TextFrame(text="stocks", role="user"))
    llm = session.node("llm")
    assert isinstance(llm, ModelNode)
    ((port, result),) = llm.results
    assert port == TOOL_RESULT_PORT and result.is_error
    assert "stocks" in json.loads(result.result)["error"]


async def test_interrupt_reaches_the_tools_of_an_interrupted_model(executor: Executor) -> None:
    g = graph(
        {"src": "test.passthrough", "llm": "test.model", "weather": "test.tool",
         "sink": "test.recorder"},
        ["src -> llm -> sink"],
        tools={"llm": ["weather"]},
    )
    async with executor.session(g) as session:
        await session.send("src", InterruptFrame())
    weather, sink = session.node("weather"), session.node("sink")
    assert isinstance(weather, WeatherTool) and isinstance(sink, RecorderNode)
    assert [type(f) for _, f in weather.seen] == [type(f) for _, f in weather.seen
                                                  if not isinstance(f, FunctionCallFrame)]
    assert any(isinstance(f, InterruptFrame) for _, f in weather.seen)
    assert len(sink.of(InterruptFrame)) == 1


async def test_result_for_a_call_nobody_waits_for_is_dropped(executor: Executor) -> None:
    async with executor.session(tool_graph()) as session:
        weather = session.node("weather")
        assert isinstance(weather, WeatherTool)
        await weather.ctx.return_result(FunctionResultFrame(call_id="nope", name="weather",
                                                            result="late"))
    llm = session.node("llm")
    assert isinstance(llm, ModelNode)
    assert llm.results == []


async def test_calls_route_by_the_function_name_the_model_sees(executor: Executor) -> None:
    from flowspec.spec.compile import compile_text

    compiled = compile_text("""\
flowspec: 1
name: t
nodes:
  chat: {type: transport.text}
  llm: {type: openai.responses, tools: [weather_node]}
  weather_node:
    type: tool.python
    name: lookup_weather
    handler: flowspec.examples.weather:get_weather
    description: Weather.
edges: [chat -> llm -> chat]
""", env={}).raise_for_errors()
    registry = Registry()
    registry.register("transport.text", RecorderNode)
    registry.register("openai.responses", ModelNode)
    registry.register("tool.python", WeatherTool)
    async with Executor(registry=registry).session(compiled) as session:
        llm = session.node("llm")
        assert isinstance(llm, ModelNode)
        assert llm.ctx.tools == ("lookup_weather",)
        await session.send("chat", TextFrame(text="lookup_weather", role="user"))
        await session.send("chat", TextFrame(text="weather_node", role="user"))
    assert {r.name: r.is_error for _, r in llm.results} == {"lookup_weather": False,
                                                            "weather_node": True}
