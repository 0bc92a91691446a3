"""Sessions: one running instance of a compiled graph, for one connection.

A session owns its node instances, its edges, a TaskGroup for every task it runs (the lanes'
tasks of `flowspec.runtime.dispatch`, and the node tasks started with `Context.spawn`), and the
supervision policy: a node that raises produces an `ErrorFrame` on its outputs and a `NodeFailed`
bus event, and the session goes on unless the failure is fatal (during `start`, in a task spawned
as essential, or an exception whose `fatal` attribute is true): a fatal failure cancels the
session. Sessions share nothing but the bus, so one never affects another.

The public surface is the lifecycle (`start`, `end`, `cancel`, the `async with` block, `wait`,
`request_end`, `request_cancel`) and what a caller inspects or drives (`node`, `send`,
`edge_stats`); the underscored methods near the end are the dispatch layer's way back in.

    async with executor.session(graph) as session:   # builds and starts every node
        await session.wait()                          # until a node emits EndFrame/CancelFrame
    # leaving the block drains (end) or, on an exception or CancelFrame, cancels
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid
from collections import deque
from collections.abc import Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from flowspec.conversation.variables import VariableRefused
from flowspec.errors import NodeError, NodeTimeout, UsageError
from flowspec.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptFrame,
    StartFrame,
)
from flowspec.runtime.bus import Bus, FramesDropped, NodeFailed, SessionEnded, SessionStarted
from flowspec.runtime.context import NodeContext
from flowspec.runtime.dispatch import Slot, slots
from flowspec.runtime.edges import Edge
from flowspec.runtime.node import DEFAULT_OUT, Node, is_boundary
from flowspec.runtime.registry import Registry
from flowspec.runtime.tools import ToolRouter
from flowspec.spec.compiled import CompiledGraph, Overflow
from flowspec.spec.models.tools import ToolNodeSpec

if TYPE_CHECKING:
    from flowspec.conversation.call import Call
    from flowspec.conversation.clock import Clock

log = logging.getLogger("flowspec.runtime")

EXECUTOR_PORT = ""
"""The port reported to `handle` for frames the executor sends itself (StartFrame)."""


class State(enum.IntEnum):
    NEW = 0
    RUNNING = 1
    ENDING = 2
    CANCELLING = 3
    CLOSED = 4


class Session:
    def __init__(
        self,
        graph: CompiledGraph,
        *,
        registry: Registry,
        bus: Bus,
        session_id: str | None = None,
        stop_timeout: float = 5.0,
        drain_timeout: float = 30.0,
        clock: Clock | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> None:
        self.id = session_id or uuid.uuid4().hex
        self.graph = graph
        self.bus = bus
        # Imported here: the conversation layer's events are bus events, so it imports the
        # runtime package, which imports this module.
        from flowspec.conversation.call import Call

        self.call: Call = Call(self.id, graph.spec, bus, request_end=self.request_end, clock=clock,
                         preset=variables)
        """The call this session carries: its variables, conversation and why it ended."""
        self.state = State.NEW
        self._registry = registry
        self._stop_timeout = stop_timeout
        self._drain_timeout = drain_timeout
        self._slots = slots(graph.nodes, self)
        self._wire(graph)
        self._tools = ToolRouter(graph.tools, self._slots, graph.nodes)
        self._contexts = {
            node_id: NodeContext(self._slots[node_id], spec, self,
                                 tools=self._tools.names(node_id),
                                 tool_specs=_tool_specs(graph, node_id))
            for node_id, spec in graph.nodes.items()
        }
        self._boundaries = graph.boundaries | ({graph.entry} if graph.entry else set())
        self._order = _start_order(graph)
        self._tg: asyncio.TaskGroup | None = None
        self._tails: set[asyncio.Task[None]] = set()  # the lanes' tasks (see dispatch)
        self._quiet: asyncio.Future[None] | None = None
        self._closing: asyncio.Event | None = None
        self._cancel_requested = False
        self._end_requested = False
        self.close_reason = ""
        self._last_interrupt: Frame | None = None
        self._interrupt_targets: dict[str, tuple[tuple[Slot, str], ...]] = {}

    def _wire(self, graph: CompiledGraph) -> None:
        by_port: dict[str, dict[str, list[Edge]]] = {}
        for compiled in graph.edges:
            target = self._slots[compiled.target.node]
            edge = Edge(f"{compiled.source}->{compiled.target}", target, compiled.target.port,
                        compiled.capacity, compiled.overflow is Overflow.DROP_OLDEST)
            target.incoming.append(edge)
            ports = by_port.setdefault(compiled.source.node, {})
            ports.setdefault(compiled.source.port, []).append(edge)
        for node_id, ports in by_port.items():
            self._slots[node_id].out = {port: tuple(e) for port, e in ports.items()}

    # -- public API --------------------------------------------------------------------------

    async def __aenter__(self) -> Session:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None and not self._cancel_requested:
            try:
                await self.end()
            except BaseException:
                await self.cancel()
                raise
        else:
            await self.cancel()

    def node(self, node_id: str) -> Node:
        """The node instance running as `node_id` in this session."""
        node = self._slot(node_id).node
        if node is None:
            raise UsageError(f"Session {self.id} has not built node {node_id!r} yet.")
        return node

    async def send(self, node_id: str, frame: Frame, port: str = DEFAULT_OUT) -> None:
        """Emit `frame` from `node_id`'s output `port`, as if that node had produced it."""
        self._slot(node_id)
        await self._contexts[node_id].emit(frame, port)

    async def wait(self) -> None:
        """Return once the session has been asked to end or cancel."""
        if self._end_requested or self._cancel_requested:
            return
        if self._closing is None:
            self._closing = asyncio.Event()
        await self._closing.wait()

    def request_end(self, reason: str = "") -> None:
        self._end_requested = True
        self._request(reason)

    def request_cancel(self, reason: str = "") -> None:
        self._cancel_requested = True
        self._request(reason)

    def edge_stats(self) -> dict[str, tuple[int, int]]:
        """`{edge name: (frames queued now, frames dropped so far)}`."""
        return {e.name: (e.queued, e.dropped) for s in self._slots.values() for e in s.incoming}

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Build every node, start them consumers first, then let frames flow.

        Raises NodeError if a node cannot be built or started; the session is then cancelled."""
        if self.state is not State.NEW:
            raise UsageError(f"Session {self.id} was already started.")
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self.state = State.RUNNING
        current = ""
        try:
            for node_id in self._order:
                current = node_id
                factory = self._registry.resolve(self.graph.nodes[node_id].type)
                self._slots[node_id].bind(factory(self._contexts[node_id]))
            if self.graph.entry:
                self.call.playback_reported = bool(getattr(
                    self._slots[self.graph.entry].node, "reports_playback", False))
            for node_id in reversed(self._order):
                current = node_id
                await self.node(node_id).start()
                self._slots[node_id].started()
        except Exception as exc:
            self._node_failed(self._slots[current], exc, "start")
            await self.cancel()
            if isinstance(exc, NodeError):
                raise
            raise NodeError(current, f"failed to start: {exc}") from exc
        for node_id in self._order:
            self._slots[node_id].open()
        self.bus.publish(SessionStarted(session_id=self.id, graph=self.graph.name,
                                        version=self.graph.version))
        start = StartFrame(session_id=self.id)
        for node_id in self._order:
            self._slots[node_id].deliver_system(EXECUTOR_PORT, start)
        entry = self._slots[self.graph.entry].node if self.graph.entry else None
        if not getattr(entry, "reports_caller", False):
            # Nobody will say more about the caller than the values the session was made with.
            with contextlib.suppress(VariableRefused):  # refused: the call is ending already
                self.call.begin({}, transport=self.graph.nodes[self.graph.entry].type
                                if self.graph.entry else "")

    async def end(self) -> None:
        """Drain: stop nodes sources first, each after every frame already sent has been handled
        (its own tasks are cancelled first, so it produces nothing new)."""
        if self.state >= State.ENDING:
            return
        self.state = State.ENDING
        self.call.end(self.close_reason or "ended")  # says why, to webhooks and the client
        try:
            async with asyncio.timeout(self._drain_timeout):
                for node_id in self._order:
                    slot = self._slots[node_id]
                    await _cancel_all(slot.tasks or ())
                    await self._quiesce()
                    slot.close()
                    await self._stop(slot)
        except TimeoutError:
            log.warning("session %s did not drain in %s s; cancelling", self.id,
                        self._drain_timeout)
            self.close_reason = self.close_reason or "drain timed out"
            await self._cancel()
            return
        await self._close(cancelled=False)

    async def cancel(self) -> None:
        """Stop now: queued frames are discarded, running handle calls and tasks cancelled."""
        if self.state >= State.CANCELLING:
            return
        await self._cancel()

    async def _cancel(self) -> None:
        self.state = State.CANCELLING
        self.call.end(self.close_reason or "cancelled")
        for slot in self._slots.values():
            slot.close()
        await _cancel_all([*self._tails, *self._spawned()])
        for node_id in self._order:
            slot = self._slots[node_id]
            await self._stop(slot)
        await self._close(cancelled=True)

    async def _stop(self, slot: Slot) -> None:
        node = slot.node
        if node is None or not slot.stop_due():
            return
        try:
            async with asyncio.timeout(self._stop_timeout):
                await node.stop()
        except TimeoutError:
            self._node_failed(slot, NodeTimeout(slot.node_id, "stop() did not return in "
                                               f"{self._stop_timeout} s"), "stop")
        except Exception as exc:  # supervision boundary
            self._node_failed(slot, exc, "stop")

    async def _close(self, *, cancelled: bool) -> None:
        await _cancel_all([*self._tails, *self._spawned()])  # started during stop()
        self.state = State.CLOSED
        if self._tg is not None:
            tg, self._tg = self._tg, None
            await tg.__aexit__(None, None, None)
        self.bus.publish(SessionEnded(session_id=self.id, cancelled=cancelled,
                                      reason=self.close_reason))
        self._request(self.close_reason)

    async def _quiesce(self) -> None:
        while self._tails:
            self._quiet = asyncio.get_running_loop().create_future()
            await self._quiet

    def _request(self, reason: str) -> None:
        if reason and not self.close_reason:
            self.close_reason = reason
        if self._closing is not None:
            self._closing.set()

    # -- called by the dispatch layer (flowspec.runtime.dispatch, .context, .edges) ------------

    def _start_tail(self, task_coro: Coroutine[Any, Any, None], node_id: str,
                    call: Coroutine[Any, Any, None] | None) -> None:
        """Run a lane's task (`Slot`): `call` is the suspended handle call it finishes, if any.
        Once the session is closed nothing may run any more: both are closed instead."""
        if self._tg is None:
            task_coro.close()
            if call is not None:
                call.close()
            return
        task = self._tg.create_task(task_coro, name=f"flowspec:{node_id}")
        self._tails.add(task)
        task.add_done_callback(self._tail_done)
        if call is not None:
            # A task cancelled before its first step never runs its coroutine: close it explicitly.
            task.add_done_callback(lambda _task: call.close())

    def _tail_done(self, task: asyncio.Task[None]) -> None:
        self._tails.discard(task)
        if not self._tails and self._quiet is not None and not self._quiet.done():
            self._quiet.set_result(None)

    def _spawn(self, slot: Slot, coro: Coroutine[Any, Any, None], *,
               name: str | None = None, essential: bool = False) -> asyncio.Task[None]:
        if self._tg is None or self.state >= State.CANCELLING:
            coro.close()
            raise UsageError(f"Session {self.id} is not running; node {slot.node_id!r} "
                             "cannot start a task.")
        task = self._tg.create_task(self._supervise(slot, coro, essential),
                                    name=name or f"flowspec:{slot.node_id}:task")
        if slot.tasks is None:
            slot.tasks = set()
        slot.tasks.add(task)
        task.add_done_callback(slot.tasks.discard)
        task.add_done_callback(lambda _task: coro.close())
        return task

    async def _supervise(self, slot: Slot, coro: Coroutine[Any, Any, None],
                         essential: bool) -> None:
        try:
            await coro
        except Exception as exc:  # supervision boundary
            self._node_failed(slot, exc, "task", fatal=essential)

    def _node_failed(self, slot: Slot, exc: BaseException, during: str, *,
                     fatal: bool = False) -> None:
        fatal = fatal or during == "start" or bool(getattr(exc, "fatal", False))
        log.log(logging.ERROR if fatal else logging.WARNING, "session %s: node %r failed in %s: "
                "%r%s", self.id, slot.node_id, during, exc,
                "; the session ends" if fatal else "", exc_info=exc)
        self.bus.publish(NodeFailed(session_id=self.id, node_id=slot.node_id, error=exc,
                                    fatal=fatal, during=during))
        if self.state is State.RUNNING:
            frame = ErrorFrame(node_id=slot.node_id, message=str(exc) or type(exc).__name__,
                               fatal=fatal, code=type(exc).__name__)
            for edges in slot.out.values():
                for edge in edges:
                    edge.target.deliver_system(edge.port, frame)
        if fatal:
            self.request_cancel(f"node {slot.node_id!r} failed: {exc}")

    def _emit_system(self, source: Slot, frame: Frame, edges: Iterable[Edge]) -> None:
        kind = type(frame)
        if kind is InterruptFrame:
            self._interrupt(source, frame)
        elif kind is EndFrame:
            self.request_end(getattr(frame, "reason", ""))
        elif kind is CancelFrame:
            self.request_cancel(getattr(frame, "reason", ""))
        elif kind is not StartFrame:  # every node already got it from the executor
            for edge in edges:
                edge.target.deliver_system(edge.port, frame)

    def _interrupt(self, source: Slot, frame: Frame) -> None:
        """Flush queued data towards every node downstream of `source`, then deliver `frame` to
        each of them on its system lane. A node re-emitting the same frame changes nothing."""
        if frame is self._last_interrupt:
            return
        self._last_interrupt = frame
        targets = self._interrupt_targets.get(source.node_id)
        if targets is None:
            targets = self._interrupt_targets[source.node_id] = self._downstream(source.node_id)
        discarded = [slot.flush() for slot, _port in targets]
        for slot, port in targets:
            slot.deliver_system(port, frame)
        del discarded  # freed only now, once the interrupt has reached every node

    def _frames_dropped(self, edge: Edge) -> None:
        self.bus.publish(FramesDropped(session_id=self.id, edge=edge.name, count=1))

    # -- helpers -----------------------------------------------------------------------------

    def _slot(self, node_id: str) -> Slot:
        slot = self._slots.get(node_id)
        if slot is None:
            raise UsageError(f"Graph {self.graph.name!r} has no node {node_id!r}.")
        return slot

    def _spawned(self) -> list[asyncio.Task[None]]:
        return [task for slot in self._slots.values() for task in (slot.tasks or ())]

    def _downstream(self, source_id: str) -> tuple[tuple[Slot, str], ...]:
        """Nodes reached from `source_id` along edges and tool calls, breadth first, not passing
        through boundary nodes (transports: their input and output are unrelated streams)."""
        seen = {source_id}
        found: list[tuple[Slot, str]] = []
        queue = deque([source_id])
        while queue:
            node_id = queue.popleft()
            if node_id != source_id and self._is_boundary(node_id):
                continue
            edges = [e for es in self._slots[node_id].out.values() for e in es]
            edges.extend(self._tools.call_edges(node_id))
            for edge in edges:
                target = edge.target.node_id
                if target not in seen:
                    seen.add(target)
                    found.append((edge.target, edge.port))
                    queue.append(target)
        return tuple(found)

    def _is_boundary(self, node_id: str) -> bool:
        if node_id in self._boundaries:
            return True
        node = self._slots[node_id].node
        return node is not None and is_boundary(node)


def _start_order(graph: CompiledGraph) -> list[str]:
    """Sources first: the entry node and nodes without inputs, then breadth first along edges;
    nodes on no edge (tools, and nodes reading the bus such as webhooks) last, in spec order,
    so they are stopped after every node that may still call or report something."""
    has_input = {e.target.node for e in graph.edges}
    has_output = {e.source.node for e in graph.edges}
    roots = [n for n in graph.nodes
             if n == graph.entry or (n not in has_input and n in has_output)]
    roots.sort(key=lambda n: n != graph.entry)
    order: list[str] = []
    seen: set[str] = set()
    queue = deque(roots)
    while queue:
        node_id = queue.popleft()
        if node_id in seen:
            continue
        seen.add(node_id)
        order.append(node_id)
        queue.extend(e.target.node for e in graph.edges_from(node_id))
    order.extend(n for n in graph.nodes if n not in seen)
    return order


async def _cancel_all(tasks: Iterable[asyncio.Task[None]]) -> None:
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)



def _tool_specs(graph: CompiledGraph, model_id: str) -> dict[str, ToolNodeSpec]:
    """The specs of the tools `model_id` may call, by the function name the model sees."""
    specs = {tool_id: graph.nodes[tool_id] for tool_id in graph.tools.get(model_id, ())}
    return {spec.function_name(tool_id): spec
            for tool_id, spec in specs.items() if isinstance(spec, ToolNodeSpec)}
