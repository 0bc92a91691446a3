"""The Responses API engine shared by the SSE and WebSocket wires: request checks, the response
store, and the event sequence of one response."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from flowspec.emulator import voice
from flowspec.emulator.planner import Plan, arguments_json, plan_reply
from flowspec.emulator.script import Failure, Script, Turn
from flowspec.emulator.wire import (
    JSONObject,
    WireError,
    cancelled_within,
    check_keys,
    estimate_tokens,
    invalid_type,
    missing_parameter,
    new_id,
)

Emit = Callable[[JSONObject], Awaitable[None]]

REQUEST_KEYS = frozenset(
    "access_programs background background_options context_management conversation include "
    "input instructions max_output_tokens max_tool_calls metadata model moderation "
    "parallel_tool_calls previous_response_id prompt prompt_cache_key prompt_cache_options "
    "prompt_cache_retention reasoning safety_identifier service_tier store stream stream_options "
    "temperature text tool_choice tools top_logprobs top_p truncation user image".split()
)
WS_EXTRA_KEYS = frozenset({"type", "stream_id", "generate"})
_FAILURE_CODES = frozenset(
    "server_error rate_limit_exceeded invalid_prompt vector_store_timeout invalid_image".split()
)


class Dropped(Exception):
    """The script dropped the connection; nothing more may be written."""


@dataclass(slots=True)
class Stored:
    """A finished response and the conversation it closes, for `previous_response_id`."""

    response: JSONObject
    history: list[JSONObject]
    depth: int


@dataclass(slots=True)
class Request:
    """A validated `response.create` body, with its parent resolved."""

    body: JSONObject
    input: list[JSONObject]
    parent: Stored | None
    generate: bool = True


@dataclass(slots=True)
class ResponseStore:
    """Responses kept with `store: true` (shared by every connection of the emulator): the most
    recent `limit` of them, so that an emulator serving for days does not grow with each one
    (an older parent is answered with `previous_response_not_found`, which clients handle)."""

    responses: dict[str, Stored] = field(default_factory=dict)
    limit: int = 1000

    def put(self, response_id: str, stored: Stored) -> None:
        self.responses[response_id] = stored
        while len(self.responses) > self.limit:
            del self.responses[next(iter(self.responses))]


def validate(body: Any, *, websocket: bool) -> JSONObject:
    """Check a request body's shape. Raises `WireError` (HTTP 400) on the first problem."""
    if not isinstance(body, dict):
        raise WireError("The request body must be a JSON object.", code="invalid_json")
    check_keys(body, REQUEST_KEYS | WS_EXTRA_KEYS if websocket else REQUEST_KEYS, "")
    if not isinstance(body.get("model"), str):
        raise missing_parameter("model") if "model" not in body else invalid_type(
            "model", "a string", body["model"]
        )
    source = body.get("input")
    if source is not None and not isinstance(source, str | list):
        raise invalid_type("input", "a string or an array", source)
    tools = body.get("tools", [])
    if not isinstance(tools, list):
        raise invalid_type("tools", "an array", tools)
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid_type(f"tools[{index}]", "an object", tool)
        if tool.get("type") == "function":
            check_keys(tool, frozenset({"type", "name", "description", "parameters", "strict"}),
                       f"tools[{index}].")
            if not isinstance(tool.get("name"), str):
                raise missing_parameter(f"tools[{index}].name")
    if body.get("previous_response_id") is not None and body.get("conversation") is not None:
        raise WireError(
            "Mutually exclusive parameters: 'previous_response_id' and 'conversation'.",
            code="mutually_exclusive_parameters",
            param="previous_response_id",
        )
    return body


def not_found(response_id: str) -> WireError:
    return WireError(
        f"Previous response with id '{response_id}' not found.",
        code="previous_response_not_found",
        param="previous_response_id",
    )


def input_items(body: JSONObject) -> list[JSONObject]:
    source = body.get("input")
    if source is None:
        return []
    if isinstance(source, str):
        return [{"type": "message", "role": "user", "content": source}]
    return [item for item in source if isinstance(item, dict)]


def turn_of(request: Request) -> Turn:
    """The newest user message or tool output of the request is what the reply answers."""
    depth = request.parent.depth + 1 if request.parent else 1
    instructions = str(request.body.get("instructions") or "")
    for item in reversed(request.input):
        if item.get("type") == "function_call_output":
            return Turn("responses", depth, str(item.get("output", "")), "tool_output",
                        instructions)
        if item.get("role") == "user":
            return Turn("responses", depth, _message_text(item), "text", instructions)
    return Turn("responses", depth, "", "text", instructions)


def _message_text(item: JSONObject) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content
            if isinstance(part, dict) and part.get("type") in ("input_text", "output_text")
        )
    return ""


@dataclass(slots=True)
class ResponseStream:
    """Produces the events of one response, in order, through `emit`."""

    request: Request
    plan: Plan
    emit: Emit
    abort: Callable[[], None]
    pace: float = 0.0
    websocket: bool = False
    id: str = field(default_factory=lambda: new_id("resp"))
    created_at: int = field(default_factory=lambda: int(time.time()))
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    output: list[JSONObject] = field(default_factory=list)
    sequence: int = 0
    _chunks: int = 0
    _fault_done: bool = False
    _failure: Failure | None = None

    async def event(self, kind: str, **fields: Any) -> None:
        await self.emit({"type": kind, **fields, "sequence_number": self.sequence})
        self.sequence += 1

    async def run(self) -> Stored | None:
        """Stream the response; returns what to store when it completed (None otherwise)."""
        await self.event("response.created", response=self.snapshot("in_progress"))
        await self.event("response.in_progress", response=self.snapshot("in_progress"))
        if self.request.generate and not await self._fault():
            if self.plan.text is not None:
                await self._message(self.plan.text)
            for call in self.plan.calls:
                if self._stopped():
                    break
                await self._function_call(call.name, arguments_json(call))
        return await self._finish()

    def snapshot(self, status: str, **extra: Any) -> JSONObject:
        body = self.request.body
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "metadata": body.get("metadata") or {},
            "model": body["model"],
            "output": list(self.output),
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": None,
            "user": None,
        } | extra

    async def _message(self, text: str) -> None:
        index = len(self.output)
        item: JSONObject = {"id": new_id("msg"), "type": "message", "status": "in_progress",
                            "role": "assistant", "content": []}
        await self.event("response.output_item.added", output_index=index, item=dict(item))
        ctx = {"item_id": item["id"], "output_index": index, "content_index": 0}
        part: JSONObject = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        await self.event("response.content_part.added", **ctx, part=dict(part))
        for segment in voice.timeline(text):
            if self._stopped():
                break
            part["text"] += segment.text
            await self.event("response.output_text.delta", **ctx, delta=segment.text, logprobs=[])
            if await self._after_chunk():
                break
        await self.event("response.output_text.done", **ctx, text=part["text"], logprobs=[])
        await self.event("response.content_part.done", **ctx, part=dict(part))
        item |= {"content": [part], "status": self._item_status()}
        self.output.append(item)
        await self.event("response.output_item.done", output_index=index, item=item)

    async def _function_call(self, name: str, arguments: str) -> None:
        index = len(self.output)
        item: JSONObject = {"id": new_id("fc"), "type": "function_call", "status": "in_progress",
                            "call_id": new_id("call"), "name": name, "arguments": ""}
        await self.event("response.output_item.added", output_index=index, item=dict(item))
        ctx = {"item_id": item["id"], "output_index": index}
        cut = max(1, len(arguments) // 2)
        for delta in (arguments[:cut], arguments[cut:]):
            if not delta or self._stopped():
                continue
            item["arguments"] += delta
            await self.event("response.function_call_arguments.delta", **ctx, delta=delta)
            if await self._after_chunk():
                break
        await self.event("response.function_call_arguments.done", **ctx,
                         arguments=item["arguments"])
        item["status"] = self._item_status()
        self.output.append(item)
        await self.event("response.output_item.done", output_index=index, item=item)

    @property
    def failed(self) -> bool:
        return self._failure is not None

    def _item_status(self) -> str:
        return "incomplete" if self._stopped() else "completed"

    def _stopped(self) -> bool:
        return self.cancelled.is_set() or self._failure is not None

    async def _after_chunk(self) -> bool:
        self._chunks += 1
        if not self._fault_done and self._chunks >= self.plan.after_chunks:
            return await self._fault()
        if await cancelled_within(self.cancelled, self.pace * 0.015):
            return True
        return self._stopped()

    async def _fault(self) -> bool:
        if self._fault_done or self._chunks < self.plan.after_chunks:
            return self._stopped()
        self._fault_done = True
        if self.plan.stall_ms and await cancelled_within(self.cancelled, self.plan.stall_ms / 1000):
            return True
        if self.plan.drop:
            self.abort()
            raise Dropped
        self._failure = self.plan.failure
        return self._stopped()

    async def _finish(self) -> Stored | None:
        if not self._fault_done and not self.cancelled.is_set():
            # Fewer chunks than `after_chunks`: the fault still fires, before the terminal event.
            self._chunks = max(self._chunks, self.plan.after_chunks)
            await self._fault()
        failure = self._failure
        if failure is not None:
            await self.failure_event(failure)
            code = failure.code if failure.code in _FAILURE_CODES else "server_error"
            error = {"code": code, "message": failure.message}
            await self.event("response.failed", response=self.snapshot("failed", error=error,
                                                                        usage=self._usage()))
            return None
        if self.cancelled.is_set():
            await self.event("response.incomplete",
                             response=self.snapshot("cancelled", usage=self._usage()))
            return None
        final = self.snapshot("completed", usage=self._usage(), completed_at=int(time.time()))
        await self.event("response.completed", response=final)
        parent = self.request.parent
        history = (parent.history if parent else []) + self.request.input + self.output
        return Stored(final, history, parent.depth + 1 if parent else 1)

    async def failure_event(self, failure: Failure) -> None:
        """The in-stream `error` event: always nested over WebSocket; flat or nested over SSE."""
        error = {"type": failure.type, "code": failure.code, "message": failure.message,
                 "param": failure.param}
        if self.websocket:
            await self.event("error", status=failure.status, error=error)
        elif failure.shape == "flat":
            await self.event("error", **{k: v for k, v in error.items() if k != "type"})
        else:
            await self.event("error", error=error)

    def _usage(self) -> JSONObject:
        parent = self.request.parent
        seen = (parent.history if parent else []) + self.request.input
        instructions = str(self.request.body.get("instructions") or "")
        input_tokens = estimate_tokens(instructions) + sum(estimate_tokens(str(i)) for i in seen)
        output_tokens = sum(estimate_tokens(str(item)) for item in self.output)
        return {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }


def make_plan(request: Request, script: Script | None) -> Plan:
    body = request.body
    return plan_reply(turn_of(request), body.get("tools", []), body.get("tool_choice", "auto"),
                      script)


def failure_error(failure: Failure) -> WireError:
    return WireError(failure.message, code=failure.code, param=failure.param, type=failure.type,
                     status=failure.status)
