"""GA Realtime wire shapes: the nested session built from a node's settings.

NOT_GIVEN semantics: a setting the spec omits is not sent, so the server keeps its own value. A
feature the spec turns off (`turn_detection: false`) is sent as `null`, the wire's "off".
"""

from __future__ import annotations

from typing import Any

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
    if "reasoning" in session and not settings.model.startswith("gpt-realtime-2"):
        del session["reasoning"]  # validate warned; the server would reject it
    return deep_merge(session, extra or {})


def session_update(session: dict[str, Any]) -> dict[str, Any]:
    return {"type": "session.update", "session": session}
