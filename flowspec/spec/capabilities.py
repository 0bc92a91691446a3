"""What each OpenAI model takes, in one place: validate warns from it and the wire builders
leave out from it, so a field validate says "will not be sent" is never sent."""

from __future__ import annotations

import re

_REASONING_RESPONSES = re.compile(r"^(o\d|gpt-5)(?!.*-chat)")
_REASONING_REALTIME = re.compile(r"^gpt-realtime-2")

SPEECH_ONLY_VOICES = frozenset({"fable", "onyx", "nova"})
"""Voices of the speech API (tts-1, gpt-4o-mini-tts) that no Realtime model speaks with."""

TRANSCRIPTION_NO_PROMPT = frozenset({"gpt-realtime-whisper"})
"""Transcription models that take no `prompt`."""


def reasoning_supported(model: str, *, realtime: bool) -> bool:
    """Whether `model` accepts `reasoning` (Realtime: gpt-realtime-2 and later; Responses: the
    o-series and gpt-5, not their -chat variants)."""
    pattern = _REASONING_REALTIME if realtime else _REASONING_RESPONSES
    return bool(pattern.match(model))


def transcription_prompt_supported(model: str) -> bool:
    return model not in TRANSCRIPTION_NO_PROMPT
