"""Session lifecycle and supervision: start, end (drain), cancel, failures, independence."""

from __future__ import annotations

import asyncio
import functools
import socket

import pytest

from flowspec.conversation.events import CallEnding, CallStarted
from flowspec.errors import NodeError
from flowspec.frames import EndFrame, ErrorFrame, Frame, StartFrame, TextFrame
from flowspec.runtime import Context, Executor, Registry
from flowspec.runtime.bus import NodeFailed, SessionEnded, SessionStarted
from flowspec.runtime.session import State
from flowspec.testing import RecorderNode, capture_events, graph, until

from .conftest import BoomError, settle, texts


class SocketNode:
    """Owns a socket and a receive-loop task, like a transport; forwards what it receives."""

    instances: list[SocketNode] = []

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.sockets: tuple[socket.socket, socket.socket] | None = None
        self.stopped = False
        SocketNode.instances.append(self)

    async def start(self) -> None:
        self.sockets = socket.socketpair()
        self.ctx.spawn(self._receive(), name="receive")

    async def _receive(self) -> None:
        await asyncio.Event().wait()  # a socket read that never completes

    async def handle(self, frame: Frame, port: str) -> None:
        await asyncio.sleep(0)
        await self.ctx.emit(frame)

    async def stop(self) -> None:
        self.stopped = True
        assert self.sockets is not None
        for sock in self.sockets:
            sock.close()


class BrokenStartNode:
    def __init__(self, ctx: Context) -> None:
        pass

    async def start(self) -> None:
        raise OSError("connection refused")

    async def handle(self, frame: Frame, port: str) -> None:
        return None

    async def stop(self) -> None:
        return None


@pytest.fixture
def registry(registry: Registry) -> Registry:
    registry.register("test.socket", SocketNode)
    registry.register("test.broken", BrokenStartNode)
    SocketNode.instances.clear()
    return registry


def only_current_task() -> bool:
    return asyncio.all_tasks() == {asyncio.current_task()}


async def test_start_runs_nodes_then_sends_start_frame_once_to_each(executor: Executor) -> None:
    g = graph({"src": "test.passthrough", "a": "test.recorder", "b": "test.recorder"},
              ["src -> a", "src -> b"])
    with capture_events(executor.bus) as events:
        async with executor.session(g) as session:
            a, b = session.node("a"), session.node("b")
            assert isinstance(a, RecorderNode) and isinstance(b, RecorderNode)
            assert a.started and b.started
            assert session.id in executor.sessions
            for node in (a, b):
                assert [f for _, f in node.received] == [StartFrame(session_id=session.id)]
        assert a.stopped and b.stopped
    assert session.id not in executor.sessions
    # An entry that reports no caller leaves the call's variables to the session: it begins
    # as soon as every node has started.
    assert [type(e) for e in events] == [SessionStarted, CallStarted, CallEnding, SessionEnded]


async def test_failing_node_reports_and_its_session_goes_on(executor: Executor) -> None:
    g = graph({"src": "test.passthrough", "flaky": "test.flaky", "sink": "test.recorder"},
              ["src -> flaky -> sink"])
    with capture_events(executor.bus) as events:
        async with executor.session(g) as failing, executor.session(g) as healthy:
            for text in ("a", "boom", "b"):
                await failing.send("src", TextFrame(text=text))
                await healthy.send("src", TextFrame(text=text.replace("boom", "x")))
            assert failing.state is State.RUNNING
    failed = [e for e in events if isinstance(e, NodeFailed)]
    assert len(failed) == 1
    assert failed[0].session_id == failing.id
    assert failed[0].node_id == "flaky" and not failed[0].fatal
    sink = failing.node("sink")
    assert texts(sink) == ["a", "b"]
    assert isinstance(sink, RecorderNode)
    assert [f.node_id for f in sink.of(ErrorFrame)] == ["flaky"]
    assert texts(healthy.node("sink")) == ["a", "x", "b"]
    ended = [e for e in events if isinstance(e, SessionEnded)]
    assert {e.session_id: e.cancelled for e in ended} == {failing.id: False, healthy.id: False}


async def test_fatal_failure_cancels_only_its_own_session(executor: Executor) -> None:
    g = graph({"src": "test.passthrough", "flaky": "test.flaky", "sink": "test.recorder"},
              ["src -> flaky -> sink"])
    with capture_events(executor.bus, SessionEnded) as ended:
        async with executor.session(g) as healthy:
            async with executor.session(g) as doomed:
                await doomed.send("src", TextFrame(text="fatal"))
                await doomed.wait()  # the fatal failure asked the session to end
            assert doomed.state is State.CLOSED
            assert healthy.state is State.RUNNING
            await healthy.send("src", TextFrame(text="still here"))
    assert [(e.session_id, e.cancelled) for e in ended] == [(doomed.id, True),
                                                            (healthy.id, False)]
    assert texts(healthy.node("sink")) == ["still here"]


class LoopNode:
    """Runs a loop task that fails when told to: an essential one (a receive loop) with
    `test.essential`, an ordinary one (a side job) with `test.side`."""

    def __init__(self, ctx: Context, *, essential: bool) -> None:
        self.ctx = ctx
        self.essential = essential
        self.fail = asyncio.Event()

    async def start(self) -> None:
        self.ctx.spawn(self._loop(), name="loop", essential=self.essential)

    async def _loop(self) -> None:
        await self.fail.wait()
        raise BoomError("the loop broke")

    async def handle(self, frame: Frame, port: str) -> None:
        await self.ctx.emit(frame)

    async def stop(self) -> None:
        return None


@pytest.mark.parametrize("essential", [True, False])
async def test_an_essential_task_that_fails_cancels_its_session_an_ordinary_one_does_not(
    executor: Executor, registry: Registry, essential: bool,
) -> None:
    registry.register("test.loop", functools.partial(LoopNode, essential=essential))
    g = graph({"src": "test.loop", "sink": "test.recorder"}, ["src -> sink"])
    with capture_events(executor.bus, NodeFailed, SessionEnded) as events:
        async with executor.session(g) as session:
            loop = session.node("src")
            assert isinstance(loop, LoopNode)
            loop.fail.set()
            if essential:
                await session.wait()
            else:
                await until(lambda: any(isinstance(e, NodeFailed) for e in events))
                await session.send("src", TextFrame(text="still here"))
                assert session.state is State.RUNNING
    (failed,) = [e for e in events if isinstance(e, NodeFailed)]
    assert (failed.node_id, failed.during, failed.fatal) == ("src", "task", essential)
    (ended,) = [e for e in events if isinstance(e, SessionEnded)]
    assert ended.cancelled is essential
    sink = session.node("sink")
    assert isinstance(sink, RecorderNode)
    assert [f.fatal for f in sink.of(ErrorFrame)] == [essential]
    if essential:
        assert session.close_reason == "node 'src' failed: the loop broke"
    else:
        assert texts(sink) == ["still here"]


async def test_failure_to_start_raises_and_leaves_nothing_running(executor: Executor) -> None:
    g = graph({"src": "test.socket", "broken": "test.broken"}, ["src -> broken"])
    with pytest.raises(NodeError, match="broken"):
        async with executor.session(g):
            pytest.fail("the session must not start")
    assert only_current_task()
    (node,) = SocketNode.instances
    assert node.sockets is None and not node.stopped  # never started, so never stopped


async def test_end_drains_queued_frames_then_leaves_no_task_queue_or_socket(
    executor: Executor,
) -> None:
    g = graph({"src": "test.socket", "slow": "test.yielding", "sink": "test.recorder"},
              ["src -> slow -> sink"], capacity=1000)
    async with executor.session(g) as session:
        for i in range(100):
            await session.send("src", TextFrame(text=str(i)))
        assert sum(queued for queued, _ in session.edge_stats().values()) > 0
        assert not only_current_task()
    assert texts(session.node("sink")) == [str(i) for i in range(100)]
    assert only_current_task()
    assert sum(queued for queued, _ in session.edge_stats().values()) == 0
    (node,) = SocketNode.instances
    assert node.stopped and all(s.fileno() == -1 for s in node.sockets or ())


async def test_cancel_discards_queued_frames_and_leaves_no_task_queue_or_socket(
    executor: Executor,
) -> None:
    g = graph({"src": "test.socket", "slow": "test.yielding", "sink": "test.recorder"},
              ["src -> slow -> sink"], capacity=1000)
    session = executor.session(g)
    async with session:
        sink = session.node("sink")
        assert isinstance(sink, RecorderNode)
        sink.hold()
        for i in range(100):
            await session.send("src", TextFrame(text=str(i)))
        await settle()
        session.request_cancel("test")
    assert session.state is State.CLOSED
    assert len(texts(sink)) < 100
    assert sink.stopped
    assert only_current_task()
    assert sum(queued for queued, _ in session.edge_stats().values()) == 0
    (node,) = SocketNode.instances
    assert node.stopped and all(s.fileno() == -1 for s in node.sockets or ())


async def test_exception_in_the_session_block_cancels(executor: Executor) -> None:
    g = graph({"src": "test.socket", "sink": "test.recorder"}, ["src -> sink"])
    with capture_events(executor.bus, SessionEnded) as ended:
        with pytest.raises(RuntimeError):
            async with executor.session(g):
                raise RuntimeError("caller gave up")
    assert [e.cancelled for e in ended] == [True]
    assert only_current_task()


async def test_end_frame_from_a_node_asks_the_session_to_end(executor: Executor) -> None:
    g = graph({"src": "test.passthrough", "sink": "test.recorder"}, ["src -> sink"])
    async with executor.session(g) as session:
        await session.send("src", TextFrame(text="bye"))
        await session.send("src", EndFrame(reason="client hung up"))
        await asyncio.wait_for(session.wait(), 5)
    assert session.close_reason == "client hung up"
    assert texts(session.node("sink")) == ["bye"]
    assert session.node("sink").of(EndFrame) == []  # type: ignore[attr-defined]
