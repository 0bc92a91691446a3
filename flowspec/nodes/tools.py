"""Tool nodes: `tool.python` (a Python function) and `tool.http` (an HTTP endpoint).

What a model node does with them (the executor routes by the function name the model sees):

1. Calls of one model turn: publish `FunctionCallsStarted(session_id, node_id, calls=((call_id,
   name), ...))` on the bus, then `await ctx.call_tool(FunctionCallFrame(call_id=..., name=...,
   arguments=<JSON text as the model sent it>))` for each. Calling never waits for the tool:
   calls of one turn run concurrently.
2. Each call is answered once, on the model's `tool_result` port, with a `FunctionResultFrame`
   (`call_id`, `name`, `result` text ready to send as the `function_call_output`, never to be
   encoded again). A failure still answers: `is_error=True` and `result` is
   `{"error": "<a sentence for the model>"}`, for invalid arguments (what to fix, no call made),
   a timeout (`timeout_s`), an exception (a neutral sentence), an HTTP error status, or an
   unknown tool name (answered by the router at once). "Returned together" is the model node's
   part: it sends the outputs and one `response.create` after the last answer of the turn.
3. On `InterruptFrame` (it reaches the tools of an interrupted model), calls of a tool with
   `cancel_on_interruption: true` are cancelled and answered with `is_error=True,
   cancelled=True`: the model node may record that output (so the call item is not left without
   one) but should not ask for a new response because of it, or may drop it. Calls of a tool with
   `cancel_on_interruption: false` run on and answer normally.
4. Each answer is also published as `FunctionCallEnded` (`ok`, `error`, `detail` with the
   traceback or HTTP excerpt for logs, `cancelled`, `elapsed_ms`).

A `tool.python` handler may ask for a `ToolContext` (a parameter annotated with it, or named
`context`). Its return value is the result: a `str` as is, anything else JSON-encoded once.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flowspec.errors import NodeError, UsageError
from flowspec.frames import Frame, FunctionCallFrame
from flowspec.nodes.tool_calls import UNAVAILABLE, Arguments, ToolCallFailed, ToolCalls
from flowspec.nodes.tool_http import HttpToolNode
from flowspec.runtime.bus import Bus, NodeFailed
from flowspec.runtime.node import Context
from flowspec.spec.models.tools import PythonToolSpec
from flowspec.spec.rules import handler_problem

__all__ = ["HttpToolNode", "PythonToolNode", "ToolContext"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolContext:
    """What a `tool.python` handler may ask for: the session and call it runs for, and the bus
    (to publish its own events)."""

    session_id: str
    node_id: str
    call_id: str
    bus: Bus


@dataclass(frozen=True, slots=True)
class _Handler:
    function: Callable[..., Any]
    signature: inspect.Signature
    is_async: bool
    context_parameter: str | None

    @classmethod
    def load(cls, path: str) -> _Handler:
        module_name, _, attributes = path.partition(":")
        target: Any = importlib.import_module(module_name)
        for part in attributes.split("."):
            target = getattr(target, part)
        try:
            signature = inspect.signature(target, eval_str=True)
        except (NameError, AttributeError, SyntaxError, TypeError):
            # An annotation that cannot be evaluated: fall back to its text.
            signature = inspect.signature(target)
        return cls(target, signature, inspect.iscoroutinefunction(target),
                   _context_parameter(signature))


def _context_parameter(signature: inspect.Signature) -> str | None:
    for name, parameter in signature.parameters.items():
        annotation = parameter.annotation
        if annotation is ToolContext or (
                isinstance(annotation, str) and annotation.rpartition(".")[2] == "ToolContext"):
            return name
    return "context" if "context" in signature.parameters else None


class PythonToolNode:
    """`tool.python`: calls `handler` (imported once, at start) with the validated arguments.

    Sync functions run in a worker thread, coroutine functions are awaited. A handler that
    cannot be imported at run time (it could at validate time) is reported on the bus as a
    non-fatal `NodeError`, and every call is answered with an error result."""

    def __init__(self, ctx: Context) -> None:
        if not isinstance(ctx.spec, PythonToolSpec):
            raise UsageError(f"Node {ctx.node_id!r} needs a tool.python spec, not {ctx.spec!r}.")
        self.ctx = ctx
        self.calls = ToolCalls(ctx, self._invoke)
        self._handler: _Handler | None = None
        self._problem = ""

    async def start(self) -> None:
        spec = self.ctx.spec
        assert isinstance(spec, PythonToolSpec)
        problem = handler_problem(spec.handler, imports=True)
        if problem is None:
            try:
                self._handler = _Handler.load(spec.handler)
            except (TypeError, ValueError) as exc:  # a callable inspect cannot describe
                problem = f"{spec.handler!r} has no usable signature: {exc}"
        if problem is not None:
            self._problem = problem
            error = NodeError(self.ctx.node_id, f"handler {spec.handler!r} cannot be used: "
                              f"{problem}; its calls are answered with an error.")
            self.ctx.publish(NodeFailed(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                                        error=error, fatal=False, during="start"))

    async def handle(self, frame: Frame, port: str) -> None:
        self.calls.handle(frame)

    async def stop(self) -> None:
        return None

    async def _invoke(self, arguments: Arguments, call: FunctionCallFrame) -> str:
        handler = self._handler
        if handler is None:
            raise ToolCallFailed(UNAVAILABLE, self._problem)
        kwargs: dict[str, Any] = dict(arguments)
        if handler.context_parameter is not None:
            kwargs[handler.context_parameter] = ToolContext(
                session_id=self.ctx.session_id, node_id=self.ctx.node_id, call_id=call.call_id,
                bus=self.ctx.bus)
        try:
            handler.signature.bind(**kwargs)
        except TypeError as exc:  # the schema let through what the function cannot take
            raise ToolCallFailed(f"The arguments do not fit the tool: {exc}.",
                                 f"arguments do not bind: {exc}") from exc
        if handler.is_async:
            value = await handler.function(**kwargs)
        else:
            # A thread cannot be stopped: on timeout or interruption the model is answered at
            # once, while the function runs on to its end and its return value is discarded.
            value = await asyncio.to_thread(handler.function, **kwargs)
            if inspect.isawaitable(value):  # an object with an async __call__, say
                value = await value
        return _serialise(value)


def _serialise(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ToolCallFailed("The tool returned a result that cannot be sent to the model.",
                             f"{type(value).__name__} is not JSON-serialisable: {exc}") from exc
