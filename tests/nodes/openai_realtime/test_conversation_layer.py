"""The conversation layer on both Realtime dialects: openings with variables, seeded context,
idle prompts on a manual clock, the longest call and the built-in end_call."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from flowspec.conversation.clock import ManualClock, settle
from flowspec.conversation.driver import said_words
from flowspec.conversation.events import CallEnding, TranscriptItem
from flowspec.emulator import Emulator
from flowspec.frames import AudioFrame, TextFrame, TranscriptFrame
from flowspec.runtime.bus import FunctionCallEnded

from .harness import STEP, Run, run_spec, spec

VARIABLES = """
variables:
  customer_name: {default: there}
"""

DIALECTS = pytest.mark.parametrize("beta", [False, True], ids=["ga", "beta"])


def bot(emu: Emulator, beta: bool, conversation: str, *,
        instructions: str = "Help {{customer_name}} with their order.") -> str:
    return (spec(emu, beta=beta, settings=f"      system_instruction: '{instructions}'")
            + VARIABLES + "conversation:\n" + conversation)


def final_transcripts(run: Run) -> list[str]:
    return [f.text for f in run.caller.of(TranscriptFrame) if f.role == "assistant" and f.final]


def said(run: Run, count: int) -> bool:
    return len(final_transcripts(run)) == count


def responses_asked(record: Any) -> list[str | None]:
    """The exact words each response.create asked for (None: the model's own words)."""
    return [said_words(str((e.get("response") or {}).get("instructions") or ""))
            for e in record.received_of("response.create")]


@DIALECTS
async def test_speak_first_opens_with_the_filled_words_before_any_input(
        emulator: Emulator, beta: bool) -> None:
    text = bot(emulator, beta, "  opening: {say: 'Hi {{customer_name}}, thanks for calling.'}")
    async with run_spec(emulator, text, variables={"customer_name": "Ann"}) as run:
        record = await run.ready()
        async with STEP(10):
            await run.caller.wait_for(lambda: bool(final_transcripts(run)))
        assert final_transcripts(run) == ["Hi Ann, thanks for calling."]
        assert run.caller.of(AudioFrame), "the opening is spoken"
        assert not any(e["type"] == "input_audio_buffer.append" for e in record.received)
        (update,) = record.received_of("session.update")
        assert update["session"]["instructions"] == "Help Ann with their order."
        assert responses_asked(record) == ["Hi Ann, thanks for calling."]
        assert [e.text for e in run.of(TranscriptItem) if e.role == "assistant"] == \
            ["Hi Ann, thanks for calling."]


@DIALECTS
async def test_seeded_context_is_sent_in_order_before_the_first_turn(
        emulator: Emulator, beta: bool) -> None:
    text = bot(emulator, beta, """  context:
    - {role: system, text: 'The caller is {{customer_name}}.'}
    - {role: user, text: I ordered a lamp.}
    - {role: assistant, text: It ships tomorrow.}
""")
    async with run_spec(emulator, text, variables={"customer_name": "Bo"}) as run:
        record = await run.ready()
        async with STEP(10):
            await record.wait_received("conversation.item.create", count=3)
        created = [e["item"] for e in record.received_of("conversation.item.create")]
        assert [(i["role"], i["content"][0]["text"]) for i in created] == [
            ("system", "The caller is Bo."), ("user", "I ordered a lamp."),
            ("assistant", "It ships tomorrow.")]
        await settle()
        kinds = [e["type"] for e in record.received]
        assert kinds.index("session.update") < kinds.index("conversation.item.create")
        assert "response.create" not in kinds  # wait_for_user: seeding asks for no answer


@DIALECTS
async def test_idle_prompts_on_the_clock_then_end_call(emulator: Emulator, beta: bool) -> None:
    clock = ManualClock()
    text = bot(emulator, beta, """  opening: {say: Hello.}
  idle: {after_s: 8, say: Are you still there?, max_prompts: 2, goodbye: Goodbye for now.}
""")
    async with run_spec(emulator, text, clock=clock) as run:
        record = await run.ready()
        async with STEP(10):
            await run.caller.wait_for(lambda: len(final_transcripts(run)) == 1)
            await settle()
        await clock.advance(7.9)
        assert len(responses_asked(record)) == 1
        for prompts in (2, 3):
            await clock.advance(0.1 if prompts == 2 else 8)
            async with STEP(10):
                await run.caller.wait_for(partial(said, run, prompts))
                await settle()
        assert final_transcripts(run)[1:] == ["Are you still there?"] * 2
        await clock.advance(8)
        async with STEP(10):
            await run.wait_event(lambda: bool(run.of(CallEnding)))
        assert final_transcripts(run)[-1] == "Goodbye for now."
        assert [e.reason for e in run.of(CallEnding)] == ["idle"]
        await run.session.wait()  # the session was asked to end


@DIALECTS
async def test_max_duration_ends_with_the_closing_line(emulator: Emulator, beta: bool) -> None:
    clock = ManualClock()
    text = bot(emulator, beta, """  max_duration_s: 120
  closing: {say: We are out of time. Goodbye.}
""")
    async with run_spec(emulator, text, clock=clock) as run:
        await run.ready()
        await settle()
        await clock.advance(120)
        async with STEP(10):
            await run.wait_event(lambda: bool(run.of(CallEnding)))
        assert final_transcripts(run) == ["We are out of time. Goodbye."]
        assert run.of(CallEnding)[0].reason == "max_duration"


@DIALECTS
async def test_the_model_ends_the_call_with_the_tool(emulator: Emulator, beta: bool) -> None:
    text = bot(emulator, beta, "  end_call: {goodbye: 'Thanks for calling, {{customer_name}}.'}")
    async with run_spec(emulator, text) as run:
        record = await run.ready()
        (update,) = record.received_of("session.update")
        assert [t["name"] for t in update["session"]["tools"]] == ["end_call"]
        await run.caller.ctx.emit(TextFrame(text="Please end the call now.", role="user"))
        async with STEP(10):
            await run.wait_event(lambda: bool(run.of(CallEnding)))
        assert final_transcripts(run)[-1] == "Thanks for calling, there."
        outputs = [e["item"] for e in record.received_of("conversation.item.create")
                   if e["item"]["type"] == "function_call_output"]
        assert len(outputs) == 1
        ended = [e for e in run.of(FunctionCallEnded) if e.name == "end_call"]
        assert len(ended) == 1 and ended[0].ok
        assert run.of(CallEnding)[0].reason == "end_call"
