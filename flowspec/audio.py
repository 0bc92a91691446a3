"""Audio formats, G.711 μ-law/A-law codecs, sample-rate conversion and WAV files.

PCM16 here is always signed 16-bit little-endian, interleaved when there is more than one channel.
Everything is pure and synchronous: callers run it inline on 20 ms chunks.
"""

from __future__ import annotations

import functools
import math
import os
import wave
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Encoding = Literal["pcm16", "pcmu", "pcma"]
_ENCODINGS: frozenset[str] = frozenset(("pcm16", "pcmu", "pcma"))
G711_RATE = 8000

_I16 = np.dtype("<i2")
_F32 = npt.NDArray[np.float32]


# --- G.711 -------------------------------------------------------------------------------------
# The tables reproduce the Sun reference coder (g711.c, also behind CPython's audioop), which is
# what telephony peers such as Twilio produce and expect, so the round trip is bit-exact with them.


@functools.cache
def _tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16],
                       npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    s = np.arange(-32768, 32768, dtype=np.int32)
    # Encode tables are indexed by the sample's bit pattern, so a uint16 view of PCM16 indexes them.
    order = np.argsort(s.astype(np.uint16))

    v = s >> 2
    mask = np.where(v < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(v), 8159) + 33
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), mag)
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0xF))
    ulaw_enc = ((code ^ mask) & 0xFF).astype(np.uint8)[order]

    v = s >> 3
    mask = np.where(v >= 0, 0xD5, 0x55)
    mag = np.where(v >= 0, v, -v - 1)
    seg = np.searchsorted(np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]), mag)
    code = (seg << 4) | ((mag >> np.maximum(seg, 1)) & 0xF)
    alaw_enc = ((code ^ mask) & 0xFF).astype(np.uint8)[order]

    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0xF) << 3) + 0x84) << ((u & 0x70) >> 4)
    ulaw_dec = np.where(u & 0x80, 0x84 - t, t - 0x84).astype(_I16)

    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = ((a & 0xF) << 4) + np.where(seg == 0, 8, 0x108)
    t = t << np.maximum(seg - 1, 0)
    alaw_dec = np.where(a & 0x80, t, -t).astype(_I16)
    return ulaw_enc, ulaw_dec, alaw_enc, alaw_dec


def _samples(pcm16: bytes) -> npt.NDArray[np.int16]:
    # A trailing odd byte is half a sample: stateless calls drop it (the streaming classes keep it).
    return np.frombuffer(pcm16, dtype=_I16, count=len(pcm16) // 2)


def _encode_with(table: npt.NDArray[np.uint8], pcm16: bytes) -> bytes:
    return table.take(np.frombuffer(pcm16, dtype="<u2", count=len(pcm16) // 2)).tobytes()


def _decode_with(table: npt.NDArray[np.int16], data: bytes) -> bytes:
    return table.take(np.frombuffer(data, dtype=np.uint8)).tobytes()


def ulaw_encode(pcm16: bytes) -> bytes:
    """PCM16 → G.711 μ-law, one byte per sample. A trailing odd byte is ignored."""
    return _encode_with(_tables()[0], pcm16)


def ulaw_decode(data: bytes) -> bytes:
    """G.711 μ-law → PCM16."""
    return _decode_with(_tables()[1], data)


def alaw_encode(pcm16: bytes) -> bytes:
    """PCM16 → G.711 A-law, one byte per sample. A trailing odd byte is ignored."""
    return _encode_with(_tables()[2], pcm16)


def alaw_decode(data: bytes) -> bytes:
    """G.711 A-law → PCM16."""
    return _decode_with(_tables()[3], data)


# --- resampling --------------------------------------------------------------------------------
# Rational polyphase FIR: upsample by L, low-pass, downsample by M, computed directly.  The
# prototype is a Kaiser-windowed sinc with its passband to 90 % of the lower Nyquist frequency and
# its stopband from that Nyquist frequency on, so nothing aliases into the passband.  The filter is
# symmetric and the output is aligned with the input (no delay): output sample m sits at time
# m / to_rate.  Streaming holds back just enough input to see K samples ahead.

_STOPBAND_DB = 80.0
_PASSBAND = 0.90
_MAX_FACTOR = 1024
_BLOCK_FLOATS = 1 << 16


@dataclass(frozen=True, slots=True)
class _Kernel:
    up: int  # L
    down: int  # M
    half: int  # K: input samples each side of an output sample that the filter reaches
    width: int  # input samples one row of L outputs reads
    taps: _F32  # (width, L): row q of outputs = x[q*M - K : q*M - K + width] @ taps


@functools.cache
def _kernel(from_rate: int, to_rate: int) -> _Kernel:
    g = math.gcd(from_rate, to_rate)
    up, down = to_rate // g, from_rate // g
    if up > _MAX_FACTOR or down > _MAX_FACTOR:
        raise ValueError(
            f"Cannot resample {from_rate} Hz to {to_rate} Hz: the rates share too small a "
            f"common factor ({up}/{down})."
        )
    nyquist = min(from_rate, to_rate) / 2
    proto_rate = from_rate * up
    cutoff = (1 + _PASSBAND) / 2 * nyquist / proto_rate  # cycles per prototype sample
    transition = (1 - _PASSBAND) * nyquist / proto_rate
    ntaps = (_STOPBAND_DB - 7.95) / (2.285 * 2 * math.pi * transition) + 1
    half = math.ceil(ntaps / (2 * up))
    beta = 0.1102 * (_STOPBAND_DB - 8.7)

    j = np.arange(-half * up, half * up + 1, dtype=np.float64)
    proto = 2 * cutoff * np.sinc(2 * cutoff * j) * np.kaiser(j.size, beta)

    # Output n of a row starts reading at offset o_n = floor(n*M/L) and uses phase p_n = n*M mod L.
    n = np.arange(up)
    offset, phase = np.divmod(n * down, up)
    width = 2 * half + 1 + int(offset[-1])
    taps = np.zeros((width, up), dtype=np.float64)
    r = np.arange(2 * half + 1)
    for col in range(up):
        idx = phase[col] + (half - r) * up + half * up  # into proto, which starts at -K*L
        valid = (idx >= 0) & (idx < proto.size)
        coeffs = np.where(valid, proto[np.clip(idx, 0, proto.size - 1)], 0.0)
        # Each phase gets unit DC gain; otherwise the phases differ slightly and a tone at
        # to_rate / L appears on constant input.
        taps[offset[col] + r, col] = coeffs / coeffs.sum()
    return _Kernel(up, down, half, width, taps.astype(np.float32))


def _to_pcm16(y: _F32) -> bytes:
    np.rint(y, out=y)
    np.clip(y, -32768, 32767, out=y)
    return y.astype(_I16).tobytes()


class Resampler:
    """Streaming PCM16 mono sample-rate converter.

    Feed chunks of any size to `process`, then call `flush` once at the end of the stream. The
    concatenated output equals `resample` of the whole input, except for float rounding (at most
    one LSB), so chunk borders leave no clicks. The filter needs about 51 samples of the lower rate
    as look-ahead (6.4 ms for pairs with 8 kHz, 2.1 ms for 24↔48 kHz), so `process` holds that much
    output back until more input or `flush` arrives. After `flush` it is ready for a new stream.

    Raises `ValueError` for non-positive rates or rates with no small common factor.
    """

    __slots__ = ("_buf", "_k", "_next_row", "_odd", "_received", "_start")

    def __init__(self, from_rate: int, to_rate: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"Sample rates must be positive, got {from_rate} and {to_rate}.")
        self._k = _kernel(from_rate, to_rate) if from_rate != to_rate else None
        self._reset()

    def _reset(self) -> None:
        half = self._k.half if self._k else 0
        self._buf: _F32 = np.zeros(half, dtype=np.float32)
        self._start = -half  # absolute input index of _buf[0]; the zeros stand for x[-K:0]
        self._received = 0
        self._next_row = 0
        self._odd = b""

    def process(self, pcm16: bytes) -> bytes:
        """Resample one chunk; returns whatever output the input so far fully determines."""
        if self._odd:
            pcm16 = self._odd + pcm16
        self._odd = pcm16[-1:] if len(pcm16) % 2 else b""
        x = _samples(pcm16)
        if self._k is None:
            return x.tobytes()
        return _to_pcm16(self._push(x.astype(np.float32)))

    def flush(self) -> bytes:
        """Emit the tail of the stream (input is treated as silent after its end) and reset."""
        k = self._k
        if k is None:
            self._reset()
            return b""
        total = -(-self._received * k.up // k.down)
        rows = -(-total // k.up) - self._next_row
        if rows <= 0:
            self._reset()
            return b""
        need = (self._next_row + rows - 1) * k.down - k.half + k.width - self._start
        padded = np.concatenate((self._buf, np.zeros(max(need - self._buf.size, 0), np.float32)))
        y = self._rows(padded, rows)[: total - self._next_row * k.up]
        self._reset()
        return _to_pcm16(y)

    def _push(self, x: _F32) -> _F32:
        k = self._k
        assert k is not None
        self._buf = np.concatenate((self._buf, x)) if self._buf.size else x
        self._received += x.size
        # Row q reads x[q*M - K, q*M - K + width), so it is ready once that range has arrived.
        end = (self._received + k.half - k.width) // k.down + 1
        rows = end - self._next_row
        if rows <= 0:
            return np.zeros(0, dtype=np.float32)
        y = self._rows(self._buf, rows)
        self._next_row = end
        keep_from = end * k.down - k.half - self._start
        self._buf = self._buf[keep_from:].copy()
        self._start += keep_from
        return y

    def _rows(self, buf: _F32, rows: int) -> _F32:
        k = self._k
        assert k is not None
        first = self._next_row * k.down - k.half - self._start
        out = np.empty((rows, k.up), dtype=np.float32)
        # Row q reads buf[first + q*M :][:width]; copying those overlapping windows to one
        # contiguous matrix lets BLAS do the work, and blocks of rows keep that copy in cache.
        block = max(1, _BLOCK_FLOATS // k.width)
        for r0 in range(0, rows, block):
            n = min(block, rows - r0)
            windows = np.ndarray(
                (n, k.width), np.float32, buf, (first + r0 * k.down) * 4, (k.down * 4, 4)
            )
            np.matmul(windows.copy(), k.taps, out=out[r0 : r0 + n])
        return out.reshape(-1)


def resample(pcm16: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample a whole PCM16 mono buffer; output has ceil(n * to_rate / from_rate) samples."""
    r = Resampler(from_rate, to_rate)
    return r.process(pcm16) + r.flush()


# --- formats and conversion --------------------------------------------------------------------


def pcm16_duration_ms(nbytes: int, sample_rate: int, channels: int = 1) -> float:
    """Milliseconds of audio in `nbytes` of PCM16 (24 kHz mono: nbytes / 48)."""
    return nbytes * 1000 / (2 * channels * sample_rate)


def g711_duration_ms(nbytes: int) -> float:
    """Milliseconds of audio in `nbytes` of 8 kHz mono μ-law or A-law (nbytes / 8)."""
    return nbytes / (G711_RATE / 1000)


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """An encoding, a sample rate and a channel count. μ-law and A-law are 8 kHz only.

    Raises `ValueError` for an unknown encoding, a non-positive rate or channel count, or G.711 at
    another rate than 8 kHz.
    """

    encoding: Encoding
    sample_rate: int
    channels: int = 1

    def __post_init__(self) -> None:
        if self.encoding not in _ENCODINGS:
            raise ValueError(f"Unknown audio encoding {self.encoding!r}; use pcm16, pcmu or pcma.")
        if self.sample_rate <= 0 or self.channels <= 0:
            raise ValueError(
                f"Sample rate and channels must be positive, got {self.sample_rate} Hz and "
                f"{self.channels} channels."
            )
        if self.encoding != "pcm16" and self.sample_rate != G711_RATE:
            raise ValueError(f"{self.encoding} is 8000 Hz only, got {self.sample_rate} Hz.")

    @property
    def sample_width(self) -> int:
        """Bytes per sample of one channel."""
        return 2 if self.encoding == "pcm16" else 1

    @property
    def frame_size(self) -> int:
        """Bytes per sample frame (one sample of every channel)."""
        return self.sample_width * self.channels

    @property
    def bytes_per_second(self) -> int:
        return self.frame_size * self.sample_rate

    def duration_ms(self, nbytes: int) -> float:
        """Milliseconds of audio in `nbytes` of this format."""
        return nbytes * 1000 / self.bytes_per_second


PCM16_24K = AudioFormat("pcm16", 24000)
PCMU = AudioFormat("pcmu", G711_RATE)
PCMA = AudioFormat("pcma", G711_RATE)


def _decode(encoding: Encoding, data: bytes) -> bytes:
    if encoding == "pcmu":
        return ulaw_decode(data)
    if encoding == "pcma":
        return alaw_decode(data)
    return data


def _encode(encoding: Encoding, pcm16: bytes) -> bytes:
    if encoding == "pcmu":
        return ulaw_encode(pcm16)
    if encoding == "pcma":
        return alaw_encode(pcm16)
    return pcm16


class Converter:
    """Streaming conversion between two `AudioFormat`s: decode → mix channels → resample → encode.

    Channel counts may differ only when one side is mono (down-mix by averaging, up-mix by
    copying). Partial sample frames are carried over to the next chunk; `flush` ends the stream.
    Raises `ValueError` when the channel layouts cannot be converted.
    """

    __slots__ = ("_odd", "_resamplers", "dst", "src")

    def __init__(self, src: AudioFormat, dst: AudioFormat) -> None:
        if src.channels != dst.channels and 1 not in (src.channels, dst.channels):
            raise ValueError(
                f"Cannot convert {src.channels} channels to {dst.channels}; one side must be mono."
            )
        self.src = src
        self.dst = dst
        inner = min(src.channels, dst.channels)
        self._resamplers = [Resampler(src.sample_rate, dst.sample_rate) for _ in range(inner)]
        self._odd = b""

    def process(self, data: bytes) -> bytes:
        """Convert one chunk of `src` audio; returns `dst` audio (possibly empty)."""
        if self.src == self.dst:
            return data
        data = self._odd + data if self._odd else data
        whole = len(data) - len(data) % self.src.frame_size
        self._odd = data[whole:]
        return self._run(data[:whole], flush=False)

    def flush(self) -> bytes:
        """End the stream: emit the resampler tails and drop any partial frame."""
        self._odd = b""
        if self.src == self.dst:
            return b""
        return self._run(b"", flush=True)

    def _run(self, data: bytes, *, flush: bool) -> bytes:
        pcm = _decode(self.src.encoding, data)
        src_ch, dst_ch = self.src.channels, self.dst.channels
        frames = np.frombuffer(pcm, dtype=_I16).reshape(-1, src_ch)
        if src_ch > dst_ch:
            frames = np.rint(frames.mean(axis=1, keepdims=True)).astype(_I16)
        outs = []
        for ch, r in enumerate(self._resamplers):
            part = r.flush() if flush else r.process(np.ascontiguousarray(frames[:, ch]).tobytes())
            outs.append(np.frombuffer(part, dtype=_I16))
        mixed = np.stack(outs, axis=1)
        if dst_ch > src_ch:
            mixed = np.repeat(mixed, dst_ch, axis=1)
        return _encode(self.dst.encoding, mixed.astype(_I16, copy=False).tobytes())


def convert(data: bytes, src: AudioFormat, dst: AudioFormat) -> bytes:
    """Convert a whole buffer from `src` to `dst` (see `Converter`)."""
    c = Converter(src, dst)
    return c.process(data) + c.flush()


# --- WAV ---------------------------------------------------------------------------------------


MAX_WAV_BYTES = 1 << 30
"""Largest WAV file read (about 6 hours of 24 kHz mono PCM16)."""
_FORMAT_PCM, _FORMAT_FLOAT, _FORMAT_EXTENSIBLE = 1, 3, 0xFFFE


def read_wav(path: str | os.PathLike[str]) -> tuple[AudioFormat, bytes]:
    """Read a WAV file as PCM16: 8-, 16-, 24- and 32-bit integer samples and 32- and 64-bit
    float samples are read (and converted). Raises `ValueError` saying why a file cannot be."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            data = handle.read(MAX_WAV_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"{name}: cannot be read ({exc.strerror or exc}).") from None
    if len(data) > MAX_WAV_BYTES:
        raise ValueError(f"{name}: larger than {MAX_WAV_BYTES >> 20} MiB.")
    tag, channels, rate, width, samples = _riff(name, data)
    if channels < 1 or rate < 1:
        raise ValueError(f"{name}: {channels} channels at {rate} Hz cannot be played.")
    fmt = AudioFormat("pcm16", rate, channels)
    usable = len(samples) - len(samples) % (width * channels)
    return fmt, _wav_samples(name, tag, width, samples[:usable])


def _riff(name: str, data: bytes) -> tuple[int, int, int, int, bytes]:
    """(format tag, channels, rate, bytes per sample, sample data) of a RIFF/WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{name}: not a WAV file (it does not start with RIFF/WAVE).")
    position, fmt, samples = 12, None, None
    while position + 8 <= len(data) and (fmt is None or samples is None):
        chunk, size = data[position:position + 4], int.from_bytes(data[position + 4:position + 8],
                                                                  "little")
        body = data[position + 8:position + 8 + size]
        if chunk == b"fmt " and len(body) >= 16:
            tag = int.from_bytes(body[0:2], "little")
            if tag == _FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = int.from_bytes(body[24:26], "little")  # the sub-format GUID's first field
            fmt = (tag, int.from_bytes(body[2:4], "little"), int.from_bytes(body[4:8], "little"),
                   int.from_bytes(body[14:16], "little") // 8)
        elif chunk == b"data":
            samples = body
        position += 8 + size + (size & 1)  # chunks are padded to an even size
    if fmt is None or samples is None:
        raise ValueError(f"{name}: a WAV file without its {'format' if fmt is None else 'data'} "
                         "chunk.")
    return (*fmt, samples)


def _wav_samples(name: str, tag: int, width: int, samples: bytes) -> bytes:
    """WAV sample data as PCM16 little-endian."""
    if tag == _FORMAT_PCM and width == 2:
        return samples
    if tag == _FORMAT_PCM and width == 1:  # unsigned 8-bit
        values = (np.frombuffer(samples, np.uint8).astype(np.int16) - 128) << 8
    elif tag == _FORMAT_PCM and width == 3:
        raw = np.frombuffer(samples, np.uint8).reshape(-1, 3)
        values = ((raw[:, 2].astype(np.int16) << 8) | raw[:, 1]).astype(np.int16)
    elif tag == _FORMAT_PCM and width == 4:
        values = (np.frombuffer(samples, "<i4") >> 16).astype(np.int16)
    elif tag == _FORMAT_FLOAT and width in (4, 8):
        floats = np.nan_to_num(np.frombuffer(samples, "<f4" if width == 4 else "<f8"))
        values = np.clip(np.round(floats * 32767.0), -32768, 32767).astype(np.int16)
    else:
        kind = {_FORMAT_PCM: "integer", _FORMAT_FLOAT: "float"}.get(tag, f"format {tag}")
        raise ValueError(f"{name}: {8 * width}-bit {kind} samples are not supported; "
                         "PCM (8, 16, 24, 32-bit) and float (32, 64-bit) WAV files are.")
    return values.astype("<i2").tobytes()


def write_wav(path: str | os.PathLike[str], fmt: AudioFormat, data: bytes) -> None:
    """Write PCM16 audio as a WAV file. Raises `ValueError` for G.711 or partial frames."""
    if fmt.encoding != "pcm16":
        raise ValueError(f"Only pcm16 can be written as WAV, not {fmt.encoding}; convert first.")
    if len(data) % fmt.frame_size:
        raise ValueError(
            f"{len(data)} bytes is not a whole number of {fmt.frame_size}-byte sample frames."
        )
    with wave.open(os.fspath(path), "wb") as w:
        w.setnchannels(fmt.channels)
        w.setsampwidth(2)
        w.setframerate(fmt.sample_rate)
        w.writeframes(data)
