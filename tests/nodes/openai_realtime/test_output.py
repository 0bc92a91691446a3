"""The realtime node's Outbox: inline delivery when the consumer keeps up, order and barge-in
flushing when it pushes back."""

from __future__ import annotations

import asyncio

import pytest

from flowspec.frames import AudioFrame, Frame, ResponseEndedFrame
from flowspec.nodes.openai_realtime.output import Outbox


def audio(n: int) -> AudioFrame:
    return AudioFrame(audio=bytes([n]) * 2, item_id=f"a{n}")


class Consumer:
    """Takes frames at once, or, when `gate` is closed, waits on it (a full edge)."""

    def __init__(self) -> None:
        self.got: list[Frame] = []
        self.gate: asyncio.Event | None = None

    async def emit(self, frame: Frame) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.got.append(frame)


async def test_frames_go_out_inline_without_a_loop_turn() -> None:
    consumer = Consumer()
    outbox = Outbox(consumer.emit)
    outbox.put(audio(1))
    outbox.put(audio(2))
    # No await happened: the writer task never ran, yet both frames were delivered, in order.
    assert consumer.got == [audio(1), audio(2)]


async def test_pushback_moves_the_write_to_the_writer_and_keeps_order() -> None:
    consumer = Consumer()
    consumer.gate = asyncio.Event()
    outbox = Outbox(consumer.emit)
    async with asyncio.TaskGroup() as tg:
        writer = tg.create_task(outbox.run())
        outbox.put(audio(1))  # the consumer waits: the write continues in the writer
        consumer.gate.set()
        consumer.gate = None  # the consumer keeps up again ...
        outbox.put(audio(2))  # ... but this frame must still queue behind frame 1
        assert consumer.got == []
        for _ in range(5):
            await asyncio.sleep(0)
        assert consumer.got == [audio(1), audio(2)]
        outbox.put(audio(3))  # writer idle again: inline once more
        assert consumer.got[-1] == audio(3)
        writer.cancel()


async def test_flush_drops_queued_data_but_keeps_control_frames() -> None:
    consumer = Consumer()
    consumer.gate = asyncio.Event()
    outbox = Outbox(consumer.emit)
    async with asyncio.TaskGroup() as tg:
        writer = tg.create_task(outbox.run())
        outbox.put(audio(1))  # in flight when the barge-in comes: it finishes
        outbox.put(audio(2))
        outbox.put(ResponseEndedFrame(response_id="r", status="interrupted"))
        outbox.put(audio(3))
        outbox.flush()
        outbox.put(audio(4))  # after the barge-in: kept
        consumer.gate.set()
        for _ in range(5):
            await asyncio.sleep(0)
        writer.cancel()
    assert consumer.got == [audio(1), ResponseEndedFrame(response_id="r", status="interrupted"),
                            audio(4)]


async def test_a_failing_emit_fails_the_writer_task() -> None:
    async def broken(frame: Frame) -> None:
        raise RuntimeError("consumer gone")

    outbox = Outbox(broken)
    outbox.put(audio(1))  # the receive loop is not the one to fail
    with pytest.raises(RuntimeError, match="consumer gone"):
        await asyncio.wait_for(outbox.run(), 5)
