"""The Responses API shared by both wires: the session's conversation, request bodies, server
events parsed into typed values, and what one response produced (text, calls, usage).

The WebSocket and SSE adapters (`ws.py`, `sse.py`) only move JSON; everything the API means lives
here, so the two transports cannot drift apart.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from flowspec.errors import NodeError, RemoteProtocolError
from flowspec.nodes.refusal import access_refused
from flowspec.spec.capabilities import reasoning_supported
from flowspec.spec.models.responses import ResponsesNodeSpec, ResponsesSettingsSpec

JSONObject: TypeAlias = dict[str, Any]

TERMINAL_TYPES = frozenset({"response.completed", "response.failed", "response.incomplete"})
RETRY_FULL_CONTEXT = frozenset({"previous_response_not_found"})
RETRY_RECONNECT = frozenset({"websocket_connection_limit_reached"})
BENIGN_CODES = frozenset({"response_cancel_not_active"})


class ResponsesApiError(RemoteProtocolError):
    """The API reported an error (an `error` event, a failed or incomplete response, or a non-2xx
    HTTP reply). `code` is OpenAI's code when it gave one."""

    def __init__(self, node_id: str, message: str, *, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(node_id, message)
        self.code = code
        self.status = status


# -- the conversation -----------------------------------------------------------------------


class Conversation:
    """A session's context as Responses input items. It only grows, except on `reset`, which bumps
    `generation` so that a server-side chain built on the old items is never reused."""

    def __init__(self) -> None:
        self.items: list[JSONObject] = []
        self.generation = 0

    def __len__(self) -> int:
        return len(self.items)

    def extend(self, items: Sequence[JSONObject]) -> None:
        self.items.extend(items)

    def reset(self) -> None:
        self.items = []
        self.generation += 1

    def truncate(self, start: int, end: int, text: str) -> None:
        """Keep `text` as the only assistant words among `items[start:end]` (what the caller
        heard of a spoken reply cut short; nothing when it is empty). Other items stay. Bumps
        `generation`: the server's chain holds the words as they were."""
        kept: list[JSONObject] = []
        placed = False
        for item in self.items[start:end]:
            if item.get("type") == "message" and item.get("role") == "assistant":
                if not placed and text.strip():
                    kept.append(assistant_message(text))
                placed = True
                continue
            kept.append(item)
        self.items[start:end] = kept
        self.generation += 1


@dataclass(frozen=True, slots=True)
class Chain:
    """The server holds response `response_id` in this connection's cache, covering the first
    `length` items of conversation `generation`."""

    response_id: str
    length: int
    generation: int


def next_input(
    conversation: Conversation, chain: Chain | None
) -> tuple[list[JSONObject], str | None]:
    """The input to send and the `previous_response_id` to chain from: only the new items when the
    chain still describes a prefix of the conversation, the full context otherwise."""
    if (chain is not None and chain.generation == conversation.generation
            and len(conversation) > chain.length):
        return conversation.items[chain.length:], chain.response_id
    return list(conversation.items), None


def user_message(text: str) -> JSONObject:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def assistant_message(text: str) -> JSONObject:
    return {"type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def seeded_message(role: str, text: str) -> JSONObject:
    """An item of a conversation's seeded `context`."""
    if role == "assistant":
        return assistant_message(text)
    return {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}


def function_output(call_id: str, output: str) -> JSONObject:
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def context_item(item: Mapping[str, Any], *, store: bool) -> JSONObject | None:
    """The input item that replays one output item, or None when it cannot be replayed.

    Ids are dropped from messages and calls: with `store: false` the server rejects ids it did not
    persist. Reasoning keeps its id and must carry `encrypted_content` unless responses are stored.
    """
    match item.get("type"):
        case "message":
            text = "".join(str(part.get("text", "")) for part in item.get("content") or ()
                           if isinstance(part, dict) and part.get("type") == "output_text")
            return assistant_message(text)
        case "function_call":
            return {"type": "function_call", "call_id": item.get("call_id"),
                    "name": item.get("name"), "arguments": item.get("arguments") or "{}"}
        case "reasoning":
            if not store and not item.get("encrypted_content"):
                return None
            replay: JSONObject = {"type": "reasoning", "id": item.get("id"),
                                  "summary": item.get("summary") or []}
            if item.get("encrypted_content"):
                replay["encrypted_content"] = item["encrypted_content"]
            return replay
    return None


# -- requests -------------------------------------------------------------------------------


def api_key(spec: ResponsesNodeSpec, node_id: str) -> str:
    """The key from the spec, else from `OPENAI_API_KEY`. Raises a fatal NodeError without one."""
    key = spec.api_key.get_secret_value() if spec.api_key is not None else os.environ.get(
        "OPENAI_API_KEY", "")
    if not key:
        raise NodeError(node_id, "no API key: set `api_key` or the OPENAI_API_KEY environment "
                        "variable.", fatal=True)
    return key


def headers(spec: ResponsesNodeSpec, key: str) -> dict[str, str]:
    """Request headers for both wires (the key only ever travels here, never into messages)."""
    result = {"Authorization": f"Bearer {key}"}
    if spec.organization:
        result["OpenAI-Organization"] = spec.organization
    if spec.project:
        result["OpenAI-Project"] = spec.project
    result.update(spec.default_headers)
    return result


def build_body(
    spec: ResponsesNodeSpec,
    settings: ResponsesSettingsSpec,
    items: Sequence[JSONObject],
    *,
    tools: Sequence[JSONObject] = (),
    previous_response_id: str | None = None,
    max_tokens: int | None = None,
    system_instruction: str | None = None,
) -> JSONObject:
    """A `POST /v1/responses` body (the WebSocket sends the same fields in `response.create`).

    Settings the spec omits are not sent; `frequency_penalty`, `presence_penalty` and `seed` are
    never sent (the API has no such parameters); `extra` is merged last."""
    given = settings.model_fields_set
    body: JSONObject = {"model": settings.model, "store": spec.store}
    instructions = system_instruction if system_instruction is not None else (
        settings.system_instruction)
    if items or previous_response_id is not None:
        body["input"] = list(items)
        if instructions:
            body["instructions"] = instructions
    else:
        # The API needs some input: with none, the instructions become the one message.
        body["input"] = [{"type": "message", "role": "developer", "content": instructions or ""}]
    if previous_response_id is not None:
        body["previous_response_id"] = previous_response_id
    for name in ("temperature", "top_p"):
        value = getattr(settings, name)
        if name in given and value is not None:
            body[name] = value
    limit = max_tokens if max_tokens is not None else settings.max_completion_tokens
    if limit is not None:
        body["max_output_tokens"] = limit
    if spec.service_tier is not None:
        body["service_tier"] = spec.service_tier
    if tools:
        body["tools"] = list(tools)
    if settings.reasoning is not None and reasoning_supported(settings.model, realtime=False):
        body["reasoning"] = settings.reasoning.model_dump(exclude_none=True)
        body["include"] = ["reasoning.encrypted_content"]
    body.update(spec.extra)
    return body


# -- server events --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    response_id: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    item_id: str | None
    delta: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    item_id: str | None
    delta: str


@dataclass(frozen=True, slots=True)
class ItemAdded:
    item: JSONObject


@dataclass(frozen=True, slots=True)
class ArgumentsDone:
    item_id: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class ItemDone:
    item: JSONObject


@dataclass(frozen=True, slots=True)
class ResponseFinished:
    """`response.completed`, `response.failed` or `response.incomplete`."""

    status: str
    response: JSONObject

    @property
    def response_id(self) -> str | None:
        value = self.response.get("id")
        return value if isinstance(value, str) else None

    def problem(self) -> str:
        error = self.response.get("error") or {}
        details = self.response.get("incomplete_details") or {}
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(details, dict) and details.get("reason"):
            return f"the response is incomplete ({details['reason']})"
        return f"the response ended with status {self.status!r}"


@dataclass(frozen=True, slots=True)
class ApiError:
    """An `error` event, flat (`code`, `message` at top level) or nested under `error`."""

    code: str | None
    message: str
    type: str | None = None
    status: int | None = None

    def raise_for(self, node_id: str) -> NodeError:
        refused = access_refused(node_id, f"the model could not be used: {self.message}",
                                 self.code, self.type, self.status, fatal=True)
        if refused is not None:
            return refused  # every later request would be refused alike: the call ends
        code = f" [{self.code}]" if self.code else ""
        return ResponsesApiError(node_id, f"the API reported an error: {self.message}{code}",
                                 code=self.code, status=self.status)


@dataclass(frozen=True, slots=True)
class Ignored:
    type: str


ServerEvent: TypeAlias = (ResponseCreated | TextDelta | ReasoningDelta | ItemAdded | ArgumentsDone
                          | ItemDone | ResponseFinished | ApiError | Ignored)
OUTPUT_EVENTS = (TextDelta, ReasoningDelta, ItemAdded)


def parse_event(data: Any) -> ServerEvent:
    """One server event (SSE `data` or a WebSocket message) as a typed value; never raises."""
    match data:
        case {"type": "response.created", "response": {"id": str(response_id)}}:
            return ResponseCreated(response_id)
        case {"type": "response.output_text.delta", "delta": str(delta)}:
            return TextDelta(_str(data.get("item_id")), delta)
        case {"type": "response.reasoning_summary_text.delta", "delta": str(delta)}:
            return ReasoningDelta(_str(data.get("item_id")), delta)
        case {"type": "response.output_item.added", "item": dict(item)}:
            return ItemAdded(item)
        case {"type": "response.function_call_arguments.done", "arguments": str(arguments)}:
            return ArgumentsDone(_str(data.get("item_id")), arguments)
        case {"type": "response.output_item.done", "item": dict(item)}:
            return ItemDone(item)
        case {"type": str(kind), "response": dict(response)} if kind in TERMINAL_TYPES:
            return ResponseFinished(kind.removeprefix("response."), response)
        case {"type": "error"}:
            return error_of(data)
        case {"type": str(kind)}:
            return Ignored(kind)
    return Ignored("")


def error_of(data: Mapping[str, Any]) -> ApiError:
    """An error from an `error` event (flat or nested) or a non-2xx body `{"error": {...}}`."""
    nested = data.get("error")
    source = nested if isinstance(nested, dict) else data
    status = data.get("status")
    return ApiError(
        code=_str(source.get("code")),
        message=str(source.get("message") or "unknown error"),
        type=_str(source.get("type")),
        status=status if isinstance(status, int) else None,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# -- what one response produced --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionCall:
    call_id: str
    name: str
    arguments: str


@dataclass(slots=True)
class _PendingCall:
    call_id: str
    name: str
    arguments: str | None = None  # None until the arguments are complete


@dataclass(slots=True)
class ResponseAccumulator:
    """Folds one response's events into its text, output items and completed function calls."""

    store: bool = False
    response_id: str | None = None
    text: str = ""
    emitted: bool = False  # some output already reached the user
    output: list[JSONObject] = field(default_factory=list)
    _calls: dict[str, _PendingCall] = field(default_factory=dict)
    _order: list[str] = field(default_factory=list)

    def apply(self, event: ServerEvent) -> None:
        match event:
            case ResponseCreated(response_id):
                self.response_id = response_id
            case TextDelta(_, delta):
                self.text += delta
            case ItemAdded(item) if item.get("type") == "function_call":
                self._track(item)
            case ArgumentsDone(item_id, arguments) if item_id in self._calls:
                self._calls[item_id].arguments = arguments
            case ItemDone(item):
                if item.get("type") == "function_call":
                    call = self._track(item)
                    if isinstance(item.get("arguments"), str):
                        call.arguments = item["arguments"]
                replay = context_item(item, store=self.store)
                if replay is not None:
                    self.output.append(replay)

    def calls(self) -> list[FunctionCall]:
        """Calls whose arguments completed, in output order; the others are dropped."""
        return [FunctionCall(c.call_id, c.name, c.arguments)
                for c in (self._calls[k] for k in self._order) if c.arguments is not None]

    def partial(self) -> list[JSONObject]:
        """What to keep of a response cut short: the text the user already saw."""
        return [assistant_message(self.text)] if self.text else []

    def _track(self, item: Mapping[str, Any]) -> _PendingCall:
        key = str(item.get("id") or item.get("call_id"))
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = _PendingCall(str(item.get("call_id")), str(item.get("name")))
            self._order.append(key)
        return call


def usage_values(usage: Any) -> dict[str, float]:
    """Token counts from a response's `usage`; a missing field counts as 0."""
    usage = usage if isinstance(usage, dict) else {}
    inputs = usage.get("input_tokens_details") or {}
    outputs = usage.get("output_tokens_details") or {}

    def number(source: Mapping[str, Any], key: str) -> float:
        value = source.get(key) if isinstance(source, dict) else None
        return float(value) if isinstance(value, int | float) else 0.0

    return {
        "input_tokens": number(usage, "input_tokens"),
        "output_tokens": number(usage, "output_tokens"),
        "total_tokens": number(usage, "total_tokens"),
        "cached_input_tokens": number(inputs, "cached_tokens"),
        "reasoning_tokens": number(outputs, "reasoning_tokens"),
    }


def output_text(response: Mapping[str, Any]) -> str:
    """The text of a non-streamed response (what the SDK's `output_text` gives)."""
    return "".join(
        str(part.get("text", ""))
        for item in response.get("output") or () if isinstance(item, dict)
        and item.get("type") == "message"
        for part in item.get("content") or () if isinstance(part, dict)
        and part.get("type") == "output_text"
    )


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
