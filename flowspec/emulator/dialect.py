"""Realtime GA vs beta event shapes: names, items, response objects and response parameters.

Sessions have their own module (`session.py`); every other GA/beta difference is here.
"""

from __future__ import annotations

import base64
import binascii
import copy
from dataclasses import dataclass
from typing import Any, Literal

from flowspec.emulator import session as sessions
from flowspec.emulator.conversation import Item, Part
from flowspec.emulator.session import AudioFormat, Dialect, SessionView
from flowspec.emulator.wire import (
    JSONObject,
    WireError,
    check_keys,
    invalid_type,
    invalid_value,
    missing_parameter,
    new_id,
    require_str,
)

# GA name -> beta name; None means the beta dialect has no such event.
_BETA_NAMES: dict[str, str | None] = {
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "conversation.item.added": "conversation.item.created",
    "conversation.item.done": None,
}
_ITEM_KEYS = frozenset(
    "id type object status role content call_id name arguments output".split()
)
_GA_RESPONSE_KEYS = frozenset(
    "output_modalities audio instructions tools tool_choice max_output_tokens metadata "
    "conversation input prompt reasoning parallel_tool_calls".split()
)
_BETA_RESPONSE_KEYS = frozenset(
    "modalities voice output_audio_format temperature max_response_output_tokens tool_choice "
    "instructions tools metadata conversation input".split()
)


def event_name(dialect: Dialect, name: str) -> str | None:
    """The wire name of a (GA-named) server event, or None when the dialect does not send it."""
    return _BETA_NAMES.get(name, name) if dialect == "beta" else name


@dataclass(frozen=True, slots=True)
class ResponseParams:
    """`response.create` settings merged over the session's."""

    audio: bool
    output_format: AudioFormat
    voice: str
    instructions: str
    tools: list[JSONObject]
    tool_choice: Any
    max_output_tokens: int | Literal["inf"]
    metadata: JSONObject | None
    out_of_band: bool
    input: list[Item] | None


def render_item(dialect: Dialect, item: Item, *, include_audio: bool = False) -> JSONObject:
    body: JSONObject = {"id": item.id, "object": "realtime.item", "type": item.type}
    if item.type == "message":
        body["status"] = item.status
        body["role"] = item.role
        body["content"] = [_render_part(dialect, part, include_audio) for part in item.parts]
    elif item.type == "function_call":
        body |= {
            "status": item.status,
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
        }
    else:
        body |= {"call_id": item.call_id, "output": item.output}
        if dialect == "ga":
            body["status"] = item.status
    return body


def _render_part(dialect: Dialect, part: Part, include_audio: bool) -> JSONObject:
    if part.raw is not None:
        return copy.deepcopy(part.raw)
    audio = {"audio": base64.b64encode(part.audio).decode()} if include_audio else {}
    match part.kind:
        case "input_text":
            return {"type": "input_text", "text": part.text}
        case "input_audio":
            return {"type": "input_audio", "transcript": part.transcript} | audio
        case "text":
            return {"type": "output_text" if dialect == "ga" else "text", "text": part.text}
        case "audio":
            kind = "output_audio" if dialect == "ga" else "audio"
            return {"type": kind, "transcript": part.transcript} | audio
    return {"type": part.kind}


def content_part(part: Part) -> JSONObject:
    """The `part` of `response.content_part.*`: `audio`/`text` in both dialects (reference §0.4)."""
    if part.kind == "audio":
        return {"type": "audio", "transcript": part.transcript or ""}
    return {"type": "text", "text": part.text or ""}


def render_response(
    dialect: Dialect,
    *,
    response_id: str,
    status: str,
    status_details: JSONObject | None,
    output: list[JSONObject],
    params: ResponseParams,
    conversation_id: str | None,
    usage: JSONObject | None,
) -> JSONObject:
    body: JSONObject = {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "status_details": status_details,
        "output": output,
        "conversation_id": conversation_id,
        "max_output_tokens": params.max_output_tokens,
        "usage": usage,
        "metadata": params.metadata,
    }
    if dialect == "ga":
        body["output_modalities"] = ["audio"] if params.audio else ["text"]
        body["audio"] = {
            "output": {
                "format": sessions.ga_format_object(params.output_format),
                "voice": params.voice,
            }
        }
    else:
        body["modalities"] = ["text", "audio"] if params.audio else ["text"]
        body["voice"] = params.voice
        body["output_audio_format"] = params.output_format
        body["temperature"] = 0.8
    return body


def parse_response_params(dialect: Dialect, raw: Any, view: SessionView) -> ResponseParams:
    """Validate `response.create.response` and merge it over the session."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise invalid_type("response", "an object", raw)
    check_keys(raw, _GA_RESPONSE_KEYS if dialect == "ga" else _BETA_RESPONSE_KEYS, "response.")
    audio, fmt, voice = view.audio_output, view.output_format, view.voice
    if dialect == "ga":
        if "output_modalities" in raw:
            audio = sessions.output_modalities(
                raw["output_modalities"], "response.output_modalities"
            ) == ["audio"]
        output = (raw.get("audio") or {}).get("output") or {}
        check_keys(output, frozenset({"format", "voice"}), "response.audio.output.")
        if "format" in output:
            fmt = sessions.ga_format(output["format"], "response.audio.output.format")
        voice = output.get("voice", voice)
        tokens = raw.get("max_output_tokens", view.max_output_tokens)
        tokens_path = "response.max_output_tokens"
    else:
        if "modalities" in raw:
            audio = "audio" in sessions.beta_modalities(raw["modalities"], "response.modalities")
        if "output_audio_format" in raw:
            fmt = sessions.beta_format(raw["output_audio_format"], "response.output_audio_format")
        voice = raw.get("voice", voice)
        tokens = raw.get("max_response_output_tokens", view.max_output_tokens)
        tokens_path = "response.max_response_output_tokens"
    conversation = raw.get("conversation", "auto")
    if conversation not in ("auto", "none"):
        raise invalid_value(
            "response.conversation",
            f"Invalid value: '{conversation}'. Supported values are: 'auto' and 'none'.",
        )
    items: list[Item] | None = None
    if raw.get("input") is not None:
        if not isinstance(raw["input"], list):
            raise invalid_type("response.input", "an array", raw["input"])
        items = [
            parse_item(dialect, entry, f"response.input[{index}]", allow_reference=True)
            for index, entry in enumerate(raw["input"])
        ]
    return ResponseParams(
        audio=audio,
        output_format=fmt,
        voice=voice["id"] if isinstance(voice, dict) else str(voice),
        instructions=raw.get("instructions", view.instructions),
        tools=sessions.tools(raw["tools"], "response.tools") if "tools" in raw else view.tools,
        tool_choice=raw.get("tool_choice", view.tool_choice),
        max_output_tokens=sessions.max_tokens(tokens, tokens_path),
        metadata=raw.get("metadata"),
        out_of_band=conversation == "none",
        input=items,
    )


def parse_item(
    dialect: Dialect, raw: Any, path: str = "item", *, allow_reference: bool = False
) -> Item:
    """Validate a client item (`conversation.item.create`, `response.input`)."""
    if not isinstance(raw, dict):
        raise invalid_type(path, "an object", raw)
    kind = raw.get("type", "message")
    if kind == "item_reference" and allow_reference:
        # A reference stands for an existing item; the caller resolves it by id.
        return Item(id=require_str(raw, "id", f"{path}.") or "", type="message", role="reference")
    check_keys(raw, _ITEM_KEYS, f"{path}.")
    item_id = require_str(raw, "id", f"{path}.", optional=True) or new_id("item")
    status = raw.get("status") or "completed"
    if kind == "function_call":
        return Item(
            id=item_id,
            type="function_call",
            status=status,
            call_id=require_str(raw, "call_id", f"{path}.", optional=True) or new_id("call"),
            name=require_str(raw, "name", f"{path}."),
            arguments=require_str(raw, "arguments", f"{path}.", optional=True) or "{}",
        )
    if kind == "function_call_output":
        return Item(
            id=item_id,
            type="function_call_output",
            status=status,
            call_id=require_str(raw, "call_id", f"{path}."),
            output=require_str(raw, "output", f"{path}."),
        )
    if kind != "message":
        raise invalid_value(
            f"{path}.type",
            f"Invalid value: '{kind}'. Supported values are: 'message', 'function_call', and "
            "'function_call_output'.",
        )
    role = raw.get("role")
    if role not in ("user", "assistant", "system"):
        if role is None:
            raise missing_parameter(f"{path}.role")
        raise invalid_value(
            f"{path}.role",
            f"Invalid value: '{role}'. Supported values are: 'user', 'assistant', and 'system'.",
        )
    content = raw.get("content")
    if not isinstance(content, list):
        raise missing_parameter(f"{path}.content") if content is None else invalid_type(
            f"{path}.content", "an array", content
        )
    parts = [
        _parse_part(dialect, role, part, f"{path}.content[{index}]")
        for index, part in enumerate(content)
    ]
    return Item(id=item_id, type="message", role=role, status=status, parts=parts)


def _parse_part(dialect: Dialect, role: str, raw: Any, path: str) -> Part:
    if not isinstance(raw, dict):
        raise invalid_type(path, "an object", raw)
    kind = raw.get("type")
    allowed = {
        "system": {"input_text"},
        "user": {"input_text", "input_audio", "input_image"},
        "assistant": {"output_text"} if dialect == "ga" else {"text"},
    }[role]
    if kind not in allowed:
        if kind in ("output_audio", "audio") and role == "assistant":
            raise invalid_value(
                f"{path}.type", "Assistant audio content cannot be created by the client."
            )
        supported = ", ".join(f"'{name}'" for name in sorted(allowed))
        raise invalid_value(
            f"{path}.type", f"Invalid value: '{kind}'. Supported values are: {supported}."
        )
    if kind == "input_image":
        check_keys(raw, frozenset({"type", "image_url", "detail"}), f"{path}.")
        return Part("input_image", raw=copy.deepcopy(raw))
    if kind == "input_audio":
        check_keys(raw, frozenset({"type", "audio", "transcript"}), f"{path}.")
        try:
            audio = base64.b64decode(raw.get("audio") or "", validate=True)
        except (binascii.Error, TypeError) as exc:
            raise invalid_value(f"{path}.audio", "Invalid base64 audio.") from exc
        return Part("input_audio", transcript=raw.get("transcript"), audio=audio)
    check_keys(raw, frozenset({"type", "text"}), f"{path}.")
    text = require_str(raw, "text", f"{path}.")
    return Part("input_text" if kind == "input_text" else "text", text=text)


def error_event(err: WireError, event_id: str | None) -> JSONObject:
    """The Realtime `error` event (the same in both dialects)."""
    return {"type": "error", "error": err.body(event_id, with_event_id=True)}


def unknown_event(kind: Any) -> WireError:
    if kind is None:
        return WireError("The 'type' field is missing.", code="invalid_event", param="type")
    return invalid_value("type", f"Invalid value: '{kind}'. Unknown client event type.")


def ensure(condition: bool, err: WireError) -> None:
    if not condition:
        raise err
