"""Tool-call routing between model nodes and tool nodes.

The contract, for model nodes and tool nodes alike:

1. A model node calls `await ctx.call_tool(FunctionCallFrame(call_id=..., name=..., ...))`.
2. The router delivers the frame to the tool node the spec links under that name (the function
   name the model sees: the tool node's `name:`, or its id), on its `tool_call` port, as an
   ordered control frame.
3. The tool node answers with `await ctx.return_result(FunctionResultFrame(call_id=..., ...))`.
4. The router delivers the result to the model node that made the call, on its `tool_result` port.

An unknown tool name is answered at once with an error result, so the conversation goes on. A
result for a call nobody is waiting for (the session was interrupted and the model moved on) is
dropped. Calls and results are control frames: an interrupt never discards them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from flowspec.frames import FunctionCallFrame, FunctionResultFrame
from flowspec.runtime.dispatch import deliver
from flowspec.runtime.edges import Edge
from flowspec.runtime.node import TOOL_CALL_PORT, TOOL_RESULT_PORT
from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.tools import ToolNodeSpec

if TYPE_CHECKING:
    from flowspec.runtime.dispatch import Slot

log = logging.getLogger("flowspec.runtime.tools")

TOOL_EDGE_CAPACITY = 64


class ToolRouter:
    """The per-session tool links: call edges model -> tool, result edges back, pending calls."""

    def __init__(self, links: Mapping[str, tuple[str, ...]], slots: Mapping[str, Slot],
                 specs: Mapping[str, NodeSpec] | None = None) -> None:
        self._calls: dict[str, dict[str, Edge]] = {}
        self._results: dict[str, Edge] = {}
        self._pending: dict[str, str] = {}  # call id -> calling model node id
        self._slots = slots
        for model_id, tool_ids in links.items():
            routes = self._calls[model_id] = {}
            for tool_id in tool_ids:
                tool = slots[tool_id]
                edge = Edge(f"{model_id}->{tool_id}.{TOOL_CALL_PORT}", tool, TOOL_CALL_PORT,
                            TOOL_EDGE_CAPACITY, False)
                tool.incoming.append(edge)
                spec = (specs or {}).get(tool_id)
                name = spec.function_name(tool_id) if isinstance(spec, ToolNodeSpec) else tool_id
                routes[name] = edge
            self._result_edge(model_id)

    def names(self, model_id: str) -> tuple[str, ...]:
        return tuple(self._calls.get(model_id, ()))

    def call_edges(self, model_id: str) -> tuple[Edge, ...]:
        return tuple(self._calls.get(model_id, {}).values())

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def call(self, model_id: str, call: FunctionCallFrame) -> None:
        edge = self._calls.get(model_id, {}).get(call.name)
        if edge is None:
            # Neutral on purpose: the model already has the list of tools it may call.
            message = f"The function {call.name!r} is not available."
            log.debug("no tool %r for node %r (it can call: %s)", call.name, model_id,
                      ", ".join(self._calls.get(model_id, ())) or "none")
            await self._reply(model_id, FunctionResultFrame(
                call_id=call.call_id, name=call.name, is_error=True,
                result=json.dumps({"error": message})))
            return
        self._pending[call.call_id] = model_id
        await deliver(edge, call)

    async def answer(self, result: FunctionResultFrame) -> None:
        model_id = self._pending.pop(result.call_id, None)
        if model_id is None:
            log.debug("dropped result of %s: no call %r is pending", result.name, result.call_id)
            return
        await self._reply(model_id, result)

    async def _reply(self, model_id: str, result: FunctionResultFrame) -> None:
        await deliver(self._results.get(model_id) or self._result_edge(model_id), result)

    def _result_edge(self, model_id: str) -> Edge:
        model = self._slots[model_id]
        edge = Edge(f"tools->{model_id}.{TOOL_RESULT_PORT}", model, TOOL_RESULT_PORT,
                    TOOL_EDGE_CAPACITY, False)
        model.incoming.append(edge)
        self._results[model_id] = edge
        return edge
