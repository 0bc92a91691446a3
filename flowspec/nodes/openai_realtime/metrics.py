"""Realtime metrics: time to first byte, processing time, and token usage per response."""

from __future__ import annotations

from typing import Any


class ResponseClock:
    """TTFB runs from the end of the user's speech (or `response.create`) to the first audio or
    text; processing time from the same start to `response.done`."""

    def __init__(self) -> None:
        self._started: float | None = None
        self._first: bool = False

    def start(self, now: float) -> None:
        if self._started is None:
            self._started, self._first = now, False

    def first_output(self, now: float) -> float | None:
        """TTFB in ms, once per response."""
        if self._started is None or self._first:
            return None
        self._first = True
        return (now - self._started) * 1000.0

    def done(self, now: float) -> float | None:
        started, self._started = self._started, None
        return None if started is None else (now - started) * 1000.0

    def stop(self) -> None:
        self._started = None


def usage_values(usage: Any) -> dict[str, float]:
    """Token counts from a `response.done` usage object (both dialects), flat and named."""
    if not isinstance(usage, dict):
        return {}
    inputs = usage.get("input_token_details") or {}
    outputs = usage.get("output_token_details") or {}
    cached = inputs.get("cached_tokens_details") or {}
    pairs = {
        "prompt_tokens": usage.get("input_tokens"),
        "completion_tokens": usage.get("output_tokens"),
        "total_tokens": usage.get("total_tokens"),
        "cached_input_tokens": inputs.get("cached_tokens"),
        "input_text_tokens": inputs.get("text_tokens"),
        "input_audio_tokens": inputs.get("audio_tokens"),
        "input_image_tokens": inputs.get("image_tokens"),
        "cached_audio_tokens": cached.get("audio_tokens"),
        "cached_text_tokens": cached.get("text_tokens"),
        "output_text_tokens": outputs.get("text_tokens"),
        "output_audio_tokens": outputs.get("audio_tokens"),
    }
    return {name: float(value) for name, value in pairs.items()
            if isinstance(value, int | float) and not isinstance(value, bool)}
