"""The GA transcription session on the wire: `session.update` with `session.type:
"transcription"`, its nested `audio.input`, and `session.updated` as the answer.

The server speaks first (`session.created`); only then is the session configured."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowspec.nodes.openai_realtime.delta import minimal_session
from flowspec.spec.capabilities import transcription_prompt_supported
from flowspec.spec.models.speech import TranscribeSettingsSpec

NAME = "ga"
HEADERS: dict[str, str] = {}
UPDATE = "session.update"
UPDATED = "session.updated"
WAITS_FOR_CREATED = True
"""The server opens with `session.created`; the update follows it."""


def transcription(settings: TranscribeSettingsSpec) -> dict[str, Any]:
    """The `transcription` object both dialects send (no prompt where the model refuses one)."""
    body: dict[str, Any] = {"model": settings.model}
    if settings.language:
        body["language"] = settings.language
    if settings.prompt and transcription_prompt_supported(settings.model):
        body["prompt"] = settings.prompt
    return body


def turn_detection(settings: TranscribeSettingsSpec) -> tuple[bool, dict[str, Any] | None]:
    """(given, value): `false` is sent as `null`; an omitted one is not sent."""
    detection = settings.turn_detection
    if detection is None:
        return False, None
    if detection is False:
        return True, None
    return True, detection.model_dump(exclude_none=True)


def session(settings: TranscribeSettingsSpec, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The whole session the settings ask for; `extra` is merged last."""
    audio_in: dict[str, Any] = {"format": {"type": "audio/pcm", "rate": 24000},
                                "transcription": transcription(settings)}
    if settings.noise_reduction:
        audio_in["noise_reduction"] = {"type": settings.noise_reduction}
    given, detection = turn_detection(settings)
    if given:
        audio_in["turn_detection"] = detection
    body: dict[str, Any] = {"type": "transcription", "audio": {"input": audio_in}}
    if settings.include:
        body["include"] = list(settings.include)
    body.update(extra)
    return body


def update(session: Mapping[str, Any]) -> dict[str, Any]:
    """The client event carrying `session` (a whole one, or what `changes` returns)."""
    return {"type": UPDATE, "session": dict(session)}


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The partial session that turns `before` into `after`; empty when nothing changed."""
    partial = minimal_session(before, after, beta=False)
    return {"type": "transcription", **partial} if partial else {}
