from __future__ import annotations

import itertools
import math
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from flowspec.audio import (
    PCM16_24K,
    PCMA,
    PCMU,
    AudioFormat,
    Converter,
    Resampler,
    alaw_decode,
    alaw_encode,
    convert,
    g711_duration_ms,
    pcm16_duration_ms,
    read_wav,
    resample,
    ulaw_decode,
    ulaw_encode,
    write_wav,
)

RATES = [8000, 16000, 24000, 32000, 44100, 48000]
ALL_PCM = np.arange(-32768, 32768, dtype="<i2")
ALL_CODES = bytes(range(256))


def _audioop() -> ModuleType | None:
    # audioop is deprecated in 3.11–3.12 and gone in 3.13; it is only a reference here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            return None
    return audioop


def pcm(samples: np.ndarray) -> bytes:
    return bytes(np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes())


def samples(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float64)


def sweep(rate: int, seconds: float, f0: float, f1: float, amp: float = 16000.0) -> np.ndarray:
    # Linear chirp evaluated analytically, so any rate gets the same continuous-time signal.
    t = np.arange(int(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * seconds) * t * t))


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    return 10 * math.log10(float(np.sum(ref**2)) / max(float(np.sum((got - ref) ** 2)), 1e-12))


# --- G.711 -------------------------------------------------------------------------------------

CODECS: list[tuple[str, Callable[[bytes], bytes], Callable[[bytes], bytes]]] = [
    ("ulaw", ulaw_encode, ulaw_decode),
    ("alaw", alaw_encode, alaw_decode),
]


@pytest.mark.parametrize(("name", "encode", "decode"), CODECS)
def test_g711_bit_exact_with_audioop(
    name: str, encode: Callable[[bytes], bytes], decode: Callable[[bytes], bytes]
) -> None:
    ref = _audioop()
    if ref is None:
        pytest.skip("audioop is not available on this Python")
    lin2, to_lin = getattr(ref, f"lin2{name}"), getattr(ref, f"{name}2lin")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert encode(ALL_PCM.tobytes()) == lin2(ALL_PCM.tobytes(), 2)
        assert decode(ALL_CODES) == to_lin(ALL_CODES, 2)


def test_g711_known_values() -> None:
    # Values from the G.711 tables: silence codes, the largest magnitudes, the smallest steps.
    assert ulaw_encode(pcm(np.array([0, 32767, -32768]))) == bytes([0xFF, 0x80, 0x00])
    assert samples(ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00]))).tolist() == [0, 0, 32124, -32124]
    assert alaw_encode(pcm(np.array([0, -1, 32767, -32768]))) == bytes([0xD5, 0x55, 0xAA, 0x2A])
    assert samples(alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A]))).tolist() == [
        8, -8, 32256, -32256
    ]


@pytest.mark.parametrize(("name", "encode", "decode"), CODECS)
def test_g711_round_trip_within_quantisation(
    name: str, encode: Callable[[bytes], bytes], decode: Callable[[bytes], bytes]
) -> None:
    x = ALL_PCM.astype(np.float64)
    err = np.abs(samples(decode(encode(ALL_PCM.tobytes()))) - x)
    # Logarithmic quantisation: the step grows with the magnitude, at most 1/16 of it (+ clipping
    # at the top of the μ-law range, whose largest code is 32124).
    mag = np.abs(x)
    bound = np.maximum(mag / 16, 16 if name == "ulaw" else 8)
    top = 32124 if name == "ulaw" else 32256
    bound = np.where(mag > top, bound + mag - top, bound)
    assert np.all(err <= bound)
    # Decoding then encoding is the identity on codes (except μ-law's two zeros).
    codes = encode(decode(ALL_CODES))
    if name == "ulaw":
        assert codes == ALL_CODES[:127] + b"\xff" + ALL_CODES[128:]
    else:
        assert codes == ALL_CODES


def test_g711_odd_byte_and_empty() -> None:
    assert ulaw_encode(b"") == b"" and ulaw_decode(b"") == b""
    assert alaw_encode(b"\x00\x00\x07") == alaw_encode(b"\x00\x00")
    assert len(ulaw_encode(b"\x01")) == 0


def test_durations() -> None:
    assert pcm16_duration_ms(960, 24000) == 20.0
    assert pcm16_duration_ms(3840, 48000, channels=2) == 20.0
    assert g711_duration_ms(160) == 20.0
    assert PCM16_24K.bytes_per_second == 48000
    assert PCMU.bytes_per_second == 8000
    assert AudioFormat("pcm16", 44100, 2).duration_ms(176400) == 1000.0


def test_audio_format_validation() -> None:
    with pytest.raises(ValueError, match="8000 Hz only"):
        AudioFormat("pcmu", 16000)
    with pytest.raises(ValueError, match="Unknown audio encoding"):
        AudioFormat("opus", 48000)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        AudioFormat("pcm16", 24000, 0)


# --- resampling --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "dst"), [p for p in itertools.permutations(RATES, 2)]
)
def test_resample_sweep_snr(src: int, dst: int) -> None:
    band = 0.9 * min(src, dst) / 2
    seconds = 0.5
    out = samples(resample(pcm(sweep(src, seconds, 50, band)), src, dst))
    assert out.size == math.ceil(int(src * seconds) * dst / src)
    ref = sweep(dst, seconds, 50, band)[: out.size]
    # The edges see the zeros before and after the signal; judge the steady part.
    edge = dst // 50
    assert snr_db(ref[edge:-edge], out[edge:-edge]) >= 50


@pytest.mark.parametrize(("src", "dst"), [(24000, 8000), (48000, 16000), (44100, 8000)])
def test_resample_rejects_out_of_band(src: int, dst: int) -> None:
    # A tone just above the target Nyquist frequency must not alias back into the band.
    tone = pcm(8000 * np.sin(2 * np.pi * (dst / 2 * 1.02) * np.arange(src // 2) / src))
    out = samples(resample(tone, src, dst))[dst // 50 : -dst // 50]
    assert np.sqrt(np.mean(out**2)) < 8000 / math.sqrt(2) * 10 ** (-60 / 20)


def test_resample_same_rate_and_empty() -> None:
    data = pcm(np.arange(100))
    assert resample(data, 16000, 16000) == data
    assert resample(b"", 8000, 24000) == b""
    assert resample(b"\x01", 8000, 24000) == b""
    assert resample(data + b"\x01", 24000, 8000) == resample(data, 24000, 8000)


def test_resample_dc_is_flat() -> None:
    out = samples(resample(pcm(np.full(4410, 10000.0)), 44100, 48000))
    assert np.all(np.abs(out[200:-200] - 10000) <= 1)


def test_resampler_rejects_bad_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 8000)
    with pytest.raises(ValueError, match="common factor"):
        Resampler(44101, 48000)


@pytest.mark.parametrize(("src", "dst"), [(8000, 24000), (24000, 8000), (16000, 24000),
                                          (24000, 16000), (24000, 48000), (44100, 48000),
                                          (48000, 44100), (8000, 44100)])
def test_streamed_equals_one_shot(src: int, dst: int) -> None:
    rng = random.Random(src * 7 + dst)
    data = pcm(sweep(src, 0.3, 100, 0.45 * min(src, dst)) + rng.gauss(0, 500))
    whole = samples(resample(data, src, dst))
    r = Resampler(src, dst)
    parts = []
    pos = 0
    while pos < len(data):
        n = rng.choice([1, 2, 3, 7, 160, 479, 480, 961, rng.randrange(1, 5000)])
        parts.append(r.process(data[pos : pos + n]))
        pos += n
    parts.append(r.flush())
    streamed = samples(b"".join(parts))
    assert streamed.size == whole.size
    assert np.max(np.abs(streamed - whole)) <= 1
    # The resampler is reusable after flush.
    assert samples(r.process(data) + r.flush()).size == whole.size


def test_streamed_chunk_borders_are_smooth() -> None:
    # 20 ms chunks of a pure tone: the output's sample-to-sample step never jumps at a border.
    tone = pcm(12000 * np.sin(2 * np.pi * 440 * np.arange(24000) / 24000))
    r = Resampler(24000, 8000)
    out = samples(b"".join(r.process(tone[i : i + 960]) for i in range(0, len(tone), 960)))
    steps = np.abs(np.diff(out[100:]))
    assert steps.max() <= 12000 * 2 * np.pi * 440 / 8000 * 1.01


# --- conversion --------------------------------------------------------------------------------


def test_converter_pcm24k_to_pcmu_and_back() -> None:
    src = sweep(24000, 0.5, 100, 3400)
    to_ulaw, back = Converter(PCM16_24K, PCMU), Converter(PCMU, PCM16_24K)
    ulaw = b"".join(to_ulaw.process(pcm(src)[i : i + 961]) for i in range(0, 24000, 961))
    ulaw += to_ulaw.flush()
    assert len(ulaw) == 4000
    out = samples(back.process(ulaw) + back.flush())
    assert out.size == src.size
    # μ-law quantisation dominates the error: about 38 dB SNR for a loud signal.
    assert snr_db(src[500:-500], out[500:-500]) > 30
    assert convert(pcm(src), PCM16_24K, PCMU) == ulaw


def test_converter_alaw_and_channels() -> None:
    stereo = np.stack([sweep(16000, 0.2, 100, 3000), sweep(16000, 0.2, 100, 3000)], axis=1)
    out = convert(pcm(stereo.reshape(-1)), AudioFormat("pcm16", 16000, 2), PCMA)
    mono = convert(pcm(stereo[:, 0]), AudioFormat("pcm16", 16000), PCMA)
    assert out == mono
    up = samples(convert(pcm(np.arange(10.0)), AudioFormat("pcm16", 8000),
                         AudioFormat("pcm16", 8000, 2)))
    assert up.tolist() == np.repeat(np.arange(10.0), 2).tolist()
    with pytest.raises(ValueError, match="mono"):
        Converter(AudioFormat("pcm16", 8000, 2), AudioFormat("pcm16", 8000, 3))


def test_converter_stereo_resamples_each_channel() -> None:
    left, right = sweep(48000, 0.1, 100, 9000), sweep(48000, 0.1, 200, 3000, amp=5000)
    both = convert(pcm(np.stack([left, right], axis=1).reshape(-1)),
                   AudioFormat("pcm16", 48000, 2), AudioFormat("pcm16", 24000, 2))
    out = np.frombuffer(both, dtype="<i2").reshape(-1, 2)
    assert out[:, 0].tobytes() == resample(pcm(left), 48000, 24000)
    assert out[:, 1].tobytes() == resample(pcm(right), 48000, 24000)


def test_resampler_holds_back_only_the_look_ahead() -> None:
    r = Resampler(8000, 24000)
    first = r.process(pcm(np.ones(160)))
    # 160 samples in, 480 due; the filter's look-ahead of about 51 input samples is held back.
    assert 0 < len(first) // 2 < 480
    assert len(first) // 2 >= 480 - 3 * 60
    assert len(first + r.flush()) // 2 == 480


def test_converter_same_format_passthrough_and_pcmu_to_pcma() -> None:
    c = Converter(PCMU, PCMU)
    assert c.process(b"\x01\x02\x03") == b"\x01\x02\x03" and c.flush() == b""
    codes = ulaw_encode(pcm(sweep(8000, 0.1, 100, 3000)))
    assert convert(codes, PCMU, PCMA) == alaw_encode(ulaw_decode(codes))


# --- WAV ---------------------------------------------------------------------------------------


def test_wav_round_trip(tmp_path: Path) -> None:
    fmt = AudioFormat("pcm16", 44100, 2)
    data = pcm(np.arange(-1000, 1000, 2))
    write_wav(tmp_path / "a.wav", fmt, data)
    assert read_wav(tmp_path / "a.wav") == (fmt, data)
    write_wav(str(tmp_path / "b.wav"), PCM16_24K, b"")
    assert read_wav(str(tmp_path / "b.wav")) == (PCM16_24K, b"")


def test_wav_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pcm16"):
        write_wav(tmp_path / "x.wav", PCMU, b"\x00")
    with pytest.raises(ValueError, match="whole number"):
        write_wav(tmp_path / "x.wav", PCM16_24K, b"\x00")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not a wav file at all")
    with pytest.raises(ValueError, match="not a WAV file"):
        read_wav(junk)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="not a WAV file"):
        read_wav(empty)
    headless = tmp_path / "headless.wav"
    headless.write_bytes(b"RIFF\x04\x00\x00\x00WAVE")
    with pytest.raises(ValueError, match="without its format chunk"):
        read_wav(headless)
    with pytest.raises(ValueError, match="cannot be read"):
        read_wav(tmp_path / "missing.wav")
    alaw = tmp_path / "alaw.wav"
    alaw.write_bytes(_riff_wav(6, 1, 8000, 8, b"\xd5" * 80))
    with pytest.raises(ValueError, match="8-bit format 6 samples are not supported"):
        read_wav(alaw)


def _riff_wav(tag: int, channels: int, rate: int, bits: int, data: bytes) -> bytes:
    block = channels * bits // 8
    fmt = (tag.to_bytes(2, "little") + channels.to_bytes(2, "little")
           + rate.to_bytes(4, "little") + (rate * block).to_bytes(4, "little")
           + block.to_bytes(2, "little") + bits.to_bytes(2, "little"))
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + \
        len(data).to_bytes(4, "little") + data
    return b"RIFF" + len(body).to_bytes(4, "little") + body


@pytest.mark.parametrize(("tag", "bits", "encode"), [
    (1, 8, lambda x: (np.round(x * 127) + 128).astype(np.uint8).tobytes()),
    (1, 24, lambda x: b"".join(int(v).to_bytes(3, "little", signed=True)
                               for v in np.round(x * 8388607))),
    (1, 32, lambda x: np.round(x * 2147483647).astype("<i4").tobytes()),
    (3, 32, lambda x: x.astype("<f4").tobytes()),
    (3, 64, lambda x: x.astype("<f8").tobytes()),
])
def test_wav_files_of_other_sample_formats_read_as_pcm16(tmp_path: Path, tag: int, bits: int,
                                                         encode: Any) -> None:
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(800) / 16000)
    path = tmp_path / "tone.wav"
    path.write_bytes(_riff_wav(tag, 1, 16000, bits, encode(tone)))
    fmt, data = read_wav(path)
    assert fmt == AudioFormat("pcm16", 16000, 1)
    samples = np.frombuffer(data, "<i2").astype(np.float64) / 32767
    assert len(samples) == 800
    assert np.max(np.abs(samples - tone)) < (0.01 if bits == 8 else 0.0002)
