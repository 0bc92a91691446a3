"""Running tool calls: argument checks, time limits, cancellation on interruption, answers, events.

`ToolCalls` is what `tool.python` and `tool.http` share. A tool node owns one, passes it every
frame, and supplies only `invoke(arguments, call) -> result text`; the rest of the contract (see
`flowspec.nodes.tools`) lives here. The model never sees a traceback, a header or an exception
message: it gets one neutral sentence, and the bus gets the detail.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jsonschema import Draft7Validator

from flowspec import limits
from flowspec.errors import FlowspecError
from flowspec.frames import Frame, FunctionCallFrame, FunctionResultFrame, InterruptFrame
from flowspec.runtime.bus import FunctionCallEnded
from flowspec.runtime.node import Context
from flowspec.spec.models.tools import ToolNodeSpec

log = logging.getLogger("flowspec.nodes.tools")

Arguments = dict[str, Any]
Invoke = Callable[[Arguments, FunctionCallFrame], Awaitable[str]]
"""What a tool node supplies: run the call with validated arguments, return the result text.
Raise `ToolCallFailed` for a failure the model should hear about in specific words."""

FAILED = "The tool failed and returned no result."
UNAVAILABLE = "The tool is not available right now."
CANCELLED = "The call was cancelled because the user interrupted."
_ERRORS_SHOWN = 3
_MESSAGE_CHARS = 200


class ToolCallFailed(FlowspecError):
    """One call failed in an expected way. `message` is for the model (neutral, no secrets);
    `detail` is for the bus and logs."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


def error_result(message: str) -> str:
    """The result text of a failed call: the same shape as the router's unknown-tool answer."""
    return json.dumps({"error": message}, ensure_ascii=False)


def timed_out(spec: ToolNodeSpec) -> ToolCallFailed:
    return ToolCallFailed(f"The tool did not answer within {spec.timeout_s:g} s.",
                          f"timed out after {spec.timeout_s:g} s")


def parse_arguments(text: str, schema: Mapping[str, Any]) -> Arguments:
    """The model's arguments as a dict, checked against the tool's `parameters`.

    Raises ToolCallFailed with a message that tells the model what to fix (JSON path and
    reason for each problem, at most three)."""
    try:
        value = limits.loads(text) if text.strip() else {}
    except limits.InputTooComplex as exc:
        raise ToolCallFailed(f"The arguments are refused: {exc}. Send a plain JSON object.",
                             "arguments beyond a bound") from exc
    except json.JSONDecodeError as exc:
        raise ToolCallFailed(
            f"The arguments are not valid JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno}). Send a JSON object.", "invalid JSON arguments") from exc
    if not isinstance(value, dict):
        raise ToolCallFailed("The arguments must be a JSON object.", "arguments not an object")
    problems = sorted(_validator(json.dumps(schema, sort_keys=True)).iter_errors(value),
                      key=lambda error: error.json_path)
    if problems:
        shown = "; ".join(f"{p.json_path}: {_clip(p.message)}" for p in problems[:_ERRORS_SHOWN])
        more = len(problems) - _ERRORS_SHOWN
        tail = f" (and {more} more)" if more > 0 else ""
        raise ToolCallFailed(
            f"The arguments do not match the tool's parameters: {shown}{tail}. "
            "Correct them and call again.", f"{len(problems)} argument error(s)")
    return value


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Draft7Validator:
    # Keyed by the schema's text, so sessions share validators and an edited schema gets its own.
    return Draft7Validator(json.loads(schema_text))


def _clip(message: str) -> str:
    # jsonschema quotes the offending value; a long one would flood the model's context.
    return message if len(message) <= _MESSAGE_CHARS else message[:_MESSAGE_CHARS] + "..."


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: str
    error: str = ""
    detail: str = ""
    cancelled: bool = False


_CANCELLED = _Outcome(error_result(CANCELLED), "cancelled by an interruption", cancelled=True)


@dataclass(slots=True, eq=False)
class _Call:
    frame: FunctionCallFrame
    task: asyncio.Task[None] | None = None
    started: bool = False
    interrupted: bool = False


class ToolCalls:
    """The calls one tool node is running, each in a task the session owns.

    Every call gets exactly one `FunctionResultFrame` back, unless the session stops first, and
    one `FunctionCallEnded` on the bus. Cancellation-safe: the session cancelling the tasks (on
    end) drops their answers, since nobody waits for them any more."""

    def __init__(self, ctx: Context, invoke: Invoke) -> None:
        self._ctx = ctx
        self._invoke = invoke
        self._running: dict[str, _Call] = {}

    @property
    def spec(self) -> ToolNodeSpec:
        # Read per call, so a live settings change applies to the next call.
        spec = self._ctx.spec
        assert isinstance(spec, ToolNodeSpec)  # checked when the node was built
        return spec

    @property
    def running(self) -> int:
        return len(self._running)

    def handle(self, frame: Frame) -> None:
        """Start a call, or cancel the interruptible running calls. Never suspends."""
        if isinstance(frame, FunctionCallFrame):
            call = _Call(frame)
            self._running[frame.call_id] = call
            call.task = self._ctx.spawn(self._run(call),
                                        name=f"flowspec:{self._ctx.node_id}:{frame.call_id}")
        elif isinstance(frame, InterruptFrame) and self.spec.cancel_on_interruption:
            for call in self._running.values():
                if call.interrupted:
                    continue
                call.interrupted = True
                # A task cancelled before its first step never enters `_run`'s handler: such a
                # call sees the flag instead when it starts.
                if call.started and call.task is not None:
                    call.task.cancel()

    async def _run(self, call: _Call) -> None:
        call.started = True
        began = time.perf_counter()
        if call.interrupted:
            outcome = _CANCELLED
        else:
            try:
                outcome = await self._attempt(call.frame)
            except asyncio.CancelledError:
                if not call.interrupted:
                    raise  # the session is stopping
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                outcome = _CANCELLED
        # Out of the running set before answering, so that a late interrupt cannot cut the
        # answer itself short.
        if self._running.get(call.frame.call_id) is call:
            del self._running[call.frame.call_id]
        await self._answer(call.frame, outcome, (time.perf_counter() - began) * 1000.0)

    async def _attempt(self, call: FunctionCallFrame) -> _Outcome:
        spec = self.spec
        try:
            arguments = parse_arguments(call.arguments, spec.parameters)
        except ToolCallFailed as exc:
            return _Outcome(error_result(exc.message), exc.message, exc.detail)
        deadline = asyncio.timeout(spec.timeout_s)
        try:
            async with deadline:
                return _Outcome(await self._invoke(arguments, call))
        except ToolCallFailed as exc:
            return _Outcome(error_result(exc.message), exc.message, exc.detail)
        except Exception as exc:  # the handler is application code: a supervision boundary
            if deadline.expired():
                failed = timed_out(spec)
                return _Outcome(error_result(failed.message), failed.message, failed.detail)
            log.warning("session %s: tool %r failed on call %s", self._ctx.session_id,
                        self._ctx.node_id, call.call_id, exc_info=exc)
            return _Outcome(error_result(FAILED), f"{type(exc).__name__}: {exc}",
                            "".join(traceback.format_exception(exc)))

    async def _answer(self, call: FunctionCallFrame, outcome: _Outcome, elapsed_ms: float) -> None:
        self._ctx.publish(FunctionCallEnded(
            session_id=self._ctx.session_id, node_id=self._ctx.node_id, call_id=call.call_id,
            name=call.name, ok=not outcome.error, error=outcome.error, detail=outcome.detail,
            cancelled=outcome.cancelled, elapsed_ms=elapsed_ms, arguments=call.arguments))
        await self._ctx.return_result(FunctionResultFrame(
            call_id=call.call_id, name=call.name, result=outcome.result,
            is_error=bool(outcome.error), cancelled=outcome.cancelled))
