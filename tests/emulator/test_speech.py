"""`POST /v1/audio/speech` driven by the official SDK's streaming client: raw PCM, WAV and the
SSE stream format, and the errors (401, 400 for a bad voice, a scripted 429). The SSE events are
checked on the fixture's teardown, every request body here."""

from __future__ import annotations

import base64
import io
import json
import wave

import numpy as np
import openai
import pytest
from openai import AsyncOpenAI

from flowspec.emulator import Emulator, parse_script, voice
from flowspec.emulator.records import ConnectionRecord

from .conformance import check_speech_request

TEXT = "Hello there. The weather in Paris is mild today."
RATE = 24000


def requests(emulator: Emulator) -> list[ConnectionRecord]:
    records = emulator.of_kind("speech")
    assert records
    for record in records:
        (body,) = record.received
        check_speech_request(body)
    return records


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
    return float(np.sqrt(np.mean(samples * samples)))


async def test_pcm_streams_in_pieces_speech_whose_length_follows_the_text(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    pieces: list[bytes] = []
    async with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="marin", input=TEXT, response_format="pcm",
            instructions="Warmly.") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/pcm"
        assert response.headers["x-request-id"].startswith("req_")
        async for chunk in response.iter_bytes():
            pieces.append(chunk)
    audio = b"".join(pieces)
    assert len(pieces) > 1  # streamed, not one body at the end
    assert len(audio) == voice.duration_ms(TEXT) * RATE * 2 // 1000
    assert rms(audio) > 0.02
    short = b""
    async with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input="Hi.", response_format="pcm",
            speed=2.0) as response:
        async for chunk in response.iter_bytes():
            short += chunk
    # Twice as fast is half as long.
    assert abs(len(short) / 2 - voice.duration_ms("Hi.") * RATE / 2000) <= 1
    first, second = requests(emulator)
    assert first.received[0] == {"input": TEXT, "model": "gpt-4o-mini-tts", "voice": "marin",
                                 "response_format": "pcm", "instructions": "Warmly."}
    assert first.sent == [{"audio_bytes": len(audio)}] and not first.cut_short
    assert first.headers["Authorization"] == "Bearer test-key"
    assert second.received[0]["speed"] == 2.0


async def test_wav_has_a_header_that_says_24_khz_mono_pcm16(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    async with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice={"id": "voice_1234"}, input=TEXT,
            response_format="wav") as response:
        assert response.headers["content-type"] == "audio/wav"
        body = await response.read()
    with wave.open(io.BytesIO(body)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)
        frames = wav.readframes(wav.getnframes())
    assert len(frames) == voice.duration_ms(TEXT) * RATE * 2 // 1000
    requests(emulator)


async def test_sse_stream_format_sends_audio_deltas_then_done_with_usage(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    lines: list[str] = []
    async with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="cedar", input=TEXT, response_format="pcm",
            stream_format="sse") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.iter_lines():
            lines.append(line)
    events = [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["speech.audio.delta"] * (len(events) - 1) + [
        "speech.audio.done"]
    assert len(events) > 2
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert len(audio) == voice.duration_ms(TEXT) * RATE * 2 // 1000
    usage = events[-1]["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    (record,) = requests(emulator)
    assert record.sent == events


async def test_no_api_key_is_401(emulator: Emulator) -> None:
    async with AsyncOpenAI(api_key="unused", base_url=emulator.http_base_url,
                           max_retries=0) as anonymous:
        with pytest.raises(openai.AuthenticationError) as refused:
            async with anonymous.audio.speech.with_streaming_response.create(
                    model="gpt-4o-mini-tts", voice="marin", input="Hi.",
                    response_format="pcm", extra_headers={"Authorization": ""}):
                pass
    assert refused.value.status_code == 401
    assert "didn't provide an API key" in refused.value.message
    (record,) = emulator.of_kind("speech")
    assert record.sent[0]["http_status"] == 401


async def test_a_bad_voice_and_other_bad_fields_are_400_before_any_audio(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as voice_refused:
        async with client.audio.speech.with_streaming_response.create(
                model="gpt-4o-mini-tts", voice="robot", input="Hi.", response_format="pcm"):
            pass
    error = voice_refused.value.body
    assert isinstance(error, dict)
    assert error["param"] == "voice" and error["code"] == "invalid_value"
    assert "'marin'" in error["message"]
    with pytest.raises(openai.BadRequestError) as sse_refused:
        async with client.audio.speech.with_streaming_response.create(
                model="tts-1", voice="alloy", input="Hi.", response_format="pcm",
                stream_format="sse"):
            pass
    assert isinstance(sse_refused.value.body, dict)
    assert sse_refused.value.body["param"] == "stream_format"
    with pytest.raises(openai.BadRequestError) as empty:
        async with client.audio.speech.with_streaming_response.create(
                model="tts-1", voice="alloy", input="", response_format="pcm"):
            pass
    assert isinstance(empty.value.body, dict) and empty.value.body["param"] == "input"
    assert [record.sent[0]["http_status"] for record in requests(emulator)] == [400, 400, 400]


async def test_a_scripted_429_refuses_that_request_and_the_next_one_speaks(
    emulator: Emulator, client: AsyncOpenAI
) -> None:
    emulator.script = parse_script("""
rules:
  - when: {api: speech}
    times: 1
    fail: {type: requests, code: rate_limit_exceeded, status: 429,
           message: "Rate limit reached for requests."}
""")
    with pytest.raises(openai.RateLimitError) as limited:
        async with client.audio.speech.with_streaming_response.create(
                model="gpt-4o-mini-tts", voice="marin", input="Hi.", response_format="pcm"):
            pass
    assert limited.value.status_code == 429 and limited.value.code == "rate_limit_exceeded"
    async with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="marin", input="Hi.", response_format="pcm") as ok:
        assert ok.status_code == 200
        assert await ok.read()
    assert [record.sent[0].get("http_status") for record in requests(emulator)] == [429, None]
