"""Settings changes on the wire: the smallest partial `session` that takes a Realtime session from
one full session payload to another, and the check of the server's `session.updated` echo.

A partial `session.update` merges into the server's session key by key, but only through the
containers (`audio`, `audio.input`, `audio.output` in GA); every other value is replaced whole, so a
changed `turn_detection` is sent complete. A key the new settings no longer give cannot be "left
out" (the server would keep the old value): it is sent with the provider's documented default, or
`null` (off) where the provider has none, and `instructions` goes back to `""`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Path = tuple[str, ...]

GA_CONTAINERS: frozenset[Path] = frozenset({(), ("audio",), ("audio", "input"),
                                            ("audio", "output")})
BETA_CONTAINERS: frozenset[Path] = frozenset({()})

# What a removed setting falls back to: the provider defaults the spec documents
# (`provider_default`), "" for instructions, an empty list for tools. Anything else is `null`.
GA_REMOVED: dict[Path, Any] = {
    ("instructions",): "",
    ("tools",): [],
    ("output_modalities",): ["audio"],
    ("tool_choice",): "auto",
    ("max_output_tokens",): "inf",
    ("truncation",): "auto",
    ("audio", "input", "turn_detection"): {"type": "server_vad"},
    ("audio", "output", "voice"): "alloy",
    ("audio", "output", "speed"): 1.0,
}
BETA_REMOVED: dict[Path, Any] = {
    ("instructions",): "",
    ("tools",): [],
    ("modalities",): ["text", "audio"],
    ("tool_choice",): "auto",
    ("temperature",): 0.8,
    ("max_response_output_tokens",): "inf",
    ("speed",): 1.0,
    ("voice",): "alloy",
    ("turn_detection",): {"type": "server_vad"},
}
IGNORED = frozenset({"type"})
"""GA's `session.type` is not a setting; the dialect adds it to every update."""


def minimal_session(before: Mapping[str, Any], after: Mapping[str, Any], *, beta: bool,
                    path: Path = ()) -> dict[str, Any]:
    """The partial session that turns `before` into `after` (both full payloads)."""
    containers = BETA_CONTAINERS if beta else GA_CONTAINERS
    removed = BETA_REMOVED if beta else GA_REMOVED
    out: dict[str, Any] = {}
    for key in [*after, *(k for k in before if k not in after)]:
        if not path and key in IGNORED:
            continue
        here = (*path, key)
        old, new = before.get(key), after.get(key)
        nested = here in containers
        if key in after:
            if nested and isinstance(old, Mapping) and isinstance(new, Mapping):
                part = minimal_session(old, new, beta=beta, path=here)
                if part:
                    out[key] = part
            elif key not in before or old != new:
                out[key] = new
        elif nested and isinstance(old, Mapping):
            part = minimal_session(old, {}, beta=beta, path=here)
            if part:
                out[key] = part
        else:
            out[key] = removed.get(here)
    return out


def echo_differences(intended: Mapping[str, Any], echo: Mapping[str, Any],
                     pointer: str = "") -> list[str]:
    """JSON Pointers (in the session) where the echo does not hold what was intended. The server
    fills in defaults (a `turn_detection` gains its thresholds), so an echo may hold more."""
    found: list[str] = []
    for key, want in intended.items():
        where = f"{pointer}/{key}"
        got = echo.get(key)
        if isinstance(want, Mapping) and isinstance(got, Mapping):
            found.extend(echo_differences(want, got, where))
        elif isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
            for index, (w, g) in enumerate(zip(want, got, strict=True)):
                if isinstance(w, Mapping) and isinstance(g, Mapping):
                    found.extend(echo_differences(w, g, f"{where}/{index}"))
                elif w != g:
                    found.append(f"{where}/{index}")
        elif want != got:
            found.append(where)
    return found


def merge_delta(base: Mapping[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """`delta` merged into `base` as a JSON merge patch: mappings recurse, `None` removes the
    key (the setting falls back to its default), anything else replaces."""
    merged = dict(base)
    for key, value in delta.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping):
            inner = merged.get(key)
            merged[key] = merge_delta(inner if isinstance(inner, Mapping) else {}, value)
        else:
            merged[key] = value
    return merged
