"""A flow on both Realtime dialects against the emulator (scripted tool calls): each move is
one session.update with the new state's instructions and tools and nothing else, a branch
table routes by the tool's result, a refused update keeps the call in its state, and a final
state's words are said before the call ends."""

from __future__ import annotations

import asyncio
from functools import partial
from pathlib import Path

import pytest

from flowspec.conversation.events import CallEnding, FlowTransition, FlowTransitionRefused
from flowspec.emulator import Emulator
from flowspec.events.webhook import WebhookNode
from flowspec.frames import TextFrame, TranscriptFrame
from flowspec.runtime.bus import Bus, FunctionCallEnded
from flowspec.server.metrics import ServerMetrics
from tests.events.test_webhook import SECRET, Receiver, receiving

from .harness import STEP, Run, run_spec

ROOT = Path(__file__).resolve().parents[3]
DIALECTS = pytest.mark.parametrize("beta", [False, True], ids=["ga", "beta"])
SCRIPT = """
rules:
  - when: {contains: book}
    call: {name: wants_booking}
  - when: {contains: four people}
    call: {name: check_availability, arguments: {people: 4, time: "19:30"}}
  - when: {contains: twelve people}
    call: {name: check_availability, arguments: {people: 12, time: "20:00"}}
  - when: {contains: that is right}
    call: {name: confirmed}
"""


def booking(emu: Emulator, beta: bool, *, refuse: str = "") -> str:
    """specs/restaurant-booking.yaml, pointed at the emulator (and at the beta dialect)."""
    text = (ROOT / "specs" / "restaurant-booking.yaml").read_text().replace(
        "  host:\n", "  llm:\n").replace("caller -> host -> caller", "caller -> llm -> caller")
    model = "gpt-4o-realtime-preview-2025-06-03" if beta else "gpt-realtime-1.5"
    kind = "openai.realtime_beta" if beta else "openai.realtime"
    text = text.replace("    type: openai.realtime\n", f"""    type: {kind}
    base_url: {emu.ws_base_url}/realtime
    api_key: test
""")
    text = text.replace("    settings:\n      system_instruction:",
                        f"    settings:\n      model: {model}\n      system_instruction:")
    if beta:
        text = text.replace("""      session_properties:
        audio:
          input:
            transcription: {model: gpt-4o-transcribe}
            turn_detection: {type: semantic_vad}
          output: {voice: marin}
""", "")
    if refuse:
        text = text.replace("then check availability.", f"then check availability. {refuse}")
    return text


def updates(record: object) -> list[dict[str, object]]:
    return [dict(e["session"]) for e in record.received_of("session.update")]  # type: ignore


async def say(run: Run, text: str) -> None:
    await run.caller.ctx.emit(TextFrame(text=text, role="user"))


def finals(run: Run) -> list[str]:
    return [f.text for f in run.caller.of(TranscriptFrame) if f.role == "assistant" and f.final]


@DIALECTS
async def test_a_call_moves_through_the_flow_one_update_per_move(emulator: Emulator,
                                                                 beta: bool) -> None:
    emulator.load_script(SCRIPT, text=True)
    async with run_spec(emulator, booking(emulator, beta),
                        variables={"customer_name": "Ann"}) as run:
        record = await run.ready()
        first = updates(record)[0]
        assert str(first["instructions"]).endswith(
            "Find out whether the caller wants to book a table.")
        assert [t["name"] for t in first["tools"]] == ["wants_booking"]  # type: ignore
        async with STEP(10):
            await run.caller.wait_for(lambda: len(finals(run)) >= 1)  # the opening
        await say(run, "I would like to book a table.")
        async with STEP(10):
            await run.wait_event(lambda: len(run.of(FlowTransition)) == 1)
            await record.wait_received("session.update", count=2)
        move = updates(record)[1]
        assert set(move) <= {"type", "instructions", "tools"}
        assert "then check availability" in str(move["instructions"])
        assert [t["name"] for t in move["tools"]] == ["check_availability"]  # type: ignore
        await say(run, "We are four people at half past seven.")
        async with STEP(10):
            await run.wait_event(lambda: len(run.of(FlowTransition)) == 2)
            await record.wait_received("session.update", count=3)
        assert run.of(FlowTransition)[1].target == "confirm"  # the branch table's case
        assert "4 people at 19:30" in str(updates(record)[2]["instructions"])
        await say(run, "Yes, that is right.")
        async with STEP(10):
            await run.wait_event(lambda: bool(run.of(CallEnding)))
        assert [(t.source, t.target) for t in run.of(FlowTransition)] == [
            ("greet", "collect"), ("collect", "confirm"), ("confirm", "done")]
        assert finals(run)[-1] == "You are all set, Ann. We look forward to seeing you at 19:30!"
        assert run.of(CallEnding)[0].reason == "end_call"
        names = [e.name for e in run.of(FunctionCallEnded)]
        assert names == ["wants_booking", "check_availability", "confirmed"]


@DIALECTS
async def test_a_full_restaurant_keeps_the_call_collecting(emulator: Emulator,
                                                           beta: bool) -> None:
    emulator.load_script(SCRIPT, text=True)
    async with run_spec(emulator, booking(emulator, beta)) as run:
        record = await run.ready()
        await say(run, "Book a table please.")
        async with STEP(10):
            await run.wait_event(lambda: len(run.of(FlowTransition)) == 1)
        await say(run, "We are twelve people at eight.")
        async with STEP(10):
            await run.wait_event(lambda: len(run.of(FlowTransition)) == 2)
        assert run.of(FlowTransition)[1].target == "collect"
        await asyncio.sleep(0.05)
        # Staying in a state changes nothing the model sees: no update for it.
        assert len(updates(record)) == 2


@DIALECTS
async def test_a_refused_update_leaves_the_call_where_it_was(emulator: Emulator,
                                                             beta: bool) -> None:
    emulator.load_script(SCRIPT + """
  - when: {event: session.update, contains: forbidden}
    fail: {type: invalid_request_error, code: invalid_value, message: Not allowed here.}
""", text=True)
    async with run_spec(emulator, booking(emulator, beta, refuse="(forbidden)")) as run:
        record = await run.ready()
        await say(run, "Book a table please.")
        async with STEP(10):
            await run.wait_event(lambda: bool(run.of(FlowTransitionRefused)))
        refused = run.of(FlowTransitionRefused)[0]
        assert (refused.source, refused.target) == ("greet", "collect")
        assert run.llm.link.flow is not None and run.llm.link.flow.state == "greet"
        async with STEP(10):
            await record.wait_received("session.update", count=3)  # the way back
        back = updates(record)[2]
        assert str(back["instructions"]).endswith("wants to book a table.")


def moved(run: Run, count: int) -> bool:
    return len(run.of(FlowTransition)) == count


async def test_moves_reach_the_webhook_and_the_metrics(emulator: Emulator) -> None:
    emulator.load_script(SCRIPT, text=True)
    receiver = Receiver()
    async with receiving(receiver.accept) as url:
        text = booking(emulator, False).replace("edges:\n", f"""  hook:
    type: events.webhook
    url: {url}
    secret: {SECRET}
    events: [flow.transition]
    allow_private_network: true
edges:
""", 1)
        node = partial(WebhookNode, flush_budget_s=4.0)
        async with run_spec(emulator, text, extra_nodes={"events.webhook": node}) as run:
            await run.ready()
            for words, moves in (("I would like to book a table.", 1),
                                 ("We are twelve people at eight.", 2),
                                 ("Then four people at half past seven.", 3)):
                await say(run, words)
                async with STEP(10):
                    await run.wait_event(partial(moved, run, moves))
            run.session.request_end("done")
            async with STEP(10):
                await run.session.wait()
    sent = [(e["data"]["from"], e["data"]["to"], e["data"]["tool"], e["data"]["refused"])
            for e in receiver.events]
    assert sent == [("greet", "collect", "wants_booking", False),
                    ("collect", "collect", "check_availability", False),
                    ("collect", "confirm", "check_availability", False)]
    assert all(receiver.valid)
    bus = Bus()
    metrics = ServerMetrics(bus, sessions=list)
    for event in run.events:
        bus.publish(event)
    exposed = metrics.render().decode()
    for source, target, count in (("greet", "collect", 1), ("collect", "collect", 1),
                                  ("collect", "confirm", 1)):
        assert (f'flowspec_flow_transitions_total{{outcome="moved",source="{source}",'
                f'spec="restaurant-booking",target="{target}"}} {count}.0') in exposed
