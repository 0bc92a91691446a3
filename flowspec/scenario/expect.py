"""Expectations of a scenario checked against what one call did: the first that fails is
reported, located at the expectation in the test file, saying what was expected and what
happened instead."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowspec.scenario.model import Expectation, TextMatch


@dataclass(slots=True)
class Observed:
    """What a stretch of a call (one turn, or all of it) did, as the expectations read it."""

    said: list[str] = field(default_factory=list)
    tools: list[tuple[str, Any]] = field(default_factory=list)
    """(function name, arguments as parsed) of each call the model made."""
    updates: list[dict[str, Any]] = field(default_factory=list)
    """The `session` of each `session.update` on the wire."""
    errors: list[str] = field(default_factory=list)
    late_audio_ms: float = 0.0
    interrupted: int = 0
    ended: str | None = None
    """Why the call ended, once it has."""
    latencies_ms: list[float] = field(default_factory=list)
    webhooks: list[dict[str, Any]] = field(default_factory=list)
    """The events the spec's webhooks would have posted."""
    state: str | None = None
    """The flow state the call was in at the end (None: the spec has no flow)."""
    path: list[str] = field(default_factory=list)
    """The flow states the call went through, from its first."""


def check(expectation: Expectation, seen: Observed) -> str | None:
    """None when `expectation` holds for `seen`, else what went wrong (one sentence)."""
    kind = expectation.kind
    value = getattr(expectation, kind)
    said = " ".join(seen.said).strip()
    match kind:
        case "bot_said":
            return None if _matches(value, said) else \
                f"the bot was to say {_describe(value)}; it said {_quote(said)}"
        case "bot_did_not_say":
            return f"the bot said {_describe(value)}: {_quote(said)}" \
                if _matches(value, said) else None
        case "tool_called":
            for name, arguments in seen.tools:
                if name == value.name and _contains(arguments, value.arguments):
                    return None
            made = ", ".join(f"{n}({json.dumps(a, ensure_ascii=False)})" for n, a in seen.tools)
            want = f"{value.name}({json.dumps(value.arguments, ensure_ascii=False)})"
            return f"no call {want}; the model called {made or 'no tool'}"
        case "no_tool_called":
            names = ", ".join(name for name, _ in seen.tools)
            return f"the model called {names}" if value and seen.tools else None
        case "session_update":
            if any(_contains(update, value) for update in seen.updates):
                return None
            return (f"no session.update holding {json.dumps(value, ensure_ascii=False)}; "
                    f"{len(seen.updates)} sent: "
                    f"{_quote(json.dumps(seen.updates, ensure_ascii=False), 300)}")
        case "no_audio_after_interrupt":
            if value and seen.late_audio_ms > 0:
                return (f"{seen.late_audio_ms:.0f} ms of an interrupted reply's audio reached "
                        "the caller after the interruption")
            if value and not seen.interrupted:
                return "nothing was interrupted"
            return None
        case "call_ended":
            if seen.ended is None:
                return "the call had not ended"
            if value.reason and value.reason.lower() not in seen.ended.lower():
                return f"the call ended with {_quote(seen.ended)}, not {_quote(value.reason)}"
            return None
        case "error":
            errors = " | ".join(seen.errors)
            return None if any(_matches(value, e) for e in seen.errors) else \
                f"no error {_describe(value)}; errors: {_quote(errors) if errors else 'none'}"
        case "no_error":
            return f"the caller was told: {_quote(' | '.join(seen.errors))}" \
                if value and seen.errors else None
        case "webhook":
            if any(_contains(event, value) for event in seen.webhooks):
                return None
            kinds = ", ".join(str(e.get("type")) for e in seen.webhooks) or "none"
            return (f"no webhook event holding {json.dumps(value, ensure_ascii=False)}; "
                    f"events: {kinds}")
        case "flow_state":
            if seen.state is None:
                return "the spec has no flow:"
            if seen.state == value:
                return None
            return f"the call was in state {seen.state!r} (path: {' → '.join(seen.path)})"
        case "latency_added_ms":
            if not seen.latencies_ms:
                return "no reply audio arrived to time"
            p99 = percentile(seen.latencies_ms, 99)
            return None if p99 <= value.max else \
                f"p99 {p99:.2f} ms over {len(seen.latencies_ms)} audio frames, above {value.max}"
    raise AssertionError(f"unknown expectation {kind}")


def _matches(match: TextMatch, text: str) -> bool:
    if match.contains is not None:
        return match.contains.lower() in text.lower()
    if match.regex is not None:
        return re.search(match.regex, text, re.IGNORECASE) is not None
    return text.strip() == (match.exact or "").strip()


def _describe(match: TextMatch) -> str:
    if match.contains is not None:
        return f"something containing {_quote(match.contains)}"
    if match.regex is not None:
        return f"something matching /{match.regex}/"
    return f"exactly {_quote(match.exact or '')}"


def _contains(actual: Any, wanted: Any) -> bool:
    """`wanted` is a part of `actual`: objects by their given keys, everything else equal."""
    if isinstance(wanted, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and _contains(actual[key], value) for key, value in wanted.items())
    if isinstance(wanted, float | int) and isinstance(actual, float | int) and \
            not isinstance(wanted, bool):
        return math.isclose(float(actual), float(wanted), rel_tol=1e-9)
    return bool(actual == wanted)


def _quote(text: str, limit: int = 160) -> str:
    shown = text if len(text) <= limit else text[:limit - 1] + "…"
    return json.dumps(shown, ensure_ascii=False)


def percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]
