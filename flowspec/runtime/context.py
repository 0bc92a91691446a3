"""`NodeContext`: the concrete `Context` of one node in one session (see `flowspec.runtime.node`).

A context is built once, with everything it hands out fixed: the node's spec, its output edges
by port and the tools it may call. `emit` is the first step of the hot path; what happens to a
frame after that is `flowspec.runtime.dispatch`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from flowspec.frames import Frame, FunctionCallFrame, FunctionResultFrame, Lane
from flowspec.runtime.bus import Bus, BusEvent
from flowspec.runtime.dispatch import Slot
from flowspec.runtime.node import DEFAULT_OUT
from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.tools import ToolNodeSpec

if TYPE_CHECKING:
    from flowspec.conversation.call import Call
    from flowspec.runtime.session import Session

_SYSTEM = Lane.SYSTEM


class NodeContext:
    """What one node may ask of its session: emit along its edges, publish, spawn, call tools."""

    __slots__ = ("_node_id", "_session", "_spec", "_slot", "_out", "_tools", "_tool_specs")

    def __init__(
        self, slot: Slot, spec: NodeSpec, session: Session, *,
        tools: tuple[str, ...] = (), tool_specs: Mapping[str, ToolNodeSpec] | None = None,
    ) -> None:
        self._node_id = slot.node_id
        self._spec = spec
        self._session = session
        self._slot = slot
        self._out = slot.out
        self._tools = tools
        self._tool_specs: Mapping[str, ToolNodeSpec] = tool_specs or {}

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
    def call(self) -> Call:
        return self._session.call

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
            self._session._emit_system(self._slot, frame, edges)
            return
        for edge in edges:
            if not edge.target.deliver(edge, frame):
                await edge.put(frame)

    def publish(self, event: BusEvent) -> None:
        self._session.bus.publish(event)

    def spawn(
        self, coro: Coroutine[Any, Any, None], *, name: str | None = None,
        essential: bool = False,
    ) -> asyncio.Task[None]:
        return self._session._spawn(self._slot, coro, name=name, essential=essential)

    async def call_tool(self, call: FunctionCallFrame) -> None:
        await self._session._tools.call(self._node_id, call)

    async def return_result(self, result: FunctionResultFrame) -> None:
        await self._session._tools.answer(result)
