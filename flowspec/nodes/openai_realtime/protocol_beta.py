"""Beta Realtime wire shapes: the flat session built from a node's settings (no `type` field)."""

from __future__ import annotations

from typing import Any

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
