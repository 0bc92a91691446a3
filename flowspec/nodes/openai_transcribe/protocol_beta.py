"""The beta transcription session on the wire: `transcription_session.update` with a flat
session, sent with `OpenAI-Beta: realtime=v1`, answered by `transcription_session.updated`.

The beta server announces nothing on connect: the client configures the session first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowspec.nodes.openai_realtime.delta import minimal_session
from flowspec.nodes.openai_transcribe.protocol import transcription, turn_detection
from flowspec.spec.models.speech import TranscribeSettingsSpec

NAME = "beta"
HEADERS: dict[str, str] = {"OpenAI-Beta": "realtime=v1"}
UPDATE = "transcription_session.update"
UPDATED = "transcription_session.updated"
WAITS_FOR_CREATED = False


def session(settings: TranscribeSettingsSpec, extra: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"input_audio_format": "pcm16",
                            "input_audio_transcription": transcription(settings)}
    if settings.noise_reduction:
        body["input_audio_noise_reduction"] = {"type": settings.noise_reduction}
    given, detection = turn_detection(settings)
    if given:
        body["turn_detection"] = detection
    if settings.include:
        body["include"] = list(settings.include)
    body.update(extra)
    return body


def update(session: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": UPDATE, "session": dict(session)}


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    return minimal_session(before, after, beta=True)
