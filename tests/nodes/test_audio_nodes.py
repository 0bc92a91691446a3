"""audio.convert and audio.record inside a running session."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from flowspec.audio import ulaw_encode
from flowspec.frames import AudioFrame, InterruptFrame, PlaybackProgressFrame, TextFrame
from flowspec.spec.models.audio import AudioConvertSpec, AudioRecordSpec
from flowspec.testing import graph, make_registry, run_graph


def convert_spec() -> AudioConvertSpec:
    return AudioConvertSpec.model_validate({
        "type": "audio.convert", "input": {"encoding": "pcmu", "sample_rate": 8000},
        "output": {"encoding": "pcm16", "sample_rate": 24000}})


async def test_convert_transcodes_audio_and_passes_other_frames() -> None:
    compiled = graph({"src": "test.recorder", "conv": convert_spec(), "sink": "test.recorder"},
                     ["src -> conv -> sink"])
    pcm = (np.sin(np.arange(1600) / 8) * 6000).astype("<i2").tobytes()
    inputs = [("src", AudioFrame(audio=ulaw_encode(pcm[i:i + 320]), encoding="pcmu",
                                 sample_rate=8000, item_id="it")) for i in range(0, 3200, 320)]
    progress = PlaybackProgressFrame(item_id="it", played_ms=5)
    run = await run_graph(compiled, [*inputs, ("src", progress), ("src", TextFrame(text="x"))])
    audio = run.frames("sink", AudioFrame)
    assert {(f.encoding, f.sample_rate, f.item_id) for f in audio} == {("pcm16", 24000, "it")}
    # 200 ms in; all but the resampler's look-ahead comes out, at three times the rate.
    total = sum(len(f.audio) for f in audio)
    assert 24000 * 2 * 0.19 < total <= 24000 * 2 * 0.2
    assert run.frames("sink", PlaybackProgressFrame) == [progress]
    assert run.frames("sink", TextFrame) == [TextFrame(text="x")]


async def test_convert_passes_audio_already_in_the_output_format() -> None:
    compiled = graph({"src": "test.recorder", "conv": convert_spec(), "sink": "test.recorder"},
                     ["src -> conv -> sink"])
    frame = AudioFrame(audio=b"\x01\x02" * 240, sample_rate=24000)
    run = await run_graph(compiled, [("src", frame)])
    assert run.frames("sink", AudioFrame) == [frame]


async def test_record_writes_user_left_bot_right_and_cuts_on_interrupt(tmp_path: Path) -> None:
    spec = AudioRecordSpec.model_validate({"type": "audio.record", "sample_rate": 8000,
                                           "path": str(tmp_path / "{session_id}.wav")})
    compiled = graph({"user": "test.recorder", "bot": "test.recorder", "rec": spec},
                     ["user -> rec.user", "bot -> rec.bot"])
    user = AudioFrame(audio=np.full(800, 100, "<i2").tobytes(), sample_rate=8000)  # 100 ms
    bot = AudioFrame(audio=np.full(1600, 200, "<i2").tobytes(), sample_rate=8000)  # 200 ms
    run = await run_graph(compiled, [("user", user), ("bot", bot), ("user", user),
                                     ("bot", InterruptFrame()), ("user", user)],
                          registry=make_registry())
    with wave.open(str(tmp_path / f"{run.session_id}.wav"), "rb") as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 8000)
        frames = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert len(frames) == 2400  # three user chunks; the bot was cut after 100 ms
    assert (frames[:, 0] == 100).all()
    assert (frames[:800, 1] == 0).all() and (frames[800:1600, 1] == 200).all()
    assert (frames[1600:, 1] == 0).all()


async def test_record_mono_mixes_both_sides(tmp_path: Path) -> None:
    spec = AudioRecordSpec.model_validate({"type": "audio.record", "sample_rate": 8000,
                                           "channels": 1, "path": str(tmp_path / "a.wav")})
    compiled = graph({"user": "test.recorder", "bot": "test.recorder", "rec": spec},
                     ["user -> rec.user", "bot -> rec.bot"])
    frame = AudioFrame(audio=np.full(80, 1000, "<i2").tobytes(), sample_rate=8000)
    await run_graph(compiled, [("bot", frame), ("user", frame)])
    with wave.open(str(tmp_path / "a.wav"), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert data.tolist() == [2000] * 80
