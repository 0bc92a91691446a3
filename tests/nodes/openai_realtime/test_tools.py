"""Tool calls through the real `tool.python` node on both dialects: one call, two parallel calls
in one turn, arguments that break the tool's schema, and a call cancelled by an interruption."""

from __future__ import annotations

import asyncio
import json
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from flowspec.emulator import Emulator
from flowspec.emulator.records import ConnectionRecord
from flowspec.examples.weather import get_weather
from flowspec.frames import AudioFrame, InterruptFrame, ResponseEndedFrame, TextFrame
from flowspec.runtime.bus import FunctionCallEnded, FunctionCallsStarted

from .harness import STEP, Run, run_spec, spec

DIALECTS = pytest.mark.parametrize("beta", [False, True], ids=["ga", "beta"])
TOOLBOX = "flowspec_test_realtime_toolbox"


def script(call: str) -> str:
    return f"""\
rules:
  - when: {{contains: weather}}
    call: {call}
  - when: {{input: tool_output}}
    say: Here is the weather.
"""


def kinds(record: ConnectionRecord) -> list[str]:
    return [e["type"] for e in record.received]


def outputs(record: ConnectionRecord) -> list[tuple[int, dict[str, Any]]]:
    """(position in `received`, item) of every function_call_output the node sent."""
    return [(i, e["item"]) for i, e in enumerate(record.received)
            if e["type"] == "conversation.item.create"
            and e["item"]["type"] == "function_call_output"]


def creates_after(record: ConnectionRecord, position: int) -> int:
    return kinds(record)[position + 1:].count("response.create")


async def ask(run: Run, record: ConnectionRecord, text: str = "What is the weather?") -> None:
    """Send a user turn that makes the model call, and wait for the reply to the outputs."""
    await run.session.send("caller", TextFrame(text=text, role="user"))
    async with STEP(10):
        await record.wait_sent("response.done", count=2)
        await run.caller.wait_for(lambda: bool(run.caller.of(ResponseEndedFrame)))


@DIALECTS
async def test_one_call_sends_the_handler_result_once_encoded(
    emulator: Emulator, beta: bool
) -> None:
    emulator.load_script(script("{name: get_weather, arguments: {location: Paris}}"), text=True)
    async with run_spec(emulator, spec(emulator, beta=beta, tools=True)) as run:
        record = await run.ready()
        assert ("OpenAI-Beta" in record.headers) is beta
        tools = record.received_of("session.update")[0]["session"]["tools"]
        assert [t["name"] for t in tools] == ["get_weather"]
        await ask(run, record)
        (started,) = run.of(FunctionCallsStarted)
        ((call_id, name),) = started.calls
        assert name == "get_weather"
        (ended,) = run.of(FunctionCallEnded)
        assert ended.ok and ended.call_id == call_id
        ((position, item),) = outputs(record)
        expected = json.dumps(get_weather("Paris"), ensure_ascii=False)
        assert item == {"type": "function_call_output", "call_id": call_id, "output": expected}
        assert json.loads(item["output"]) == get_weather("Paris")  # a JSON object, not a string
        assert creates_after(record, position) == 1
        assert kinds(record)[-1] == "response.create"
        assert run.caller.of(AudioFrame)
        assert not record.sent_of("error")


@DIALECTS
async def test_two_parallel_calls_get_one_response_after_the_last_output(
    emulator: Emulator, beta: bool
) -> None:
    calls = """
      - {name: get_weather, arguments: {location: Paris}}
      - {name: get_weather, arguments: {location: Rome}}"""
    emulator.load_script(script(calls), text=True)
    async with run_spec(emulator, spec(emulator, beta=beta, tools=True)) as run:
        record = await run.ready()
        await ask(run, record, "Weather in Paris and Rome?")
        batches = [e.calls for e in run.of(FunctionCallsStarted)]
        ids = [call_id for calls in batches for call_id, _ in calls]
        assert len(ids) == 2 and len(set(ids)) == 2
        # GA runs each call as its arguments complete; beta runs them together at the end.
        assert len(batches) == (1 if beta else 2)
        sent = outputs(record)
        assert sorted(item["call_id"] for _, item in sent) == sorted(ids)
        results = {json.loads(item["output"])["location"] for _, item in sent}
        assert results == {"Paris", "Rome"}
        first, last = sent[0][0], sent[-1][0]
        assert "response.create" not in kinds(record)[first:last]
        assert creates_after(record, last) == 1
        assert len(record.received_of("response.create")) == 2
        assert not record.sent_of("error")


@DIALECTS
async def test_invalid_arguments_get_an_error_output_and_the_conversation_goes_on(
    emulator: Emulator, beta: bool
) -> None:
    emulator.load_script(script("{name: get_weather, arguments: {city: Paris}}"), text=True)
    async with run_spec(emulator, spec(emulator, beta=beta, tools=True)) as run:
        record = await run.ready()
        await ask(run, record)
        ((position, item),) = outputs(record)
        error = json.loads(item["output"])["error"]
        assert "'location' is a required property" in error
        (ended,) = run.of(FunctionCallEnded)
        assert not ended.ok and not ended.cancelled
        assert creates_after(record, position) == 1
        assert record.sent_of("response.output_audio.delta" if not beta
                              else "response.audio.delta")
        await run.session.send("caller", TextFrame(text="Thanks!", role="user"))
        async with STEP(10):
            await record.wait_sent("response.done", count=3)
        assert not record.sent_of("error")


# -- interruption ---------------------------------------------------------------------------


class Box:
    def __init__(self) -> None:
        self.entered = asyncio.Event()


BOX = Box()


async def hold(location: str) -> str:
    """Runs until cancelled: a call that is still in flight when the user interrupts."""
    BOX.entered.set()
    await asyncio.Event().wait()
    return "never"


@pytest.fixture
def toolbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Box]:
    global BOX
    BOX = Box()
    module = types.ModuleType(TOOLBOX)
    module.hold = hold  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, TOOLBOX, module)
    yield BOX


@DIALECTS
async def test_a_call_cancelled_by_an_interruption_asks_for_no_response(
    emulator: Emulator, toolbox: Box, beta: bool
) -> None:
    emulator.load_script(script("{name: get_weather, arguments: {location: Paris}}"), text=True)
    text = spec(emulator, beta=beta, tools=True, handler=f"{TOOLBOX}:hold",
                tool="    cancel_on_interruption: true")
    async with run_spec(emulator, text) as run:
        record = await run.ready()
        await run.session.send("caller", TextFrame(text="What is the weather?", role="user"))
        async with STEP(10):
            await record.wait_sent("response.done")
            await toolbox.entered.wait()
        await run.session.send("caller", InterruptFrame())
        async with STEP(10):
            await run.wait_event(lambda: bool(run.of(FunctionCallEnded)))
            await record.wait_received("conversation.item.create", count=2)  # user, output
        (ended,) = run.of(FunctionCallEnded)
        assert ended.cancelled
        ((position, item),) = outputs(record)
        assert "cancelled" in json.loads(item["output"])["error"]
        # The node handles its inputs in order: the next user turn is sent only after the
        # cancelled result was fully handled, so any response it asked for would come first.
        await run.session.send("caller", TextFrame(text="Never mind.", role="user"))
        async with STEP(10):
            await record.wait_sent("response.done", count=2)
        after = kinds(record)[position + 1:]
        assert after[:2] == ["conversation.item.create", "response.create"]
        assert after.count("response.create") == 1
        assert len(record.received_of("response.create")) == 2
        assert not record.sent_of("error")
