"""The hot path: how a frame gets from `emit` into the consumer's `handle`.

An idle consumer is called inline, in the emitter's task: one coroutine step and no queue, no task
switch. Only when `handle` suspends does the rest of that call move into a task the session owns
(the lane's task), and only while a consumer is busy do frames for it wait in its inbox. Each
node has two lanes of execution: ordered (data and control frames, in order) and system (frames
that overtake, handled even while an ordered call is suspended).

Inline calls nest: a frame crossing a chain of idle nodes is one Python call stack, a few frames
per hop. In a graph large enough to nest past `MAX_INLINE_DEPTH` calls (`DeepSlot`), the next
node's lane then takes the frame into its own task instead, where the chain goes on from a fresh
stack; so a chain of any length delivers every frame, and a small graph pays nothing for it.

Every change of a lane's state happens in this module: `Slot.deliver` and `Slot.deliver_system`
are the only ways in, `Edge` only queues and accounts.
"""

from __future__ import annotations

import asyncio
import enum
import types
from collections import deque
from collections.abc import Coroutine, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flowspec.frames import Frame, Lane
from flowspec.runtime.edges import Edge
from flowspec.runtime.node import Node

if TYPE_CHECKING:
    from flowspec.runtime.session import Session

_DATA = Lane.DATA
_FAIRNESS = 64  # frames a lane's task handles in a row before letting other tasks run
MAX_INLINE_DEPTH = 64
"""Inline `handle` calls one session nests on a stack before the next one runs in a task: deep
enough that no realistic graph leaves the inline path, shallow enough that even a node with a
deep call chain per hop stays far below the interpreter's recursion limit."""


class LaneState(enum.Enum):
    """Whether a lane takes the next frame now. Both lanes of a node open and close together."""

    WAITING = "waiting"  # the node has not opened yet: frames wait in its queues
    IDLE = "idle"  # the next frame is handled at once, inline in the emitter's task
    BUSY = "busy"  # a call is in progress (inline, or in the lane's task): frames queue
    CLOSED = "closed"  # the node no longer takes frames: they are dropped


class Phase(enum.Enum):
    """The node's own lifecycle, as the session drives it."""

    BUILT = "built"  # built; start() has not returned
    STARTED = "started"  # start() returned: stop() is due
    STOPPED = "stopped"  # stop() was called


class Call(enum.Enum):
    """What the ordered lane's task is handling, as an interrupt sees it."""

    CONTROL = "control"  # a control frame: interrupts leave it alone
    DATA = "data"  # a data frame: an interrupt cancels it (it is stale)
    INTERRUPTED = "interrupted"  # an interrupt cancelled it; its CancelledError is absorbed


_WAITING, _IDLE, _BUSY, _CLOSED = LaneState


class InlineDepth:
    """How many inline calls of one session are on the stack now. Every increment is undone
    before the call returns, so between two task steps it is always 0. (A module global would
    do as well, but sessions may run on event loops in several threads.)"""

    __slots__ = ("level",)

    def __init__(self) -> None:
        self.level = 0


class Tail:
    """The ordered lane's task: it finishes a suspended call, then the frames queued behind it."""

    __slots__ = ("call", "task")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.task: asyncio.Task[None] | None = None  # set once the task runs


class Slot:
    """The executor's side of one node in one session: its lanes, queues, edges and tasks."""

    __slots__ = ("node_id", "node", "handle", "session", "phase", "ordered", "system", "inbox",
                 "urgent", "held", "epoch", "incoming", "out", "tasks", "tail")

    def __init__(self, node_id: str, session: Session) -> None:
        self.node_id = node_id
        self.session = session
        self.node: Node | None = None
        self.phase = Phase.BUILT
        self.ordered = self.system = _WAITING
        # Created on first use: most inboxes of most sessions stay empty.
        self.inbox: deque[tuple[Edge, Frame]] | None = None
        self.urgent: deque[tuple[str, Frame]] | None = None
        self.held = 0  # control frames in the inbox: an interrupt keeps those
        self.epoch = 0  # bumped by each interrupt that flushes this node
        self.incoming: list[Edge] = []
        self.out: Mapping[str, tuple[Edge, ...]] = {}
        self.tasks: set[asyncio.Task[None]] | None = None  # spawned by the node
        self.tail: Tail | None = None

    def __repr__(self) -> str:
        return f"Slot({self.node_id!r}, {self.ordered.value}/{self.system.value})"

    def bind(self, node: Node) -> None:
        self.node = node
        self.handle = node.handle

    def started(self) -> None:
        """The node's start() returned: its stop() is due."""
        self.phase = Phase.STARTED

    def stop_due(self) -> bool:
        """True once, if the node's stop() is to be called now (its start() returned)."""
        if self.phase is not Phase.STARTED:
            return False
        self.phase = Phase.STOPPED
        return True

    # -- the ways in ---------------------------------------------------------------------------

    def deliver(self, edge: Edge, frame: Frame) -> bool:
        """Hand an ordered frame arriving on `edge` to this node: handled now, inline, when the
        lane is idle (and then whatever queued meanwhile), else queued on `edge`. False when the
        edge is full: the caller waits for room with `edge.put`."""
        if self.ordered is not _IDLE:
            return self.ordered is _CLOSED or edge.offer(frame)  # closed: nobody reads it again
        self.ordered = _BUSY
        handle = self.handle
        port = edge.port
        while True:
            coro = handle(frame, port)
            try:
                step = coro.send(None)
            except StopIteration:
                pass
            except Exception as exc:  # supervision boundary: the node failed, the session goes on
                self.session._node_failed(self, exc, "handle")
            else:
                self._start_task(coro, step, Tail(Call.DATA if frame.lane is _DATA
                                                  else Call.CONTROL))
                return True
            if self.ordered is not _BUSY:
                return True  # closed meanwhile
            inbox = self.inbox
            if not inbox:
                self.ordered = _IDLE
                return True
            edge, frame = inbox.popleft()
            port = edge.take()
            if frame.lane is not _DATA:
                self.held -= 1

    def deliver_system(self, port: str, frame: Frame) -> None:
        """`deliver` for the system lane, which has no capacity bound: frames never wait."""
        if self.system is not _IDLE:
            if self.system is not _CLOSED:
                if self.urgent is None:
                    self.urgent = deque()
                self.urgent.append((port, frame))
            return
        self.system = _BUSY
        handle = self.handle
        while True:
            coro = handle(frame, port)
            try:
                step = coro.send(None)
            except StopIteration:
                pass
            except Exception as exc:  # supervision boundary
                self.session._node_failed(self, exc, "handle")
            else:
                self._start_task(coro, step, None)
                return
            if self.system is not _BUSY:
                return
            urgent = self.urgent
            if not urgent:
                self.system = _IDLE
                return
            port, frame = urgent.popleft()

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        """Start accepting frames, and handle any that arrived while the node was starting."""
        self.ordered = self.system = _IDLE
        if self.urgent:
            self.deliver_system(*self.urgent.popleft())
        if self.inbox and self.ordered is _IDLE:
            edge, frame = self.inbox.popleft()
            edge.take()
            if frame.lane is not _DATA:
                self.held -= 1
            self.deliver(edge, frame)  # inline: the session opens its nodes from a bare stack

    def flush(self) -> deque[tuple[Edge, Frame]] | None:
        """An interrupt: discard queued data frames (control frames stay), and cancel a suspended
        call that is handling a data frame. Returns the discarded frames' container, so that the
        caller can free them after the interrupt has been delivered rather than before."""
        self.epoch += 1
        tail = self.tail
        if tail is not None and tail.call is Call.DATA:
            tail.call = Call.INTERRUPTED
            if tail.task is not None:  # else the task cancels the call itself when it first runs
                tail.task.cancel()
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
        self.ordered = self.system = _CLOSED
        self.held = 0
        if self.inbox:
            for edge, _frame in self.inbox:
                edge.queued -= 1
            self.inbox.clear()
        if self.urgent:
            self.urgent.clear()
        for edge in self.incoming:
            edge.wake(everyone=True)

    # -- the lanes' tasks ----------------------------------------------------------------------

    def _start_task(self, coro: Coroutine[Any, Any, None] | None, step: Any,
                    tail: Tail | None) -> None:
        """Go on in a task of the session: finish `coro` (a call suspended on `step`) if any,
        then handle what queued on the lane. `tail` is None for the system lane."""
        if tail is not None:
            self.tail = tail
        self.session._start_tail(self._run_task(coro, step, tail), self.node_id, coro)

    async def _run_task(self, coro: Coroutine[Any, Any, None] | None, step: Any,
                        tail: Tail | None) -> None:
        if tail is not None:
            tail.task = asyncio.current_task()
        try:
            if coro is not None:
                await self._finish(coro, step, tail)
            await self._drain(tail)
        finally:
            if tail is not None and self.tail is tail:
                self.tail = None

    async def _finish(self, coro: Coroutine[Any, Any, None], step: Any,
                      tail: Tail | None) -> None:
        try:
            if tail is not None and tail.call is Call.INTERRUPTED:
                # Interrupted before this task first ran: cancel the call where it waits.
                tail.call = Call.DATA
                try:
                    step = coro.throw(asyncio.CancelledError())
                except (StopIteration, asyncio.CancelledError):
                    return
            await resume(coro, step)
        except asyncio.CancelledError:
            if not self._interrupted(tail):
                raise
        except Exception as exc:  # supervision boundary
            self.session._node_failed(self, exc, "handle")

    async def _drain(self, tail: Tail | None) -> None:
        """Handle what queued on one lane (the ordered one when `tail` is given) with ordinary
        awaits, then mark the lane idle."""
        count = 0
        while True:
            if tail is None:
                if self.system is not _BUSY:
                    return
                if not self.urgent:
                    self.system = _IDLE
                    return
                port, frame = self.urgent.popleft()
            else:
                if self.ordered is not _BUSY:
                    return
                if not self.inbox:
                    self.ordered = _IDLE
                    return
                edge, frame = self.inbox.popleft()
                port = edge.take()
                if frame.lane is _DATA:
                    tail.call = Call.DATA
                else:
                    tail.call = Call.CONTROL
                    self.held -= 1
            try:
                await self.handle(frame, port)
                count += 1
                if count % _FAIRNESS == 0:
                    await asyncio.sleep(0)
            except asyncio.CancelledError:
                if not self._interrupted(tail):
                    raise
            except Exception as exc:  # supervision boundary
                self.session._node_failed(self, exc, "handle")

    def _interrupted(self, tail: Tail | None) -> bool:
        """True when the CancelledError being handled came from an interrupt (see `flush`); the
        cancellation is then absorbed and the lane goes on with the next frame."""
        if tail is None or tail.call is not Call.INTERRUPTED:
            return False
        tail.call = Call.DATA
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        return True


class DeepSlot(Slot):
    """A slot of a session whose graph is large enough for inline calls to nest past
    `MAX_INLINE_DEPTH`: it counts them, and past the bound an idle lane takes the frame into its
    own task (a fresh stack) instead of calling `handle` inline."""

    __slots__ = ("depth",)

    def __init__(self, node_id: str, session: Session, depth: InlineDepth) -> None:
        super().__init__(node_id, session)
        self.depth = depth

    def deliver(self, edge: Edge, frame: Frame) -> bool:
        depth = self.depth
        level = depth.level
        if level >= MAX_INLINE_DEPTH and self.ordered is _IDLE:
            self.ordered = _BUSY
            edge.offer(frame)  # never full: an idle lane has an empty inbox
            self._start_task(None, None, Tail(Call.CONTROL))
            return True
        depth.level = level + 1
        try:
            return super().deliver(edge, frame)
        finally:
            depth.level = level

    def deliver_system(self, port: str, frame: Frame) -> None:
        depth = self.depth
        level = depth.level
        if level >= MAX_INLINE_DEPTH and self.system is _IDLE:
            self.system = _BUSY
            if self.urgent is None:
                self.urgent = deque()
            self.urgent.append((port, frame))
            self._start_task(None, None, None)
            return
        depth.level = level + 1
        try:
            super().deliver_system(port, frame)
        finally:
            depth.level = level


def slots(node_ids: Iterable[str], session: Session) -> dict[str, Slot]:
    """The slots of one session. A lane that is on the stack is busy and takes no inline call,
    so a stack holds at most two inline calls per node (one per lane): only a graph with more
    than `MAX_INLINE_DEPTH / 2` nodes can nest past the bound, and only its slots count. Most
    graphs are small, and their hops skip the counting."""
    ids = list(node_ids)
    if 2 * len(ids) <= MAX_INLINE_DEPTH:
        return {node_id: Slot(node_id, session) for node_id in ids}
    depth = InlineDepth()
    return {node_id: DeepSlot(node_id, session, depth) for node_id in ids}


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


async def deliver(edge: Edge, frame: Frame) -> None:
    """Deliver one ordered frame along one edge, waiting for room if it is full: what
    `Context.emit` does per edge."""
    if not edge.target.deliver(edge, frame):
        await edge.put(frame)
