"""Delivery: order per edge, overtaking, bounded memory, interrupts, fan-in and fan-out, and
chains of any length."""

from __future__ import annotations

import asyncio

import pytest

from flowspec.frames import (
    AudioFrame,
    InterruptFrame,
    ResponseEndedFrame,
    TextFrame,
    UserSpeechStartedFrame,
)
from flowspec.runtime import Executor
from flowspec.runtime.bus import FramesDropped, NodeFailed
from flowspec.runtime.dispatch import MAX_INLINE_DEPTH
from flowspec.spec.compiled import CompiledGraph, Overflow
from flowspec.testing import RecorderNode, capture_events, graph, until

from .conftest import settle, texts


def chain(*middle: str, capacity: int = 128, overflow: Overflow = Overflow.BLOCK):  # type: ignore[no-untyped-def]
    nodes = {"src": "test.passthrough", **{f"m{i}": t for i, t in enumerate(middle)},
             "sink": "test.recorder"}
    return graph(nodes, [" -> ".join(nodes)], capacity=capacity, overflow=overflow)


async def test_frames_arrive_in_order_per_edge_through_inline_and_queued_paths(
    executor: Executor,
) -> None:
    g = chain("test.passthrough", "test.yielding", "test.passthrough")
    async with executor.session(g) as session:
        sink = session.node("sink")
        assert isinstance(sink, RecorderNode)
        for i in range(300):
            if i % 50 == 10:
                sink.hold()
            if i % 50 == 30:
                sink.release()
            await session.send("src", TextFrame(text=str(i)))
        sink.release()
    assert texts(sink) == [str(i) for i in range(300)]


async def test_suspended_consumer_does_not_hold_up_the_producer(executor: Executor) -> None:
    async with executor.session(chain()) as session:
        sink = session.node("sink")
        assert isinstance(sink, RecorderNode)
        sink.hold()
        for i in range(5):
            await session.send("src", TextFrame(text=str(i)))  # returns: frames queue instead
        assert texts(sink) == ["0"]
        assert session.edge_stats()["src.out->sink.in"] == (4, 0)
        sink.release()
    assert texts(sink) == ["0", "1", "2", "3", "4"]


async def test_system_frames_overtake_queued_data(executor: Executor) -> None:
    async with executor.session(chain("test.passthrough")) as session:
        sink = session.node("sink")
        assert isinstance(sink, RecorderNode)
        sink.hold()
        for i in range(3):
            await session.send("src", TextFrame(text=str(i)))
        speech = UserSpeechStartedFrame()
        await session.send("src", speech)
        assert sink.frames == [TextFrame(text="0"), speech]  # handled while "0" is still held
        sink.release()
    assert sink.frames[2:] == [TextFrame(text="1"), TextFrame(text="2")]


async def test_block_edge_bounds_memory_and_holds_the_producer(executor: Executor) -> None:
    async with executor.session(chain(capacity=4)) as session:
        sink = session.node("sink")
        assert isinstance(sink, RecorderNode)
        sink.hold()
        sent = 0

        async def produce() -> None:
            nonlocal sent
            for i in range(100):
                await session.send("src", AudioFrame(audio=bytes([i])))
                sent += 1

        producer = asyncio.create_task(produce())
        await settle()
        assert not producer.done()
        assert session.edge_stats()["src.out->sink.in"] == (4, 0)
        assert sent == 5  # one being handled, four queued, the sixth waits for room
        sink.release()
        await producer
    assert [f.audio[0] for f in sink.of(AudioFrame)] == list(range(100))


async def test_drop_oldest_edge_bounds_memory_without_holding_the_producer(
    executor: Executor,
) -> None:
    g = chain(capacity=4, overflow=Overflow.DROP_OLDEST)
    async with executor.session(g) as session:
        sink = session.node("sink")
        assert isinstance(sink, RecorderNode)
        sink.hold()
        with capture_events(executor.bus, FramesDropped) as dropped:
            for i in range(100):
                await session.send("src", AudioFrame(audio=bytes([i])))
                if i == 50:
                    await session.send("src", ResponseEndedFrame())  # control: never dropped
        assert session.edge_stats()["src.out->sink.in"] == (4, 96)
        assert len(dropped) == 96
        sink.release()
    received = sink.frames
    assert received[0] == AudioFrame(audio=bytes([0]))
    assert ResponseEndedFrame() in received
    assert [f.audio[0] for f in received[1:] if isinstance(f, AudioFrame)] == [97, 98, 99]


async def test_interrupt_discards_queued_data_but_keeps_control(executor: Executor) -> None:
    g = chain("test.passthrough", "test.passthrough")
    async with executor.session(g) as session:
        sink = session.node("sink")
        assert isinstance(sink, RecorderNode)
        sink.hold()
        await session.send("src", AudioFrame(audio=b"playing"))
        for i in range(10):
            await session.send("src", AudioFrame(audio=bytes([i])))
        control = ResponseEndedFrame(response_id="r1")
        await session.send("src", control)
        await session.send("src", AudioFrame(audio=b"stale"))
        interrupt = InterruptFrame()
        await session.send("src", interrupt)
        assert session.edge_stats()["m1.out->sink.in"] == (1, 0)
        await session.send("src", AudioFrame(audio=b"fresh"))
        sink.release()
    assert sink.frames == [AudioFrame(audio=b"playing"), interrupt, control,
                           AudioFrame(audio=b"fresh")]


async def test_interrupt_drops_the_frame_a_blocked_producer_was_waiting_to_queue(
    executor: Executor,
) -> None:
    async with executor.session(chain(capacity=1)) as session:
        sink = session.node("sink")
        assert isinstance(sink, RecorderNode)
        sink.hold()
        await session.send("src", AudioFrame(audio=b"0"))
        await session.send("src", AudioFrame(audio=b"1"))
        blocked = asyncio.create_task(session.send("src", AudioFrame(audio=b"stale")))
        await settle()
        assert not blocked.done()
        await session.send("src", InterruptFrame())
        await blocked
        sink.release()
    assert [f.audio for f in sink.of(AudioFrame)] == [b"0"]


async def test_interrupt_stops_at_boundary_nodes(executor: Executor) -> None:
    # caller <-> llm: interrupting llm's output must not discard the user's queued input.
    g = graph({"caller": "test.recorder", "llm": "test.recorder"},
              ["caller -> llm -> caller"], entry="caller")
    async with executor.session(g) as session:
        caller, llm = session.node("caller"), session.node("llm")
        assert isinstance(caller, RecorderNode) and isinstance(llm, RecorderNode)
        caller.hold()
        llm.hold()
        for i in range(3):
            await session.send("caller", TextFrame(text=f"user{i}", role="user"))
            await session.send("llm", TextFrame(text=f"bot{i}"))
        await session.send("llm", InterruptFrame())
        caller.release()
        llm.release()
    assert texts(llm) == ["user0", "user1", "user2"]
    assert texts(caller) == ["bot0"]
    assert len(caller.of(InterruptFrame)) == 1
    assert llm.of(InterruptFrame) == []


async def test_fan_out_and_fan_in_deliver_every_frame_once_per_path(executor: Executor) -> None:
    g = graph(
        {"src": "test.passthrough", "a": "test.yielding", "b": "test.passthrough",
         "sink": "test.recorder"},
        ["src -> a", "src -> b", "a -> sink.left", "b -> sink.right"],
    )
    sent = [TextFrame(text=str(i)) for i in range(200)]
    async with executor.session(g) as session:
        for frame in sent:
            await session.send("src", frame)
    sink = session.node("sink")
    assert isinstance(sink, RecorderNode)
    for port in ("left", "right"):
        got = [f for p, f in sink.received if p == port]
        assert len(got) == len(sent)
        assert all(a is b for a, b in zip(got, sent, strict=True))


async def test_reentrant_delivery_to_a_node_already_on_the_stack_is_queued(
    executor: Executor,
) -> None:
    # a -> b -> a: b's emit reaches a while a is still inside handle; it must queue, not recurse.
    g = graph({"a": "test.recorder", "b": "test.flaky"}, ["a -> b -> a"])
    async with executor.session(g) as session:
        await session.send("b", TextFrame(text="x"))
    a = session.node("a")
    assert isinstance(a, RecorderNode)
    assert texts(a) == ["x"]


class PlayerNode:
    """Plays audio until cancelled; records what it played, was cut off on, and other frames."""

    def __init__(self, ctx: object) -> None:
        self.cut: list[bytes] = []
        self.other: list[object] = []

    async def start(self) -> None:
        return None

    async def handle(self, frame: object, port: str) -> None:
        if isinstance(frame, AudioFrame):
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cut.append(frame.audio)
                raise
        else:
            self.other.append(frame)

    async def stop(self) -> None:
        return None


@pytest.mark.parametrize("settled", [False, True], ids=["before-tail-ran", "tail-running"])
async def test_interrupt_cancels_the_data_frame_being_played_and_the_lane_goes_on(
    executor: Executor, settled: bool,
) -> None:
    executor.registry.register("test.player", PlayerNode)
    g = graph({"src": "test.passthrough", "player": "test.player"}, ["src -> player"])
    async with executor.session(g) as session:
        player = session.node("player")
        assert isinstance(player, PlayerNode)
        await session.send("src", AudioFrame(audio=b"stale"))
        await session.send("src", ResponseEndedFrame())
        if settled:
            await settle()
        await session.send("src", InterruptFrame())
        await settle()
        assert player.cut == [b"stale"]
        assert [type(f) for f in player.other[1:]] == [InterruptFrame, ResponseEndedFrame]
        await session.send("src", TextFrame(text="next"))
        assert player.other[-1] == TextFrame(text="next")
    assert session.state.name == "CLOSED"


def long_chain(hops: int) -> CompiledGraph:
    nodes = {"src": "test.passthrough", **{f"p{i}": "test.passthrough" for i in range(hops - 1)},
             "sink": "test.recorder"}
    return graph(nodes, [" -> ".join(nodes)])


async def test_a_chain_shorter_than_the_inline_depth_delivers_before_emit_returns(
    executor: Executor,
) -> None:
    async with executor.session(long_chain(MAX_INLINE_DEPTH)) as session:
        sink = session.node("sink")
        assert isinstance(sink, RecorderNode)
        await session.send("src", TextFrame(text="0"))
        assert texts(sink) == ["0"]  # inline all the way: no task switch happened


async def test_a_thousand_hop_chain_delivers_every_frame_in_order_and_interrupts_reach_its_end(
    executor: Executor,
) -> None:
    sent = [str(i) for i in range(300)]
    with capture_events(executor.bus, NodeFailed) as failures:
        async with executor.session(long_chain(1000)) as session:
            sink = session.node("sink")
            assert isinstance(sink, RecorderNode)
            for text in sent:
                await session.send("src", TextFrame(text=text))
            await until(lambda: len(texts(sink)) == len(sent))
            speech = UserSpeechStartedFrame()  # the system lane, passed on node by node
            await session.send("src", speech)
            await until(lambda: speech in sink.frames)
            interrupt = InterruptFrame()
            await session.send("src", interrupt)
            await until(lambda: interrupt in sink.frames)
            await session.send("src", TextFrame(text="after"))
    assert texts(sink) == [*sent, "after"]
    assert failures == []
