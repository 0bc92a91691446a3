"""Realtime transcription sessions (`/v1/realtime?intent=transcription`), GA and beta.

The client configures the session (GA `session.update` with `session.type: "transcription"`;
beta `transcription_session.update`) and streams audio; server VAD (the same energy detector as
Realtime sessions) finds the turns, or the client commits them. Each committed turn is
transcribed: the words come from the script's `audio_transcripts`, else a description of the
audio, as transcription deltas (one per word; whisper-1 sends the whole text at once), then
`completed` with usage. There is no model and no response. Events carry exactly the fields the
SDK's models declare: beta `transcription_session.updated` echoes only what its model knows.
"""

from __future__ import annotations

import base64
import binascii
import copy
import time
from collections.abc import Awaitable, Callable
from typing import Any

from flowspec.emulator import codec, voice
from flowspec.emulator import session as sessions
from flowspec.emulator import vad as vads
from flowspec.emulator.dialect import error_event, unknown_event
from flowspec.emulator.script import Script
from flowspec.emulator.session import AudioFormat, Dialect
from flowspec.emulator.wire import (
    JSONObject,
    WireError,
    check_keys,
    estimate_tokens,
    invalid_type,
    invalid_value,
    missing_parameter,
    new_id,
    parse_json_object,
    require_str,
)

Send = Callable[[JSONObject], Awaitable[None]]
MIN_COMMIT_MS = 100
LOGPROBS = "item.input_audio_transcription.logprobs"
MODELS = frozenset(["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe",
                    "gpt-4o-mini-transcribe-2025-12-15", "gpt-4o-transcribe-diarize",
                    "gpt-transcribe", "gpt-live-transcribe", "gpt-realtime-whisper"])
BETA_MODELS = frozenset(["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"])
_BUFFER_EVENTS = frozenset({"input_audio_buffer.append", "input_audio_buffer.commit",
                            "input_audio_buffer.clear"})
_UPDATE = {"ga": "session.update", "beta": "transcription_session.update"}
_GA_TRANSCRIPTION_KEYS = frozenset({"model", "language", "prompt", "delay", "keywords",
                                    "languages"})
_BETA_KEYS = frozenset({"client_secret", "include", "input_audio_format",
                        "input_audio_noise_reduction", "input_audio_transcription",
                        "modalities", "turn_detection"})
_BETA_ECHO_VAD = ("type", "threshold", "prefix_padding_ms", "silence_duration_ms")


class TranscriptionSession:
    """One transcription WebSocket connection. `handle()` never raises for bad client input."""

    def __init__(self, *, dialect: Dialect, send: Send, script: Script | None) -> None:
        self.dialect = dialect
        self._send_raw = send
        self._script = script
        self.format: AudioFormat = "pcm16"
        self.transcription: JSONObject | None = None
        self.noise_reduction: JSONObject | None = None
        self.turn_detection: JSONObject | None = {"type": "server_vad",
                                                  **sessions.SERVER_VAD_DEFAULTS}
        self.include: list[str] | None = None
        self._id = new_id("sess")
        self._expires_at = int(time.time()) + 3600
        self._buffer = bytearray()
        self._buffer_start_ms = 0.0
        self._appended_ms = 0.0
        self._vad: vads.EnergyVad | None = None
        self._speech_item: str | None = None
        self._previous: str | None = None
        self._configure_vad()

    async def start(self) -> None:
        # The beta union has no `transcription_session.created`: a beta client speaks first.
        if self.dialect == "ga":
            await self.send({"type": "session.created", "session": self.ga_session()})

    async def send(self, event: JSONObject) -> None:
        await self._send_raw({"type": event["type"], "event_id": new_id("event"),
                              **{k: v for k, v in event.items() if k != "type"}})

    async def handle(self, text: str) -> None:
        event_id: str | None = None
        try:
            event = parse_json_object(text)
            raw_id = event.get("event_id")
            event_id = raw_id if isinstance(raw_id, str) else None
            kind = event.get("type")
            if kind == _UPDATE[self.dialect]:
                check_keys(event, frozenset({"type", "event_id", "session"}), "")
                await self._update(event.get("session"))
            elif kind in _BUFFER_EVENTS:
                fields = {"audio"} if kind == "input_audio_buffer.append" else set()
                check_keys(event, frozenset({"type", "event_id", *fields}), "")
                await getattr(self, "_on_" + str(kind).rsplit(".", 1)[1])(event)
            elif kind in ("session.update", "transcription_session.update"):
                raise WireError("This is a transcription session: configure it with "
                                f"{_UPDATE[self.dialect]}.", code="invalid_value", param="type")
            else:
                raise unknown_event(kind)
        except WireError as err:
            await self.send(error_event(err, event_id))

    # -- the session ------------------------------------------------------------------------

    def ga_session(self) -> JSONObject:
        return {"type": "transcription", "object": "realtime.transcription_session",
                "id": self._id, "expires_at": self._expires_at,
                "audio": {"input": {"format": sessions.ga_format_object(self.format),
                                    "transcription": copy.deepcopy(self.transcription),
                                    "noise_reduction": copy.deepcopy(self.noise_reduction),
                                    "turn_detection": copy.deepcopy(self.turn_detection)}},
                "include": copy.deepcopy(self.include)}

    def beta_session(self) -> JSONObject:
        # The SDK's model requires `client_secret` although a WebSocket update carries none.
        vad = self.turn_detection
        transcription = self.transcription
        return {"client_secret": {"value": f"ek_{self._id}", "expires_at": self._expires_at},
                "input_audio_format": self.format,
                "input_audio_transcription": None if transcription is None else {
                    k: transcription[k] for k in ("model", "language", "prompt")
                    if k in transcription},
                "modalities": ["text"],
                "turn_detection": None if vad is None else {
                    k: vad[k] for k in _BETA_ECHO_VAD if k in vad}}

    async def _update(self, update: Any) -> None:
        if update is None:
            raise missing_parameter("session")
        if not isinstance(update, dict):
            raise invalid_type("session", "an object", update)
        if self.dialect == "ga":
            changes = _ga_changes(update)
        else:
            changes = _beta_changes(update)
        # All or nothing: every field was checked before any applies.
        for name, value in changes.items():
            setattr(self, name, value)
        self._configure_vad()
        if self.dialect == "ga":
            await self.send({"type": "session.updated", "session": self.ga_session()})
        else:
            await self.send({"type": "transcription_session.updated",
                             "session": self.beta_session()})

    def _configure_vad(self) -> None:
        detection = self.turn_detection
        if detection is None:
            self._vad = None
            return
        silence = detection.get("silence_duration_ms")
        if detection["type"] == "semantic_vad":
            silence = sessions.EAGERNESS_SILENCE_MS[detection.get("eagerness") or "auto"]
        self._vad = vads.EnergyVad(
            sample_rate=codec.sample_rate(self.format),
            threshold=float(detection.get("threshold", 0.5)),
            prefix_padding_ms=int(detection.get("prefix_padding_ms", 300)),
            silence_duration_ms=int(silence if silence is not None else 200),
            position_ms=self._appended_ms, buffer_start_ms=self._buffer_start_ms)

    # -- the input audio buffer -------------------------------------------------------------

    async def _on_append(self, event: JSONObject) -> None:
        try:
            data = base64.b64decode(require_str(event, "audio", "") or "", validate=True)
        except binascii.Error as exc:
            raise invalid_value("audio", "Invalid 'audio'. Expected base64-encoded audio.") from exc
        self._buffer += data
        self._appended_ms += len(data) / codec.bytes_per_ms(self.format)
        if self._vad is None:
            return
        for change in self._vad.feed(codec.to_pcm16(self.format, data)):
            if isinstance(change, vads.SpeechStarted):
                self._speech_item = new_id("item")
                await self.send({"type": "input_audio_buffer.speech_started",
                                 "audio_start_ms": change.audio_start_ms,
                                 "item_id": self._speech_item})
            else:
                item_id, self._speech_item = self._speech_item or new_id("item"), None
                await self.send({"type": "input_audio_buffer.speech_stopped",
                                 "audio_end_ms": change.audio_end_ms, "item_id": item_id})
                cut = int((change.audio_end_ms - self._buffer_start_ms)
                          * codec.bytes_per_ms(self.format))
                await self._commit(item_id, min(max(0, cut), len(self._buffer)))

    async def _on_commit(self, event: JSONObject) -> None:
        buffered = len(self._buffer) / codec.bytes_per_ms(self.format)
        if buffered < MIN_COMMIT_MS:
            raise WireError(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {buffered:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty")
        item_id, self._speech_item = self._speech_item or new_id("item"), None
        await self._commit(item_id, len(self._buffer))

    async def _on_clear(self, event: JSONObject) -> None:
        self._take(len(self._buffer))
        await self.send({"type": "input_audio_buffer.cleared"})

    def _take(self, upto: int) -> bytes:
        taken = bytes(self._buffer[:upto])
        del self._buffer[:upto]
        self._buffer_start_ms += upto / codec.bytes_per_ms(self.format)
        if self._vad is not None:
            self._vad.buffer_reset()
        return taken

    async def _commit(self, item_id: str, upto: int) -> None:
        audio_ms = len(self._take(upto)) / codec.bytes_per_ms(self.format)
        previous, self._previous = self._previous, item_id
        await self.send({"type": "input_audio_buffer.committed", "item_id": item_id,
                         "previous_item_id": previous})
        heard = self._script.next_transcript() if self._script is not None else None
        if self.transcription is not None:
            text = heard if heard is not None else f"({audio_ms / 1000:.1f} seconds of audio)"
            await self._transcribe(item_id, text, audio_ms)

    async def _transcribe(self, item_id: str, text: str, audio_ms: float) -> None:
        model = str((self.transcription or {}).get("model") or "")
        logprobs = self.include is not None and LOGPROBS in self.include
        pieces = [text] if model == "whisper-1" else [s.text for s in voice.timeline(text)]
        for piece in pieces:
            delta: JSONObject = {"type": "conversation.item.input_audio_transcription.delta",
                                 "item_id": item_id, "content_index": 0, "delta": piece}
            if logprobs:
                delta["logprobs"] = _logprobs(piece)
            await self.send(delta)
        usage: JSONObject
        if model == "whisper-1":
            usage = {"type": "duration", "seconds": round(audio_ms / 1000, 3)}
        else:
            audio_tokens, text_tokens = int(audio_ms) // 100, estimate_tokens(text)
            usage = {"type": "tokens", "input_tokens": audio_tokens, "output_tokens": text_tokens,
                     "total_tokens": audio_tokens + text_tokens,
                     "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens}}
        done: JSONObject = {"type": "conversation.item.input_audio_transcription.completed",
                            "item_id": item_id, "content_index": 0, "transcript": text,
                            "usage": usage}
        if logprobs:
            done["logprobs"] = _logprobs(text)
        await self.send(done)


def _logprobs(text: str) -> list[JSONObject]:
    return [{"token": word, "bytes": list(word.encode()), "logprob": -0.05}
            for word in text.split()]


def _ga_changes(update: JSONObject) -> dict[str, Any]:
    kind = update.get("type")
    if kind is None:
        raise missing_parameter("session.type")
    if kind == "realtime":
        raise WireError("Passing a realtime session update event to a transcription session is "
                        "not allowed.", param="session.type")
    if kind != "transcription":
        raise invalid_value("session.type", f"Invalid value: '{kind}'. Supported values are: "
                            "'realtime' and 'transcription'.")
    check_keys(update, frozenset({"type", "audio", "include"}), "session.")
    changes: dict[str, Any] = {}
    if "include" in update:
        changes["include"] = _include(update["include"], "session.include")
    audio = update.get("audio")
    if audio is None:
        return changes
    if not isinstance(audio, dict):
        raise invalid_type("session.audio", "an object", audio)
    check_keys(audio, frozenset({"input"}), "session.audio.")
    given = audio.get("input")
    if given is None:
        return changes
    if not isinstance(given, dict):
        raise invalid_type("session.audio.input", "an object", given)
    at = "session.audio.input."
    check_keys(given, frozenset({"format", "transcription", "noise_reduction",
                                 "turn_detection"}), at)
    if "format" in given:
        changes["format"] = sessions.ga_format(given["format"], at + "format")
    if "transcription" in given:
        changes["transcription"] = _transcription(given["transcription"], at + "transcription",
                                                  _GA_TRANSCRIPTION_KEYS, MODELS)
    if "noise_reduction" in given:
        changes["noise_reduction"] = _noise(given["noise_reduction"], at + "noise_reduction",
                                            frozenset({"type", "strength"}))
    if "turn_detection" in given:
        changes["turn_detection"] = sessions.turn_detection(given["turn_detection"],
                                                            at + "turn_detection", "ga")
    return changes


def _beta_changes(update: JSONObject) -> dict[str, Any]:
    check_keys(update, _BETA_KEYS, "session.")
    changes: dict[str, Any] = {}
    if "include" in update:
        changes["include"] = _include(update["include"], "session.include")
    if "input_audio_format" in update:
        changes["format"] = sessions.beta_format(update["input_audio_format"],
                                                 "session.input_audio_format")
    if "input_audio_transcription" in update:
        changes["transcription"] = _transcription(
            update["input_audio_transcription"], "session.input_audio_transcription",
            frozenset({"model", "language", "prompt"}), BETA_MODELS)
    if "input_audio_noise_reduction" in update:
        changes["noise_reduction"] = _noise(update["input_audio_noise_reduction"],
                                            "session.input_audio_noise_reduction",
                                            frozenset({"type"}))
    if "turn_detection" in update:
        changes["turn_detection"] = sessions.turn_detection(update["turn_detection"],
                                                            "session.turn_detection", "beta")
    return changes


def _transcription(value: Any, path: str, keys: frozenset[str],
                   models: frozenset[str]) -> JSONObject | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_type(path, "an object", value)
    check_keys(value, keys, path + ".")
    model = value.get("model")
    if model is None:
        raise missing_parameter(path + ".model")
    if model not in models:
        supported = ", ".join(f"'{name}'" for name in sorted(models))
        raise invalid_value(path + ".model", f"Invalid value: '{model}'. Supported values are: "
                            f"{supported}.")
    for key in ("language", "prompt"):
        if value.get(key) is not None and not isinstance(value[key], str):
            raise invalid_type(f"{path}.{key}", "a string", value[key])
    return copy.deepcopy(value)


def _noise(value: Any, path: str, keys: frozenset[str]) -> JSONObject | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_type(path, "an object", value)
    check_keys(value, keys, path + ".")
    if value.get("type") not in ("near_field", "far_field"):
        raise invalid_value(path + ".type", f"Invalid value: '{value.get('type')}'. Supported "
                            "values are: 'near_field' and 'far_field'.")
    return copy.deepcopy(value)


def _include(value: Any, path: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or any(entry != LOGPROBS for entry in value):
        raise invalid_value(path, f"Invalid value: supported values are: '{LOGPROBS}'.")
    return list(value)
