"""Speech-like audio for reply transcripts: voiced syllables with formants, paced per character.

The audio is not intelligible speech. It is meant to look like speech to everything that measures
it (RMS, VAD, spectrum) and to last as long as its transcript would take to say, so that truncation
and barge-in maths behave as they do against the real service.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MS_PER_CHAR = 60
MIN_WORD_MS = 140
WORD_GAP_MS = 70
PAUSE_MS = {",": 180, ";": 220, ":": 220, ".": 320, "!": 320, "?": 320}
PEAK = 0.6

# First three formants (Hz) of a few vowels; each syllable picks one from its letters.
_FORMANTS: dict[str, tuple[float, float, float]] = {
    "a": (730.0, 1090.0, 2440.0),
    "e": (530.0, 1840.0, 2480.0),
    "i": (270.0, 2290.0, 3010.0),
    "o": (570.0, 840.0, 2410.0),
    "u": (300.0, 870.0, 2240.0),
}
_WORD = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class Segment:
    """One transcript delta and the span of audio that says it."""

    text: str
    start_ms: int
    end_ms: int


def timeline(text: str) -> list[Segment]:
    """Split `text` into word deltas (each keeps its leading space) with their audio spans.

    The deltas concatenate back to `text` exactly, which the transcript events rely on.
    """
    segments: list[Segment] = []
    cursor = 0
    position = 0
    for match in _WORD.finditer(text):
        word = match.group()
        delta = text[position : match.end()]
        position = match.end()
        letters = sum(ch.isalnum() for ch in word)
        length = max(MIN_WORD_MS, letters * MS_PER_CHAR) if letters else 0
        length += WORD_GAP_MS + PAUSE_MS.get(word[-1], 0)
        segments.append(Segment(delta, cursor, cursor + length))
        cursor += length
    if position < len(text):
        if segments:
            last = segments[-1]
            segments[-1] = Segment(last.text + text[position:], last.start_ms, last.end_ms)
        else:
            segments.append(Segment(text[position:], 0, 0))
    return segments


def duration_ms(text: str) -> int:
    """How long `synthesize(text)` lasts, in milliseconds."""
    segments = timeline(text)
    return segments[-1].end_ms if segments else 0


def synthesize(text: str, sample_rate: int = 24000) -> bytes:
    """PCM16 little-endian mono audio saying `text`, exactly `duration_ms(text)` long."""
    segments = timeline(text)
    total = _samples(duration_ms(text), sample_rate)
    out = np.zeros(total, dtype=np.float64)
    for segment in segments:
        word = segment.text.strip()
        letters = [ch for ch in word.lower() if ch.isalnum()]
        if not letters:
            continue
        voiced_ms = max(MIN_WORD_MS, len(letters) * MS_PER_CHAR)
        start = _samples(segment.start_ms, sample_rate)
        stop = min(total, start + _samples(voiced_ms, sample_rate))
        out[start:stop] = _word(letters, stop - start, sample_rate)
    pcm = np.clip(out * 32767.0, -32768, 32767).astype("<i2")
    return pcm.tobytes()


def _samples(ms: int, sample_rate: int) -> int:
    return ms * sample_rate // 1000


def _word(letters: list[str], n: int, sample_rate: int) -> npt.NDArray[np.float64]:
    # Roughly one syllable per three letters, as in English text.
    count = max(1, round(len(letters) / 3))
    bounds = np.linspace(0, n, count + 1).astype(int)
    seed = zlib.crc32("".join(letters).encode())
    parts = []
    for index in range(count):
        chunk = letters[index * 3 : index * 3 + 3] or letters[-1:]
        vowel = next((ch for ch in chunk if ch in _FORMANTS), "aeiou"[(seed + index) % 5])
        f0 = 110.0 + ((seed >> (index % 24)) % 40)
        parts.append(_syllable(int(bounds[index + 1] - bounds[index]), f0, vowel, sample_rate))
    return np.concatenate(parts) if parts else np.zeros(n)


def _syllable(n: int, f0: float, vowel: str, sample_rate: int) -> npt.NDArray[np.float64]:
    if n <= 0:
        return np.zeros(0)
    t = np.arange(n) / sample_rate
    # A falling pitch glide and a sine-squared envelope give the voiced "syllable" shape.
    pitch = f0 * (1.0 + 0.15 * (1.0 - t / max(t[-1], 1e-9)))
    phase = 2.0 * np.pi * np.cumsum(pitch) / sample_rate
    formants = _FORMANTS[vowel]
    signal = np.zeros(n)
    nyquist = sample_rate / 2.0
    harmonic = 1
    while harmonic * f0 * 1.15 < min(nyquist * 0.9, 4000.0):
        freq = harmonic * f0
        gain = sum(1.0 / (1.0 + ((freq - f) / (60.0 + 0.08 * f)) ** 2) for f in formants)
        signal += gain / harmonic**0.5 * np.sin(harmonic * phase)
        harmonic += 1
    envelope = np.sin(np.pi * np.arange(n) / n) ** 2
    shaped = signal * envelope
    peak = float(np.max(np.abs(shaped))) or 1.0
    result: npt.NDArray[np.float64] = shaped * (PEAK / peak)
    return result
