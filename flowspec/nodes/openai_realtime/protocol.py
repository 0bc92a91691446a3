"""GA Realtime wire shapes: the nested session built from a node's settings.

NOT_GIVEN semantics: a setting the spec omits is not sent, so the server keeps its own value. A
feature the spec turns off (`turn_detection: false`) is sent as `null`, the wire's "off".
"""

from __future__ import annotations

from typing import Any

from flowspec.audio import Encoding
from flowspec.spec.capabilities import reasoning_supported, transcription_prompt_supported
from flowspec.spec.models.realtime import RealtimeSettingsSpec

# Fields where `false` in the spec means "off", which the wire spells `null`.
OFF_AS_NULL = frozenset({"turn_detection", "transcription", "noise_reduction"})


def false_to_null(
    value: Any, key: str | None = None, off_keys: frozenset[str] = OFF_AS_NULL
) -> Any:
    if isinstance(value, dict):
        return {k: false_to_null(v, k, off_keys) for k, v in value.items()}
    if isinstance(value, list):
        return [false_to_null(v, None, off_keys) for v in value]
    if value is False and key in off_keys:
        return None
    return value


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` merged into `base`, recursing into mappings (the `extra:` escape hatch)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def session_payload(
    settings: RealtimeSettingsSpec,
    *,
    tools: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `session` object of the first `session.update` (GA, nested, always with `type`)."""
    props = settings.session_properties.model_dump(exclude_unset=True, mode="json")
    session: dict[str, Any] = {"type": "realtime", **false_to_null(props)}
    if settings.system_instruction is not None:
        session["instructions"] = settings.system_instruction  # wins over the session's own
    raw_tools = session.pop("tools", None) or []
    if tools or raw_tools:
        session["tools"] = [*(tools or []), *raw_tools]
    # Validate warned of both (`flowspec.spec.capabilities`); the server would refuse them.
    if "reasoning" in session and not reasoning_supported(settings.model, realtime=True):
        del session["reasoning"]
    transcription = session.get("audio", {}).get("input", {}).get("transcription")
    if isinstance(transcription, dict) and "prompt" in transcription and \
            not transcription_prompt_supported(str(transcription.get("model", ""))):
        session["audio"]["input"]["transcription"] = {
            k: v for k, v in transcription.items() if k != "prompt"}
    return deep_merge(session, extra or {})


def session_update(session: dict[str, Any]) -> dict[str, Any]:
    return {"type": "session.update", "session": session}


# -- events ------------------------------------------------------------------------------------
#
# The node speaks one vocabulary: GA event names. Each dialect module maps its wire names onto
# it (`canonical`) and builds the client events whose shapes differ; this one is GA's.

NAME = "ga"
HEADERS: dict[str, str] = {}
ASSISTANT_TEXT_PART = "output_text"
CALLS_ON_ARGUMENTS_DONE = True
"""GA runs each function call as its arguments complete; beta waits for `response.done`."""

_FORMATS: dict[str, tuple[Encoding, int]] = {
    "audio/pcm": ("pcm16", 24000), "audio/pcmu": ("pcmu", 8000), "audio/pcma": ("pcma", 8000)}


def canonical(wire_type: str) -> str:
    return wire_type


def _audio(session: dict[str, Any], direction: str) -> dict[str, Any]:
    audio = session.get("audio")
    part = audio.get(direction) if isinstance(audio, dict) else None
    return part if isinstance(part, dict) else {}


def audio_format(session: dict[str, Any], direction: str) -> tuple[Encoding, int]:
    """(encoding, sample rate) of the session's `input` or `output` audio, as echoed back."""
    fmt = _audio(session, direction).get("format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    return _FORMATS.get(kind or "", ("pcm16", 24000))


def turn_detection(session: dict[str, Any]) -> dict[str, Any] | None:
    value = _audio(session, "input").get("turn_detection")
    return value if isinstance(value, dict) else None


def audio_output(session: dict[str, Any]) -> bool:
    return bool(session.get("output_modalities", ["audio"]) != ["text"])


def response_create(session: dict[str, Any]) -> dict[str, Any]:
    # GA takes exactly one output modality per response.
    modality = ["audio"] if audio_output(session) else ["text"]
    return {"type": "response.create", "response": {"output_modalities": modality}}


def settings_session(session: dict[str, Any]) -> dict[str, Any]:
    """A later (partial) `session.update` body: GA requires `type` on every update."""
    return {"type": "realtime", **session}
