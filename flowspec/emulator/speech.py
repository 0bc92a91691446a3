"""`POST /v1/audio/speech`: text to speech-like audio, streamed.

The audio is the emulator's voice (`voice.py`): voiced syllables whose length follows the text as
the Realtime voice's does, stretched by `speed`. It streams in `chunk_ms` pieces, faster than
real time as OpenAI's service does, either as the raw body (`pcm`: 24 kHz PCM16; `wav`: the same
with a RIFF header) or, with `stream_format: "sse"`, as `speech.audio.delta` events carrying
base64 audio and a closing `speech.audio.done` with usage. Errors are OpenAI's JSON bodies: 401
without an API key, 400 for a bad field (an unknown voice among them), and what a script rule
with `when: {api: speech}` says (a 429, say), before any audio. A client that hangs up stops the
stream; its record is marked `cut_short`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from typing import Any

import numpy as np
from aiohttp import web

from flowspec.emulator import voice
from flowspec.emulator.records import ConnectionRecord
from flowspec.emulator.responses_http import error_response
from flowspec.emulator.script import Script, Turn
from flowspec.emulator.wire import (
    JSONObject,
    WireError,
    check_keys,
    estimate_tokens,
    invalid_type,
    invalid_value,
    missing_parameter,
    new_id,
)

RATE = 24000
MAX_INPUT = 4096
SPEED_UP = 4.0
"""How much faster than real time audio streams (at `pace` 1.0): synthesis outruns playback."""
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-03-20",
          "gpt-4o-mini-tts-2025-12-15")
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin",
          "cedar", "fable", "onyx", "nova")
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
SYNTHESIZED = ("pcm", "wav")
_KEYS = frozenset({"input", "model", "voice", "instructions", "response_format", "speed",
                   "stream_format"})
NO_KEY = ("You didn't provide an API key. You need to provide your API key in an Authorization "
          "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")


async def handle_speech(request: web.Request, *, record: ConnectionRecord,
                        script: Script | None, pace: float, chunk_ms: int,
                        number: int) -> web.StreamResponse:
    """One request; `number` counts the speech requests the emulator has served."""
    request_id = new_id("req")
    text = await request.text()
    record.note_received(text)
    try:
        body = _validate(request, text)
        rule = script.match(Turn("speech", number, body["input"], "text")) \
            if script is not None else None
        if rule is not None and rule.stall_ms:
            await asyncio.sleep(rule.stall_ms / 1000)
        if rule is not None and rule.fail is not None:
            fail = rule.fail
            raise WireError(fail.message, code=fail.code, param=fail.param, type=fail.type,
                            status=fail.status)
    except WireError as err:
        record.note_sent({"http_status": err.status, "error": err.body()})
        return error_response(err, request_id)
    audio = _audio(body["input"], float(body.get("speed", 1.0)))
    sse = body.get("stream_format") == "sse"
    wav = body.get("response_format") == "wav"
    reply = web.StreamResponse(headers={
        "Content-Type": "text/event-stream; charset=utf-8" if sse
        else "audio/wav" if wav else "audio/pcm",
        "x-request-id": request_id})
    reply.enable_chunked_encoding()
    await reply.prepare(request)
    payload = _wav_header(len(audio)) + audio if wav else audio
    step = RATE * 2 * chunk_ms // 1000
    try:
        for offset in range(0, len(payload), step):
            if rule is not None and rule.drop and offset:
                _abort(request)
                return reply
            chunk = payload[offset:offset + step]
            if sse:
                await _event(reply, record, {"type": "speech.audio.delta",
                                             "audio": base64.b64encode(chunk).decode()})
            else:
                await reply.write(chunk)
            await asyncio.sleep(chunk_ms / 1000 * pace / SPEED_UP)
        if sse:
            tokens_in, tokens_out = estimate_tokens(body["input"]), len(audio) // 4800
            await _event(reply, record, {"type": "speech.audio.done", "usage": {
                "input_tokens": tokens_in, "output_tokens": tokens_out,
                "total_tokens": tokens_in + tokens_out}})
        else:
            record.note_sent({"audio_bytes": len(payload)})
        await reply.write_eof()
    except (asyncio.CancelledError, ConnectionResetError):
        record.cut_short = True
        raise
    return reply


def _validate(request: web.Request, text: str) -> JSONObject:
    authorization = request.headers.get("Authorization", "")
    if not authorization.startswith("Bearer ") or not authorization[7:].strip():
        raise WireError(NO_KEY, code=None, status=401)
    try:
        body: Any = json.loads(text)
    except ValueError as exc:
        raise WireError("We could not parse the JSON body of your request.",
                        code="invalid_json") from exc
    if not isinstance(body, dict):
        raise WireError("We could not parse the JSON body of your request: expected a JSON "
                        "object.", code="invalid_json")
    check_keys(body, _KEYS, "")
    for name in ("input", "model", "voice"):
        if name not in body:
            raise missing_parameter(name)
    words = body["input"]
    if not isinstance(words, str):
        raise invalid_type("input", "a string", words)
    if not words or len(words) > MAX_INPUT:
        raise WireError(f"Invalid 'input': expected a string of 1 to {MAX_INPUT} characters, "
                        f"but got {len(words)}.", code="string_above_max_length"
                        if words else "string_below_min_length", param="input")
    model = body["model"]
    if model not in MODELS:
        raise invalid_value("model", f"Invalid value: '{model}'. Supported values are: "
                            + ", ".join(f"'{m}'" for m in MODELS) + ".")
    _voice(body["voice"])
    fmt = body.get("response_format", "mp3")
    if fmt not in FORMATS:
        raise invalid_value("response_format", f"Invalid value: '{fmt}'. Supported values are: "
                            + ", ".join(f"'{f}'" for f in FORMATS) + ".")
    if fmt not in SYNTHESIZED:
        raise invalid_value("response_format", f"The emulator synthesizes 'pcm' and 'wav' only, "
                            f"not '{fmt}'.")
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4:
        raise invalid_value("speed", "Invalid 'speed': expected a number from 0.25 to 4.0.")
    stream = body.get("stream_format", "audio")
    if stream not in ("audio", "sse"):
        raise invalid_value("stream_format", f"Invalid value: '{stream}'. Supported values "
                            "are: 'sse' and 'audio'.")
    if stream == "sse" and model in ("tts-1", "tts-1-hd"):
        raise invalid_value("stream_format", f"stream_format 'sse' is not supported for {model}.")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid_type("instructions", "a string", instructions)
    return body


def _voice(value: Any) -> None:
    if isinstance(value, dict):
        check_keys(value, frozenset({"id"}), "voice.")
        if isinstance(value.get("id"), str) and value["id"].startswith("voice_"):
            return
        raise invalid_value("voice.id", f"Invalid custom voice id: {value.get('id')!r}.")
    if value not in VOICES:
        raise invalid_value("voice", f"Invalid value: '{value}'. Supported values are: "
                            + ", ".join(f"'{v}'" for v in VOICES) + ".")


def _audio(text: str, speed: float) -> bytes:
    pcm = voice.synthesize(text, RATE)
    if speed == 1.0 or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    count = max(1, round(len(samples) / speed))
    stretched = np.interp(np.linspace(0, len(samples) - 1, count), np.arange(len(samples)),
                          samples)
    return stretched.astype("<i2").tobytes()


def _wav_header(size: int) -> bytes:
    return (b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, RATE, RATE * 2, 2, 16)
            + b"data" + struct.pack("<I", size))


async def _event(reply: web.StreamResponse, record: ConnectionRecord, event: JSONObject) -> None:
    record.note_sent(event)
    await reply.write(f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode())


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()
