"""User text the model cannot take yet is held, then delivered in order and answered: before the
session is configured, and while a dropped connection is being restored. What cannot be
delivered (the hold is full, the connection is gone for good) is told to the client."""

from __future__ import annotations

from typing import Any

import pytest

from flowspec.emulator import Emulator
from flowspec.emulator.records import ConnectionRecord
from flowspec.frames import ErrorFrame, ResponseEndedFrame, TextFrame
from flowspec.nodes.openai_realtime.held import MAX_HELD_ITEMS, HeldInput, user_text_item
from flowspec.runtime.bus import ClientMessageRejected, ProviderError

from .harness import STEP, GatedConnector, Run, run_spec, spec

DIALECTS = pytest.mark.parametrize("beta", [False, True], ids=["ga", "beta"])


def texts_created(record: ConnectionRecord) -> list[str]:
    """The text of each item the client created on one connection, in order."""
    return [part["text"] for event in record.received_of("conversation.item.create")
            for part in event["item"]["content"] if "text" in part]


def kinds(record: ConnectionRecord) -> list[str]:
    return [str(event["type"]) for event in record.received]


async def say(run: Run, text: str) -> None:
    await run.session.send("caller", TextFrame(text=text, role="user"))


async def answered(run: Run, count: int = 1) -> None:
    """Wait until `count` responses completed (a dropped one ends as `disconnected`, if at all)."""
    def completed() -> int:
        return sum(f.status == "completed" for f in run.caller.of(ResponseEndedFrame))

    async with STEP(10):
        await run.caller.wait_for(lambda: completed() >= count)


@DIALECTS
async def test_text_sent_before_the_session_is_ready_is_delivered_after_it_and_answered(
        emulator: Emulator, beta: bool) -> None:
    gate = GatedConnector(open_first=0)
    async with run_spec(emulator, spec(emulator, beta=beta), connect=gate) as run:
        await say(run, "Hello before you are ready.")
        await say(run, "And a second line.")
        gate.gate.set()
        record = await run.ready()
        await answered(run)
        async with STEP(10):
            await record.wait_sent("response.done")
    assert texts_created(record) == ["Hello before you are ready.", "And a second line."]
    sequence = kinds(record)
    assert sequence.index("session.update") < sequence.index("conversation.item.create")
    assert sequence.count("response.create") == 1
    assert sequence.index("response.create") > max(
        i for i, kind in enumerate(sequence) if kind == "conversation.item.create")
    assert not run.of(ClientMessageRejected)


@DIALECTS
async def test_text_sent_while_the_connection_is_down_arrives_once_after_the_reconnect(
        emulator: Emulator, beta: bool) -> None:
    emulator.load_script("rules: [{when: {turn: 1}, drop: true, times: 1}]", text=True)
    gate = GatedConnector()
    async with run_spec(emulator, spec(emulator, beta=beta), connect=gate) as run:
        first = await run.ready()
        await say(run, "My name is Ada.")
        async with STEP(10):
            await gate.waiting.wait()  # dropped; the reconnect waits at the gate
        await say(run, "What is my name?")
        gate.gate.set()
        second = await run.connection(1)
        async with STEP(10):
            await second.wait_sent("response.done")
        await answered(run)
    assert "What is my name?" not in texts_created(first)
    created = texts_created(second)
    assert created.count("My name is Ada.") == 1  # the re-seeded history
    assert created.count("What is my name?") == 1
    assert created.index("My name is Ada.") < created.index("What is my name?")
    sequence = kinds(second)
    assert sequence[0] == "session.update"
    assert sequence.index("response.create") > sequence.index("conversation.item.create")
    assert any(e.code == "connection_lost" for e in run.of(ProviderError))
    assert not run.of(ClientMessageRejected)


async def test_text_beyond_a_full_hold_is_refused_and_the_client_is_told(
        emulator: Emulator) -> None:
    gate = GatedConnector(open_first=0)
    async with run_spec(emulator, spec(emulator), connect=gate) as run:
        for index in range(MAX_HELD_ITEMS + 2):
            await say(run, f"line {index}")
        errors = run.caller.of(ErrorFrame)
        assert [e.code for e in errors] == ["input_not_delivered"] * 2
        assert "line" not in errors[0].message and "not delivered" in errors[0].message
        assert [e.code for e in run.of(ClientMessageRejected)] == ["input_not_delivered"] * 2
        gate.gate.set()
        record = await run.ready()
        await answered(run)
    assert texts_created(record) == [f"line {index}" for index in range(MAX_HELD_ITEMS)]


async def test_held_text_is_reported_when_the_connection_cannot_be_restored(
        emulator: Emulator) -> None:
    gate = GatedConnector()
    async with run_spec(emulator, spec(emulator), connect=gate) as run:
        await run.ready()
        await emulator.stop()
        async with STEP(10):
            await gate.waiting.wait()
        await say(run, "Anyone there?")
        gate.gate.set()
        async with STEP(10):
            await run.session.wait()
        (error,) = run.caller.of(ErrorFrame)
        assert error.code == "input_not_delivered"
        assert "could not be restored" in error.message
    assert run.session.close_reason.startswith("llm: The model connection could not")
    assert [e.code for e in run.of(ClientMessageRejected)] == ["input_not_delivered"]


# -- the hold itself -------------------------------------------------------------------------


def item(text: str) -> dict[str, Any]:
    return user_text_item(text)


def test_items_leave_in_order_and_wait_again_when_the_connection_is_lost_unconfirmed() -> None:
    held = HeldInput(max_items=3, max_bytes=1000)
    a, b, c = item("a"), item("b"), item("c")
    assert held.hold(a) and held.hold(b)
    assert held.next() is a
    assert held.next() is b
    assert held.next() is None
    held.confirmed(a["id"])
    assert held.hold(c)
    held.connection_lost()  # b was sent, never confirmed: it goes again, before c
    assert [held.next(), held.next(), held.next()] == [b, c, None]


def test_a_failed_send_puts_the_item_back_first() -> None:
    held = HeldInput(max_items=3, max_bytes=1000)
    a, b = item("a"), item("b")
    held.hold(a)
    held.hold(b)
    sent = held.next()
    assert sent is a
    held.put_back(sent)
    assert [held.next(), held.next()] == [a, b]


def test_an_item_put_back_after_the_connection_was_lost_waits_only_once() -> None:
    held = HeldInput(max_items=3, max_bytes=1000)
    a = item("a")
    held.hold(a)
    sent = held.next()
    assert sent is a
    held.connection_lost()  # while its send was still in progress
    held.put_back(sent)  # and then the send failed
    assert [held.next(), held.next()] == [a, None]


def test_the_hold_is_bounded_by_items_and_bytes() -> None:
    held = HeldInput(max_items=2, max_bytes=1000)
    assert held.hold(item("a")) and held.hold(item("b"))
    assert not held.hold(item("c"))
    assert len(held) == 2
    small = HeldInput(max_items=10, max_bytes=100)
    assert not small.hold(item("x" * 200))
    assert small.hold(item("short"))


def test_unconfirmed_items_are_remembered_within_a_bound() -> None:
    held = HeldInput(max_items=100, max_bytes=100_000, max_unconfirmed=2)
    items = [item(str(i)) for i in range(4)]
    for one in items:
        held.hold(one)
        held.next()
    held.connection_lost()  # only the last two unconfirmed ones are still known
    assert [held.next(), held.next(), held.next()] == [items[2], items[3], None]


def test_giving_up_empties_the_hold_and_counts_what_was_lost() -> None:
    held = HeldInput()
    for text in ("a", "b", "c"):
        held.hold(item(text))
    held.next()
    assert held.drop_all() == 3
    assert held.next() is None and len(held) == 0
    assert user_text_item("hi")["id"] != user_text_item("hi")["id"]
    assert len(user_text_item("hi")["id"]) <= 32
