"""Reply audio synthesis and the energy VAD, tested directly and through a session."""

from __future__ import annotations

import numpy as np
import pytest
from openai import AsyncOpenAI

from flowspec.emulator import voice
from flowspec.emulator.vad import EnergyVad, SpeechStarted, SpeechStopped, level

from .helpers import b64, chunks, events_until, silence, tone

SENTENCE = "Hello there, how are you today? I am fine."


def frame_rms(pcm16: bytes, rate: int) -> np.ndarray:
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64) / 32768.0
    frame = rate // 50
    usable = samples[: len(samples) // frame * frame].reshape(-1, frame)
    result: np.ndarray = np.sqrt((usable**2).mean(axis=1))
    return result


def test_timeline_deltas_rebuild_the_text_and_tile_the_audio() -> None:
    segments = voice.timeline(SENTENCE)
    assert "".join(s.text for s in segments) == SENTENCE
    assert all(a.end_ms == b.start_ms for a, b in zip(segments, segments[1:], strict=False))
    assert segments[0].start_ms == 0 and segments[-1].end_ms == voice.duration_ms(SENTENCE)
    assert voice.timeline("") == []


@pytest.mark.parametrize("rate", [24000, 8000])
def test_synthesized_speech_is_audible_speech_like_and_as_long_as_its_pacing(rate: int) -> None:
    audio = voice.synthesize(SENTENCE, rate)
    assert len(audio) == voice.duration_ms(SENTENCE) * rate // 1000 * 2
    levels = frame_rms(audio, rate)
    assert levels.max() > 0.1
    # Speech-like: syllables and word gaps make loudness rise and fall, unlike a steady tone.
    assert (levels < 0.01).mean() > 0.1 and (levels > 0.05).mean() > 0.3
    spectrum = np.abs(np.fft.rfft(np.frombuffer(audio, dtype="<i2").astype(np.float64)))
    freqs = np.fft.rfftfreq(len(audio) // 2, 1 / rate)
    assert 80 < freqs[int(np.argmax(spectrum))] < 1500


def test_synthesis_is_deterministic() -> None:
    assert voice.synthesize("same words") == voice.synthesize("same words")
    assert voice.synthesize("same words") != voice.synthesize("other words")


def test_level_maps_decibels() -> None:
    assert level(silence(20)) == 0.0
    assert level(tone(20, amplitude=1.0)) > 0.9
    assert 0.27 < level(tone(20, amplitude=0.01)) < 0.3  # RMS -43 dBFS: (60 - 43) / 60


def test_vad_timings_follow_the_audio_in_uneven_chunks() -> None:
    vad = EnergyVad(sample_rate=24000, prefix_padding_ms=300, silence_duration_ms=500)
    audio = silence(1000) + tone(800) + silence(900)
    events = []
    for start in range(0, len(audio), 1234):
        events += vad.feed(audio[start : start + 1234])
    assert events == [SpeechStarted(700), SpeechStopped(2300)]


def test_vad_threshold_is_honoured() -> None:
    quiet = silence(200) + tone(400, amplitude=0.01) + silence(600)
    assert EnergyVad(sample_rate=24000, threshold=0.5).feed(quiet) == []
    low = EnergyVad(sample_rate=24000, threshold=0.2, prefix_padding_ms=0).feed(quiet)
    assert low == [SpeechStarted(200), SpeechStopped(800)]


def test_vad_prefix_padding_stops_at_the_buffer_start() -> None:
    vad = EnergyVad(sample_rate=8000, prefix_padding_ms=300)
    vad.feed(silence(500, rate=8000))
    vad.buffer_reset()
    assert vad.feed(silence(100, rate=8000) + tone(200, rate=8000)) == [SpeechStarted(500)]


def test_vad_hears_a_synthesized_sentence_as_one_turn() -> None:
    vad = EnergyVad(sample_rate=24000, prefix_padding_ms=0, silence_duration_ms=500)
    events = vad.feed(silence(400) + voice.synthesize(SENTENCE) + silence(600))
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped]
    assert abs(events[0].audio_start_ms - 400) <= 20  # type: ignore[union-attr]


async def test_semantic_vad_eagerness_sets_the_silence(client: AsyncOpenAI) -> None:
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.recv()
        await conn.session.update(session={"type": "realtime", "audio": {"input": {
            "turn_detection": {"type": "semantic_vad", "eagerness": "high",
                               "create_response": False}}}})
        updated = (await conn.recv()).model_dump()
        detection = updated["session"]["audio"]["input"]["turn_detection"]
        assert detection == {"type": "semantic_vad", "eagerness": "high",
                             "create_response": False, "interrupt_response": True}
        for chunk in chunks(silence(200) + tone(800) + silence(400)):
            await conn.input_audio_buffer.append(audio=b64(chunk))
        events = await events_until(conn, "conversation.item.done")
        stopped = [e for e in events if e.type == "input_audio_buffer.speech_stopped"][0]
        assert abs(stopped.audio_end_ms - (1000 + 250)) <= 20
        # create_response false: the turn is committed but no response starts.
        await conn.session.update(session={"type": "realtime"})
        assert (await conn.recv()).type == "session.updated"
