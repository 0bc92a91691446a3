"""Realtime session configuration in both dialects: defaults, partial updates, and a neutral view.

The effective session is kept as the JSON the dialect echoes in `session.created/updated`.
Everything else in the emulator reads it through `SessionView`, so the GA/beta shape differences
for sessions live in this module only.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any, Literal

from flowspec.emulator.wire import (
    JSONObject,
    WireError,
    check_keys,
    invalid_type,
    invalid_value,
    missing_parameter,
    new_id,
)

Dialect = Literal["ga", "beta"]
AudioFormat = Literal["pcm16", "g711_ulaw", "g711_alaw"]

DEFAULT_INSTRUCTIONS = (
    "You are a helpful, witty, and friendly AI. Act like a human, but remember that you aren't a "
    "human. Your voice and personality should be warm and engaging. Keep answers short."
)
# The observed server default is a 200 ms silence, not the documented 500 ms (reference §7.3).
SERVER_VAD_DEFAULTS: JSONObject = {
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "create_response": True,
    "interrupt_response": True,
}
EAGERNESS_SILENCE_MS = {"low": 1200, "medium": 600, "auto": 600, "high": 250}

_GA_FORMATS: dict[str, AudioFormat] = {
    "audio/pcm": "pcm16",
    "audio/pcmu": "g711_ulaw",
    "audio/pcma": "g711_alaw",
}
_GA_FORMAT_NAMES = {value: key for key, value in _GA_FORMATS.items()}
_GA_KEYS = frozenset(
    "type model instructions output_modalities audio tools tool_choice max_output_tokens tracing "
    "truncation prompt include reasoning parallel_tool_calls".split()
)
_BETA_KEYS = frozenset(
    "model modalities instructions voice input_audio_format output_audio_format "
    "input_audio_transcription input_audio_noise_reduction turn_detection tools tool_choice "
    "temperature max_response_output_tokens speed tracing include".split()
)
_TOOL_KEYS = frozenset({"type", "name", "description", "parameters"})
_MODALITY_VALUES = ("audio", "text")


@dataclass(frozen=True, slots=True)
class SessionView:
    """What the engine needs from a session, whatever the dialect."""

    model: str
    instructions: str
    audio_output: bool
    input_format: AudioFormat
    output_format: AudioFormat
    voice: str
    transcription: JSONObject | None
    turn_detection: JSONObject | None
    tools: list[JSONObject]
    tool_choice: Any
    max_output_tokens: int | Literal["inf"]


def default_session(dialect: Dialect, model: str) -> JSONObject:
    """The full session a new connection gets in `session.created`."""
    vad = {"type": "server_vad", **SERVER_VAD_DEFAULTS}
    head: JSONObject = {
        "object": "realtime.session",
        "id": new_id("sess"),
        "model": model,
        "expires_at": int(time.time()) + 3600,
    }
    if dialect == "ga":
        return head | {
            "type": "realtime",
            "output_modalities": ["audio"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "include": None,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": vad | {"idle_timeout_ms": None},
                },
                "output": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "voice": "alloy",
                    "speed": 1.0,
                },
            },
        }
    return head | {
        "modalities": ["text", "audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "voice": "alloy",
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": None,
        "input_audio_noise_reduction": None,
        "turn_detection": vad,
        "tools": [],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
        "speed": 1.0,
        "tracing": None,
    }


def apply_update(
    dialect: Dialect, current: JSONObject, update: Any, *, audio_sent: bool
) -> JSONObject:
    """Validate a `session.update` payload and return the new effective session.

    The update is all-or-nothing, as on the real service: the first problem raises `WireError` and
    `current` is left as it was.
    """
    if not isinstance(update, dict):
        raise invalid_type("session", "an object", update)
    merged = copy.deepcopy(current)
    if dialect == "ga":
        _update_ga(merged, update)
    else:
        _update_beta(merged, update)
    if update.get("model") is not None and update["model"] != current["model"]:
        raise invalid_value("session.model", "The session model cannot be changed by an update.")
    if audio_sent and view(dialect, merged).voice != view(dialect, current).voice:
        raise WireError(
            "Cannot update a conversation's voice if assistant audio is present.",
            code="cannot_update_voice",
            param="session.voice",
        )
    return merged


def _update_ga(session: JSONObject, update: JSONObject) -> None:
    kind = update.get("type")
    if kind is None:
        raise missing_parameter("session.type")
    if kind == "transcription":
        raise WireError(
            "Passing a transcription session update event to a realtime session is not allowed.",
            param="session.type",
        )
    if kind != "realtime":
        raise invalid_value(
            "session.type",
            f"Invalid value: '{kind}'. Supported values are: 'realtime' and 'transcription'.",
        )
    check_keys(update, _GA_KEYS, "session.")
    for key, value in update.items():
        if key == "audio":
            _update_ga_audio(session["audio"], value)
        elif key == "output_modalities":
            session[key] = output_modalities(value, "session.output_modalities")
        elif key == "tools":
            session[key] = tools(value, "session.tools")
        elif key == "max_output_tokens":
            session[key] = max_tokens(value, "session.max_output_tokens")
        elif key == "instructions":
            session[key] = _string(value, "session.instructions")
        else:
            session[key] = copy.deepcopy(value)


def _update_ga_audio(audio: JSONObject, update: Any) -> None:
    if not isinstance(update, dict):
        raise invalid_type("session.audio", "an object", update)
    check_keys(update, frozenset({"input", "output"}), "session.audio.")
    for side, keys in (
        ("input", {"format", "transcription", "noise_reduction", "turn_detection"}),
        ("output", {"format", "voice", "speed"}),
    ):
        part = update.get(side)
        if part is None:
            continue
        path = f"session.audio.{side}."
        if not isinstance(part, dict):
            raise invalid_type(path[:-1], "an object", part)
        check_keys(part, frozenset(keys), path)
        for key, value in part.items():
            if key == "format":
                ga_format(value, path + key)
                audio[side][key] = copy.deepcopy(value)
            elif key == "turn_detection":
                audio[side][key] = turn_detection(value, path + key, "ga")
            elif key == "speed":
                audio[side][key] = _speed(value, path + key)
            else:
                audio[side][key] = copy.deepcopy(value)


def _update_beta(session: JSONObject, update: JSONObject) -> None:
    check_keys(update, _BETA_KEYS, "session.")
    for key, value in update.items():
        if key == "modalities":
            session[key] = beta_modalities(value, "session.modalities")
        elif key in ("input_audio_format", "output_audio_format"):
            session[key] = beta_format(value, f"session.{key}")
        elif key == "turn_detection":
            session[key] = turn_detection(value, "session.turn_detection", "beta")
        elif key == "tools":
            session[key] = tools(value, "session.tools")
        elif key == "max_response_output_tokens":
            session[key] = max_tokens(value, f"session.{key}")
        elif key == "speed":
            session[key] = _speed(value, "session.speed")
        elif key == "instructions":
            session[key] = _string(value, "session.instructions")
        else:
            session[key] = copy.deepcopy(value)


def view(dialect: Dialect, session: JSONObject) -> SessionView:
    if dialect == "ga":
        audio_in, audio_out = session["audio"]["input"], session["audio"]["output"]
        voice = audio_out["voice"]
        return SessionView(
            model=session["model"],
            instructions=session["instructions"],
            audio_output="audio" in session["output_modalities"],
            input_format=_GA_FORMATS[audio_in["format"]["type"]],
            output_format=_GA_FORMATS[audio_out["format"]["type"]],
            voice=voice["id"] if isinstance(voice, dict) else voice,
            transcription=audio_in["transcription"],
            turn_detection=audio_in["turn_detection"],
            tools=session["tools"],
            tool_choice=session["tool_choice"],
            max_output_tokens=session["max_output_tokens"],
        )
    return SessionView(
        model=session["model"],
        instructions=session["instructions"],
        audio_output="audio" in session["modalities"],
        input_format=session["input_audio_format"],
        output_format=session["output_audio_format"],
        voice=session["voice"],
        transcription=session["input_audio_transcription"],
        turn_detection=session["turn_detection"],
        tools=session["tools"],
        tool_choice=session["tool_choice"],
        max_output_tokens=session["max_response_output_tokens"],
    )


def ga_format(value: Any, path: str) -> AudioFormat:
    if not isinstance(value, dict):
        raise invalid_type(path, "an object", value)
    kind = value.get("type")
    if kind not in _GA_FORMATS:
        raise invalid_value(
            f"{path}.type",
            f"Invalid value: '{kind}'. Supported values are: 'audio/pcm', 'audio/pcmu' and "
            "'audio/pcma'.",
        )
    check_keys(value, frozenset({"type", "rate"} if kind == "audio/pcm" else {"type"}), path + ".")
    if kind == "audio/pcm" and value.get("rate", 24000) != 24000:
        raise invalid_value(f"{path}.rate", "Invalid value: only a rate of 24000 is supported.")
    return _GA_FORMATS[kind]


def ga_format_object(fmt: AudioFormat) -> JSONObject:
    name = _GA_FORMAT_NAMES[fmt]
    return {"type": name, "rate": 24000} if fmt == "pcm16" else {"type": name}


def beta_format(value: Any, path: str) -> AudioFormat:
    if value not in ("pcm16", "g711_ulaw", "g711_alaw"):
        raise invalid_value(
            path,
            f"Invalid value: '{value}'. Supported values are: 'pcm16', 'g711_ulaw', and "
            "'g711_alaw'.",
        )
    fmt: AudioFormat = value
    return fmt


def output_modalities(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or len(value) != 1 or value[0] not in _MODALITY_VALUES:
        raise invalid_value(
            path, "Invalid modalities: output_modalities must be ['audio'] or ['text']."
        )
    return list(value)


def beta_modalities(value: Any, path: str) -> list[str]:
    if (
        not isinstance(value, list)
        or not value
        or any(item not in _MODALITY_VALUES for item in value)
        or value == ["audio"]
    ):
        raise invalid_value(
            path, "Invalid modalities: supported combinations are ['text'] and ['audio', 'text']."
        )
    return list(value)


def turn_detection(value: Any, path: str, dialect: Dialect) -> JSONObject | None:
    """Validate a turn_detection object and fill in the server's defaults for omitted fields."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_type(path, "an object", value)
    kind = value.get("type", "server_vad")
    if kind == "server_vad":
        keys = {"type", "threshold", "prefix_padding_ms", "silence_duration_ms"}
        keys |= {"create_response", "interrupt_response"}
        keys |= {"idle_timeout_ms"} if dialect == "ga" else {"eagerness"}
    elif kind == "semantic_vad":
        keys = {"type", "eagerness", "create_response", "interrupt_response"}
        keys |= set() if dialect == "ga" else {"threshold", "prefix_padding_ms"}
        keys |= set() if dialect == "ga" else {"silence_duration_ms"}
    else:
        raise invalid_value(
            f"{path}.type",
            f"Invalid value: '{kind}'. Supported values are: 'server_vad' and 'semantic_vad'.",
        )
    check_keys(value, frozenset(keys), path + ".")
    threshold = value.get("threshold", 0.5)
    if not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
        raise invalid_value(f"{path}.threshold", "Threshold must be a number between 0 and 1.")
    for key in ("prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms"):
        number = value.get(key)
        if number is not None and (not isinstance(number, int) or number < 0):
            raise invalid_value(f"{path}.{key}", f"'{key}' must be a non-negative integer.")
    for key in ("create_response", "interrupt_response"):
        if key in value and not isinstance(value[key], bool):
            raise invalid_type(f"{path}.{key}", "a boolean", value[key])
    if kind == "semantic_vad":
        eagerness = value.get("eagerness", "auto")
        if eagerness not in EAGERNESS_SILENCE_MS:
            raise invalid_value(
                f"{path}.eagerness",
                f"Invalid value: '{eagerness}'. Supported values are: 'low', 'medium', 'high', "
                "and 'auto'.",
            )
        return {
            "type": "semantic_vad",
            "eagerness": eagerness,
            "create_response": value.get("create_response", True),
            "interrupt_response": value.get("interrupt_response", True),
        }
    result = {"type": "server_vad", **SERVER_VAD_DEFAULTS}
    result.update({k: v for k, v in value.items() if k in SERVER_VAD_DEFAULTS})
    if dialect == "ga":
        result["idle_timeout_ms"] = value.get("idle_timeout_ms")
    return result


def tools(value: Any, path: str) -> list[JSONObject]:
    if not isinstance(value, list):
        raise invalid_type(path, "an array", value)
    for index, tool in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(tool, dict):
            raise invalid_type(where, "an object", tool)
        if tool.get("type") == "mcp":
            continue
        if tool.get("type", "function") != "function":
            raise invalid_value(f"{where}.type", f"Invalid value: '{tool.get('type')}'.")
        check_keys(tool, _TOOL_KEYS, where + ".")
        if not isinstance(tool.get("name"), str):
            raise missing_parameter(f"{where}.name")
    return copy.deepcopy(value)


def max_tokens(value: Any, path: str) -> int | Literal["inf"]:
    if value == "inf":
        return "inf"
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
        raise invalid_value(path, "Invalid value: expected an integer from 1 to 4096, or 'inf'.")
    return value


def _speed(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.25 <= value <= 1.5:
        raise invalid_value(path, "Invalid value: speed must be between 0.25 and 1.5.")
    return float(value)


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise invalid_type(path, "a string", value)
    return value
