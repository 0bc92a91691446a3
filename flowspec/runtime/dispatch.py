"""The hot path: how a frame gets from `emit` into the consumer's `handle`.

An idle consumer is called inline, in the emitter's task: one coroutine step and no queue, no task
switch. Only when `handle` suspends does the rest of that call move into a task the session owns
(`Session.detach`), and only while a consumer is busy do frames for it wait in its inbox. Each
node has two lanes of execution: ordered (data and control frames, in order) and system (frames
that overtake, handled even while an ordered call is suspended).
"""

from __future__ import annotations

import asyncio
import types
from collections import deque
from collections.abc import Coroutine, Generator, Mapping
from typing import TYPE_CHECKING, Any

from flowspec.frames import Frame, FunctionCallFrame, FunctionResultFrame, Lane
from flowspec.runtime.bus import Bus, BusEvent
from flowspec.runtime.edges import Edge
from flowspec.runtime.node import DEFAULT_OUT, Node
from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.tools import ToolNodeSpec

if TYPE_CHECKING:
    from flowspec.runtime.session import Session

_SYSTEM = Lane.SYSTEM
_DATA = Lane.DATA
_FAIRNESS = 64  # frames a drain handles in a row before letting other tasks run


class Slot:
    """The executor's side of one node in one session: its lanes, inboxes and state."""

    __slots__ = ("node_id", "node", "handle", "session", "busy", "sys_busy", "stopped",
                 "started", "inbox", "urgent", "epoch", "incoming", "tasks", "tail", "tail_data",
                 "tail_running", "interrupt_pending", "held")

    def __init__(self, node_id: str, session: Session) -> None:
        self.node_id = node_id
        self.session = session
        self.node: Node | None = None
        self.busy = True  # nothing is delivered before the node is started
        self.sys_busy = True
        self.stopped = False
        self.started = False  # start() returned and stop() has not been called
        # Created on first use: most inboxes of most sessions stay empty.
        self.inbox: deque[tuple[Edge, Frame]] | None = None
        self.urgent: deque[tuple[str, Frame]] | None = None
        self.held = 0  # control frames in the inbox: an interrupt keeps those
        self.epoch = 0  # bumped by each interrupt that flushes this node
        self.incoming: list[Edge] = []
        self.tasks: set[asyncio.Task[None]] | None = None
        # The task finishing a suspended ordered call, and whether that call is for a data frame
        # (an interrupt cancels it: the frame is stale).
        self.tail: asyncio.Task[None] | None = None
        self.tail_data = False
        self.tail_running = False
        self.interrupt_pending = False

    def __repr__(self) -> str:
        return f"Slot({self.node_id!r}, busy={self.busy}, sys_busy={self.sys_busy})"

    def bind(self, node: Node) -> None:
        self.node = node
        self.handle = node.handle

    def open(self) -> None:
        """Start accepting frames, and handle any that arrived while the node was starting."""
        self.busy = self.sys_busy = False
        if self.urgent:
            self.sys_busy = True
            port, frame = self.urgent.popleft()
            self.run_system(port, frame)
        if self.inbox and not self.busy:
            self.busy = True
            edge, frame = self.inbox.popleft()
            if frame.lane is not _DATA:
                self.held -= 1
            self.run(edge.take(), frame)

    def run(self, port: str, frame: Frame) -> None:
        """Handle an ordered frame now, then any that queued meanwhile. `busy` is already set."""
        handle = self.handle
        while True:
            coro = handle(frame, port)
            try:
                step = coro.send(None)
            except StopIteration:
                pass
            except Exception as exc:  # supervision boundary: the node failed, the session goes on
                self.session.node_failed(self, exc, "handle")
            else:
                self.session.detach(self, coro, step, frame, system=False)
                return
            inbox = self.inbox
            if not inbox or self.stopped:
                self.busy = self.stopped
                return
            edge, frame = inbox.popleft()
            port = edge.take()
            if frame.lane is not _DATA:
                self.held -= 1

    def run_system(self, port: str, frame: Frame) -> None:
        """`run` for the system lane. `sys_busy` is already set."""
        handle = self.handle
        while True:
            coro = handle(frame, port)
            try:
                step = coro.send(None)
            except StopIteration:
                pass
            except Exception as exc:  # supervision boundary
                self.session.node_failed(self, exc, "handle")
            else:
                self.session.detach(self, coro, step, frame, system=True)
                return
            urgent = self.urgent
            if not urgent or self.stopped:
                self.sys_busy = self.stopped
                return
            port, frame = urgent.popleft()

    def deliver_system(self, port: str, frame: Frame) -> None:
        if self.sys_busy:
            if not self.stopped:
                if self.urgent is None:
                    self.urgent = deque()
                self.urgent.append((port, frame))
        else:
            self.sys_busy = True
            self.run_system(port, frame)

    async def drain(self, system: bool) -> None:
        """Handle what queued on one lane while a suspended call ran, with ordinary awaits (this
        runs in the session's task for this node), then mark the lane idle."""
        count = 0
        while not self.stopped:
            if system:
                if not self.urgent:
                    self.sys_busy = False
                    return
                port, frame = self.urgent.popleft()
            else:
                if not self.inbox:
                    self.busy = False
                    return
                edge, frame = self.inbox.popleft()
                port = edge.take()
                self.tail_data = frame.lane is _DATA
                if not self.tail_data:
                    self.held -= 1
            try:
                await self.handle(frame, port)
                count += 1
                if count % _FAIRNESS == 0:
                    await asyncio.sleep(0)
            except asyncio.CancelledError:
                if not self.interrupted():
                    raise
            except Exception as exc:  # supervision boundary
                self.session.node_failed(self, exc, "handle")

    def interrupted(self) -> bool:
        """True when the CancelledError being handled came from an interrupt (see `flush`); the
        cancellation is then absorbed and the lane goes on with the next frame."""
        if not self.interrupt_pending:
            return False
        self.interrupt_pending = False
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return True

    def flush(self) -> deque[tuple[Edge, Frame]] | None:
        """An interrupt: discard queued data frames (control frames stay), and cancel a suspended
        call that is handling a data frame. Returns the discarded frames' container, so that the
        caller can free them after the interrupt has been delivered rather than before."""
        self.epoch += 1
        if self.tail is not None and self.tail_data and not self.interrupt_pending:
            self.interrupt_pending = True
            if self.tail_running:  # else the tail cancels the call itself when it first runs
                self.tail.cancel()
        inbox = self.inbox
        if inbox:
            # Swap the deque out whole: O(1) in the usual case of an inbox of data frames only.
            self.inbox = None
            if self.held:
                self.inbox = deque(entry for entry in inbox if entry[1].lane is not _DATA)
            for edge in self.incoming:
                edge.queued = 0
            for edge, _frame in self.inbox or ():
                edge.queued += 1
        for edge in self.incoming:
            if edge.waiters:
                edge.wake(everyone=True)  # blocked producers re-check and drop stale data
        return inbox

    def close(self) -> None:
        """Stop accepting frames and forget queued ones; blocked producers give up."""
        self.stopped = self.busy = self.sys_busy = True
        self.held = 0
        if self.inbox:
            for edge, _frame in self.inbox:
                edge.queued -= 1
            self.inbox.clear()
        if self.urgent:
            self.urgent.clear()
        for edge in self.incoming:
            edge.wake(everyone=True)


@types.coroutine
def resume(coro: Coroutine[Any, Any, None], step: Any) -> Generator[Any, Any, None]:
    """Continue, inside a task, a coroutine that was started by hand and suspended on `step`:
    what `yield from` does, for a coroutine whose first step has already run."""
    while True:
        try:
            sent = yield step
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:
            try:
                step = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                step = coro.send(sent)
            except StopIteration:
                return


class NodeContext:
    """The concrete `Context` of one node in one session (see `flowspec.runtime.node.Context`)."""

    __slots__ = ("_node_id", "_session", "_spec", "_slot", "_out", "_tools", "_tool_specs")

    def __init__(self, node_id: str, spec: NodeSpec, session: Session, slot: Slot) -> None:
        self._node_id = node_id
        self._spec = spec
        self._session = session
        self._slot = slot
        self._out: Mapping[str, tuple[Edge, ...]] = {}
        self._tools: tuple[str, ...] = ()
        self._tool_specs: Mapping[str, ToolNodeSpec] = {}

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def session_id(self) -> str:
        return self._session.id

    @property
    def spec(self) -> NodeSpec:
        return self._spec

    @property
    def bus(self) -> Bus:
        return self._session.bus

    @property
    def tools(self) -> tuple[str, ...]:
        return self._tools

    @property
    def tool_specs(self) -> Mapping[str, ToolNodeSpec]:
        return self._tool_specs

    async def emit(self, frame: Frame, port: str = DEFAULT_OUT) -> None:
        edges = self._out.get(port)
        if edges is None:
            return
        if frame.lane is _SYSTEM:
            self._session.emit_system(self._slot, frame, edges)
            return
        for edge in edges:
            target = edge.target
            if target.busy:
                if not edge.offer(frame):
                    await edge.put(frame)
            else:
                target.busy = True
                target.run(edge.port, frame)

    def publish(self, event: BusEvent) -> None:
        self._session.bus.publish(event)

    def spawn(
        self, coro: Coroutine[Any, Any, None], *, name: str | None = None,
        essential: bool = False,
    ) -> asyncio.Task[None]:
        return self._session.spawn(self._slot, coro, name=name, essential=essential)

    async def call_tool(self, call: FunctionCallFrame) -> None:
        await self._session.tools.call(self._node_id, call)

    async def return_result(self, result: FunctionResultFrame) -> None:
        await self._session.tools.answer(result)


async def deliver(edge: Edge, frame: Frame) -> None:
    """Deliver one ordered frame along one edge: what `emit` does per edge."""
    target = edge.target
    if target.busy:
        if not edge.offer(frame):
            await edge.put(frame)
    else:
        target.busy = True
        target.run(edge.port, frame)
