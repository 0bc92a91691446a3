"""The WAV transport: a file in, the bot's audio out."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from flowspec.audio import AudioFormat, read_wav, write_wav
from flowspec.spec.models.transports import WavTransportSpec
from flowspec.transports.wav import WavTransport

from .conftest import echo_session


def tone(rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


async def test_batch_run_converts_feeds_and_writes_the_reply(tmp_path: Path) -> None:
    source, target = tmp_path / "in.wav", tmp_path / "out" / "reply.wav"
    write_wav(source, AudioFormat("pcm16", 16000), tone(16000, 0.5))
    spec = WavTransportSpec.model_validate({"type": "transport.wav", "trailing_silence_ms": 200,
                                            "audio": {"sample_rate": 24000}})
    factory = functools.partial(WavTransport, input_path=source, output_path=target,
                                settle_s=0.05)
    async with echo_session(spec, factory) as (session, llm):
        await session.wait()
    assert session.close_reason == "input done"
    fmt, data = read_wav(target)
    assert fmt == AudioFormat("pcm16", 24000)
    # The echo node returns every chunk: 0.5 s of tone and 0.2 s of silence, at 24 kHz.
    assert len(data) == 24000 * 2 * 7 // 10
    assert sum(len(f.audio) for f in llm.received if hasattr(f, "audio")) == len(data)


async def test_missing_input_fails_the_start(tmp_path: Path) -> None:
    import pytest

    from flowspec.errors import NodeError

    spec = WavTransportSpec.model_validate({"type": "transport.wav"})
    factory = functools.partial(WavTransport, input_path=tmp_path / "nope.wav")
    with pytest.raises(NodeError, match="nope.wav"):
        async with echo_session(spec, factory):
            pass
