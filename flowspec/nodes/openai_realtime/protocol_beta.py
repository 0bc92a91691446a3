"""Beta Realtime wire shapes: the flat session (no `type` field), the beta header, the beta
event names (`response.audio.delta`, `conversation.item.created`, ...) and beta responses."""

from __future__ import annotations

from typing import Any

from flowspec.audio import Encoding
from flowspec.nodes.openai_realtime.protocol import deep_merge, false_to_null
from flowspec.spec.models.realtime_beta import RealtimeBetaSettingsSpec

OFF_AS_NULL_BETA = frozenset(
    {"turn_detection", "input_audio_transcription", "input_audio_noise_reduction"}
)
BETA_HEADERS = {"OpenAI-Beta": "realtime=v1"}


def session_payload(
    settings: RealtimeBetaSettingsSpec,
    *,
    tools: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `session` object of the first `session.update` (beta, flat)."""
    props = settings.session_properties.model_dump(exclude_unset=True, mode="json")
    session: dict[str, Any] = false_to_null(props, None, OFF_AS_NULL_BETA)
    if settings.system_instruction is not None:
        session["instructions"] = settings.system_instruction
    raw_tools = session.pop("tools", None) or []
    if tools or raw_tools:
        session["tools"] = [*(tools or []), *raw_tools]
    return deep_merge(session, extra or {})


# -- events (see protocol.py: the node speaks GA names) ------------------------------------------

NAME = "beta"
HEADERS = BETA_HEADERS
ASSISTANT_TEXT_PART = "text"
CALLS_ON_ARGUMENTS_DONE = False

_TO_GA = {
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "conversation.item.created": "conversation.item.added",
}
_FORMATS: dict[str, tuple[Encoding, int]] = {
    "pcm16": ("pcm16", 24000), "g711_ulaw": ("pcmu", 8000), "g711_alaw": ("pcma", 8000)}


def canonical(wire_type: str) -> str:
    return _TO_GA.get(wire_type, wire_type)


def audio_format(session: dict[str, Any], direction: str) -> tuple[Encoding, int]:
    kind = session.get(f"{direction}_audio_format")
    return _FORMATS.get(kind if isinstance(kind, str) else "", ("pcm16", 24000))


def turn_detection(session: dict[str, Any]) -> dict[str, Any] | None:
    value = session.get("turn_detection")
    return value if isinstance(value, dict) else None


def audio_output(session: dict[str, Any]) -> bool:
    return "audio" in (session.get("modalities") or ["text", "audio"])


def response_create(session: dict[str, Any]) -> dict[str, Any]:
    modalities = ["text", "audio"] if audio_output(session) else ["text"]
    return {"type": "response.create", "response": {"modalities": modalities}}


def settings_session(session: dict[str, Any]) -> dict[str, Any]:
    return dict(session)
