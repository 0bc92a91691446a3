"""`tool.python` through the executor: compiled specs, a stand-in model node, real tool nodes."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from flowspec.frames import (
    InterruptFrame,
)
from flowspec.nodes.tools import PythonToolNode, ToolContext
from flowspec.runtime.bus import FunctionCallsStarted, NodeFailed
from flowspec.spec.compile import compile_text

from .tool_harness import HANG_GUARD_S, compiled, running, turn

TOOLBOX = "flowspec_test_toolbox"


# -- handlers, reached by the nodes through an importable module ---------------------------------


@dataclass
class Box:
    calls: list[str] = field(default_factory=list)
    threads: list[int] = field(default_factory=list)
    contexts: list[ToolContext] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    barrier: asyncio.Barrier = field(default_factory=lambda: asyncio.Barrier(2))
    thread_release: threading.Event = field(default_factory=threading.Event)
    thread_done: threading.Event = field(default_factory=threading.Event)


BOX = Box()


def echo(text: str) -> str:
    BOX.calls.append("echo")
    BOX.threads.append(threading.get_ident())
    return text


async def forecast(location: str, days: int = 1) -> dict[str, Any]:
    BOX.calls.append("forecast")
    return {"location": location, "days": days, "note": "ünïcode"}


def nothing() -> None:
    BOX.calls.append("nothing")


def a_set() -> set[int]:
    return {1, 2}


def with_context(location: str, ctx: ToolContext) -> str:
    BOX.contexts.append(ctx)
    return location


async def named_context(context: Any) -> str:
    BOX.contexts.append(context)
    return "ok"


def unresolvable(ctx: not_imported.ToolContext) -> str:  # type: ignore[name-defined]  # noqa: F821
    BOX.contexts.append(ctx)
    return "found by the annotation's text"


def explode(location: str) -> str:
    raise RuntimeError("the database password is hunter2")


async def hold() -> str:
    BOX.calls.append("hold")
    BOX.started.set()
    try:
        await BOX.release.wait()
    except asyncio.CancelledError:
        BOX.cancelled.append("hold")
        raise
    return "released"


def block() -> str:
    try:
        BOX.thread_release.wait(HANG_GUARD_S)
        return "unblocked"
    finally:
        BOX.thread_done.set()


async def meet() -> str:
    await BOX.barrier.wait()  # returns only once both calls of the turn are running
    return "met"


@pytest.fixture(autouse=True)
def toolbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Box]:
    global BOX
    BOX = Box()
    module = types.ModuleType(TOOLBOX)
    for function in (echo, forecast, nothing, a_set, with_context, named_context, unresolvable,
                     explode, hold, block, meet):
        setattr(module, function.__name__, function)
    monkeypatch.setitem(sys.modules, TOOLBOX, module)
    try:
        yield BOX
    finally:
        BOX.thread_release.set()  # never leave a worker thread blocked


def tool(node_id: str, function: str, extra: str = "") -> str:
    lines = [f"  {node_id}:", "    type: tool.python", f"    handler: {TOOLBOX}:{function}",
             "    description: A test tool."]
    lines += [f"    {line}" for line in extra.splitlines() if line]
    return "\n".join(lines)


ECHO = tool("echo", "echo", "parameters: {type: object, properties: {text: {type: string}}, "
            "required: [text]}")
FORECAST = tool("forecast", "forecast", """\
parameters:
  type: object
  properties: {location: {type: string}, days: {type: integer, minimum: 1}}
  required: [location]""")


# -- results --------------------------------------------------------------------------------------


async def test_sync_handler_runs_in_a_thread_and_a_str_is_the_result_as_is() -> None:
    async with running(ECHO) as run:
        (result,) = await run.ask(("echo", {"text": "plain text, not JSON"}))
    assert (result.name, result.result, result.is_error) == ("echo", "plain text, not JSON", False)
    assert BOX.threads and BOX.threads[0] != threading.get_ident()
    (ended,) = run.ended()
    assert (ended.node_id, ended.call_id, ended.name, ended.ok) == ("echo", "call-0", "echo", True)
    (started,) = [e for e in run.events if isinstance(e, FunctionCallsStarted)]
    assert started.calls == (("call-0", "echo"),)


async def test_async_handler_is_awaited_and_a_value_is_json_encoded_once() -> None:
    async with running(FORECAST) as run:
        (result,) = await run.ask(("forecast", {"location": "Oslo", "days": 3}))
    assert not result.is_error
    assert json.loads(result.result) == {"location": "Oslo", "days": 3, "note": "ünïcode"}
    assert "ünïcode" in result.result  # not \u-escaped


async def test_example_weather_handler() -> None:
    from flowspec.examples.weather import get_weather

    spec = """\
  weather:
    type: tool.python
    handler: flowspec.examples.weather:get_weather
    description: Current weather for a city."""
    async with running(spec) as run:
        (result,) = await run.ask(("weather", {"location": "Oslo"}))
    assert json.loads(result.result) == get_weather("Oslo")


async def test_none_and_unserialisable_returns() -> None:
    async with running(tool("nothing", "nothing") + "\n" + tool("a_set", "a_set")) as run:
        none, bad = await run.ask(("nothing", {}), ("a_set", ""))
    assert (none.result, none.is_error) == ("null", False)
    assert bad.is_error and json.loads(bad.result) == {
        "error": "The tool returned a result that cannot be sent to the model."}
    assert [(e.ok, "set" in e.detail) for e in run.ended() if e.name == "a_set"] == [(False, True)]


async def test_handler_asks_for_a_context_by_annotation_or_by_name() -> None:
    spec = "\n".join([tool("where", "with_context"), tool("named", "named_context"),
                      tool("text", "unresolvable")])
    async with running(spec) as run:
        first, second, third = await run.ask(("where", {"location": "Bergen"}), ("named", {}),
                                             ("text", {}))
    assert (first.result, second.result) == ("Bergen", "ok")
    assert (third.result, third.is_error) == ("found by the annotation's text", False)
    by_node = {c.node_id: c for c in BOX.contexts}
    assert [by_node[n].call_id for n in ("where", "named", "text")] == ["call-0", "call-1",
                                                                       "call-2"]
    assert {c.session_id for c in BOX.contexts} == {run.session.id}
    assert all(c.bus is run.session.bus for c in BOX.contexts)


# -- arguments ----------------------------------------------------------------------------------


async def test_invalid_arguments_tell_the_model_what_is_wrong_and_make_no_call() -> None:
    async with running(FORECAST) as run:
        (result,) = await run.ask(("forecast", {"days": 0}))
    assert result.is_error and BOX.calls == []
    message = json.loads(result.result)["error"]
    assert "$: 'location' is a required property" in message
    assert "$.days: 0 is less than the minimum of 1" in message
    (ended,) = run.ended()
    assert not ended.ok and ended.detail == "2 argument error(s)"


@pytest.mark.parametrize(("arguments", "expected"), [
    ("{not json", "The arguments are not valid JSON"),
    ("[1, 2]", "The arguments must be a JSON object."),
    ({"location": "Oslo", "wind": True}, "unexpected keyword argument 'wind'"),
])
async def test_unusable_arguments_make_no_call(arguments: Any, expected: str) -> None:
    async with running(tool("forecast", "forecast")) as run:
        (result,) = await run.ask(("forecast", arguments))
    assert result.is_error and expected in json.loads(result.result)["error"]
    assert BOX.calls == []


async def test_empty_arguments_text_means_no_arguments() -> None:
    async with running(tool("nothing", "nothing")) as run:
        (result,) = await run.ask(("nothing", ""))
    assert not result.is_error and BOX.calls == ["nothing"]


# -- failures -----------------------------------------------------------------------------------


async def test_exception_gives_a_neutral_result_and_the_traceback_goes_to_the_bus() -> None:
    async with running(tool("explode", "explode")) as run:
        (result,) = await run.ask(("explode", {"location": "Oslo"}))
    assert result.is_error
    assert json.loads(result.result) == {"error": "The tool failed and returned no result."}
    (ended,) = run.ended()
    assert not ended.ok and ended.error.startswith("RuntimeError")
    assert "Traceback" in ended.detail and "hunter2" in ended.detail


async def test_unknown_tool_gets_a_neutral_not_available_result() -> None:
    async with running(ECHO) as run:
        (result,) = await run.ask(("stocks", {}))
    assert result.is_error
    assert json.loads(result.result) == {"error": "The function 'stocks' is not available."}


async def test_async_handler_past_its_timeout_is_cancelled() -> None:
    async with running(tool("hold", "hold", "timeout_s: 0.01")) as run:
        (result,) = await run.ask(("hold", {}))
    assert result.is_error and not result.cancelled
    assert json.loads(result.result) == {"error": "The tool did not answer within 0.01 s."}
    assert BOX.cancelled == ["hold"]


async def test_sync_handler_past_its_timeout_is_answered_while_its_thread_runs_on() -> None:
    async with running(tool("block", "block", "timeout_s: 0.01")) as run:
        (result,) = await run.ask(("block", {}))
        assert result.is_error and "did not answer within" in result.result
        assert not BOX.thread_done.is_set()
        BOX.thread_release.set()
        assert await asyncio.to_thread(BOX.thread_done.wait, HANG_GUARD_S)


async def test_handler_that_cannot_be_imported_at_run_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    graph = compiled(ECHO)  # importable while the spec is validated
    monkeypatch.delitem(sys.modules, TOOLBOX)
    async with running(graph) as run:
        assert isinstance(run.session.node("echo"), PythonToolNode)
        (result,) = await run.ask(("echo", {"text": "hi"}))
    (failed,) = [e for e in run.events if isinstance(e, NodeFailed)]
    assert (failed.node_id, failed.fatal) == ("echo", False)
    assert f"cannot import module {TOOLBOX!r}" in str(failed.error)
    assert result.is_error
    assert json.loads(result.result) == {"error": "The tool is not available right now."}


def test_handler_that_cannot_be_imported_is_a_validation_error_at_its_line() -> None:
    result = compile_text("""\
flowspec: 1
name: t
nodes:
  chat: {type: transport.text}
  llm: {type: openai.responses, tools: [weather]}
  weather:
    type: tool.python
    description: Weather.
    handler: no_such_package.weather:lookup
edges: [chat -> llm -> chat]
""", env={})
    (problem,) = [d for d in result.diagnostics if d.code == "tool.handler-unresolved"]
    assert (problem.line, problem.pointer) == (9, "/nodes/weather/handler")


# -- concurrency and interruption -----------------------------------------------------------------


async def test_parallel_calls_of_one_turn_run_concurrently_and_return_together() -> None:
    # Each call waits at a barrier for the other: run one after the other, both would time out.
    async with running(tool("meet", "meet", "timeout_s: 5")) as run:
        results = await run.ask(("meet", {}), ("meet", {}))
    assert [(r.call_id, r.result, r.is_error) for r in results] == [
        ("call-0", "met", False), ("call-1", "met", False)]
    assert run.model.turns == [results]
    assert sorted(e.call_id for e in run.ended()) == ["call-0", "call-1"]


async def test_interrupt_cancels_an_interruptible_call() -> None:
    async with running(tool("hold", "hold")) as run:
        await run.session.send("chat", turn(("hold", {})))
        async with asyncio.timeout(HANG_GUARD_S):
            await BOX.started.wait()
        await run.session.send("chat", InterruptFrame())
        (result,) = await run.model.answered()
    assert (result.is_error, result.cancelled) == (True, True)
    assert json.loads(result.result) == {
        "error": "The call was cancelled because the user interrupted."}
    assert BOX.cancelled == ["hold"]
    (ended,) = run.ended()
    assert ended.cancelled and not ended.ok


async def test_interrupt_before_a_call_starts_cancels_it_without_calling() -> None:
    async with running(tool("hold", "hold")) as run:
        await run.session.send("chat", turn(("hold", {})))  # its task has not run yet
        await run.session.send("chat", InterruptFrame())
        (result,) = await run.model.answered()
    assert result.cancelled and BOX.calls == []


async def test_uninterruptible_call_completes_after_an_interrupt() -> None:
    async with running(tool("hold", "hold", "cancel_on_interruption: false")) as run:
        await run.session.send("chat", turn(("hold", {})))
        async with asyncio.timeout(HANG_GUARD_S):
            await BOX.started.wait()
        await run.session.send("chat", InterruptFrame())
        BOX.release.set()
        (result,) = await run.model.answered()
    assert (result.result, result.is_error, result.cancelled) == ("released", False, False)
    assert BOX.cancelled == []
