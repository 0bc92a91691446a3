"""The node contract: what a node implements, and the context the executor hands it.

A node is any object with `start`, `handle` and `stop`. It is built by a factory (usually its
class) that receives its `Context`; it never owns queues or schedules frame processing itself.

How `handle` is called, which is what makes a hop cost well under a microsecond:

- When the node is idle, the executor runs `handle` inline, in the task of whoever emitted the
  frame. If `handle` finishes without suspending, that is the whole cost of the hop.
- If `handle` suspends (awaits I/O or a timer), the executor moves the rest of that call into a
  task it owns and returns to the emitter at once; while the node is busy, frames for it wait on
  its input edges (bounded, per edge), and the task handles them in order afterwards.
- A frame crossing a long chain of idle nodes would nest one inline call per hop; past a bounded
  depth (`flowspec.runtime.dispatch.MAX_INLINE_DEPTH`) the next node starts its call in such a
  task instead, so a graph of any length delivers every frame.
- System-lane frames (interrupt, error, speech events, ...) have their own lane: they are handled
  even while an ordered `handle` call is suspended, so one `handle` call for a data or control
  frame and one for a system frame may be in progress at the same time.

An interrupt discards the data frames queued towards the nodes downstream of its emitter, and
cancels a suspended `handle` call that is processing a data frame there (the audio being played
is stale): the node sees `CancelledError` at its `await`, cleans up, and its lane goes on with the
next frame. Calls for control and system frames are never cancelled by an interrupt.

Because the first step of `handle` runs in the emitter's task, enter task-bound context managers
(`asyncio.timeout`, `asyncio.TaskGroup`) only after the first `await` that suspends, or do the work
in a task started with `Context.spawn`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from flowspec.frames import Frame, FunctionCallFrame, FunctionResultFrame
from flowspec.runtime.bus import Bus, BusEvent
from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.tools import ToolNodeSpec

if TYPE_CHECKING:
    from flowspec.conversation.call import Call

DEFAULT_OUT = "out"
DEFAULT_IN = "in"
TOOL_CALL_PORT = "tool_call"
"""The port on which a tool node receives `FunctionCallFrame`s."""
TOOL_RESULT_PORT = "tool_result"
"""The port on which a model node receives `FunctionResultFrame`s for the calls it made."""


class Context(Protocol):
    """What a node may ask of the executor. One context per node per session."""

    @property
    def node_id(self) -> str: ...

    @property
    def session_id(self) -> str: ...

    @property
    def spec(self) -> NodeSpec: ...

    @property
    def bus(self) -> Bus: ...

    @property
    def call(self) -> Call:
        """The session's call: its variables (`await call.ready()` before contacting a
        provider), its conversation, and `call.end(reason)` to hang up."""
        ...

    @property
    def tools(self) -> tuple[str, ...]:
        """Names of the tools this node may call (empty unless it is a model node with tools)."""
        ...

    @property
    def tool_specs(self) -> Mapping[str, ToolNodeSpec]:
        """The specs of the tools this node may call, by the function name the model sees: what
        a model node needs to send tool definitions (`flowspec.nodes.tool_defs`)."""
        ...

    async def emit(self, frame: Frame, port: str = DEFAULT_OUT) -> None:
        """Send `frame` along every edge leaving `port`. Returns once every consumer took it:
        handled it, or queued it on its edge. Waits only when a `block` edge is full."""
        ...

    def publish(self, event: BusEvent) -> None:
        """Publish an out-of-band event on the bus."""
        ...

    def spawn(
        self, coro: Coroutine[Any, Any, None], *, name: str | None = None,
        essential: bool = False,
    ) -> asyncio.Task[None]:
        """Run `coro` (a receive loop, a tool call) in a task the session owns and supervises:
        an exception becomes a node failure; the task is cancelled before the node stops.

        Mark `essential` a task the session cannot live without (a loop receiving from a client
        or a provider): its failure is fatal, so the session is cancelled rather than left
        running deaf."""
        ...

    async def call_tool(self, call: FunctionCallFrame) -> None:
        """Route a model's tool call to the tool node named `call.name`. The answer arrives later
        as a `FunctionResultFrame` on this node's `tool_result` port; an unknown tool answers with
        `is_error=True` at once."""
        ...

    async def return_result(self, result: FunctionResultFrame) -> None:
        """Answer a call received on the `tool_call` port; routed back to the caller by call id."""
        ...


class Node(Protocol):
    """A graph node. `start` runs before any frame arrives; `stop` after the last one."""

    async def start(self) -> None: ...

    async def handle(self, frame: Frame, port: str) -> None: ...

    async def stop(self) -> None: ...


NodeFactory = Callable[[Context], Node]
"""Builds one node instance for one session. A node class taking `(ctx)` is a factory."""


def is_boundary(node: Node) -> bool:
    """A boundary node (a transport) carries independent streams in and out: an interrupt reaches
    it but does not travel on through it back into the graph. Set `boundary = True` on the class."""
    return bool(getattr(node, "boundary", False))
