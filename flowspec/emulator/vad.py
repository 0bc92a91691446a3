"""An energy voice-activity detector with OpenAI's server_vad parameters.

Audio is judged in 20 ms frames. A frame is speech when its level exceeds `threshold`, where
the level maps RMS loudness linearly from -60 dBFS (0.0) to 0 dBFS (1.0): the default 0.5 is
-30 dBFS.
Times count from the first sample appended in the session, as OpenAI's `audio_start_ms` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FRAME_MS = 20
FLOOR_DB = -60.0


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    audio_end_ms: int


VadEvent = SpeechStarted | SpeechStopped


def level(pcm16: bytes) -> float:
    """The detector's 0..1 loudness of a block of PCM16 samples."""
    samples = np.frombuffer(pcm16[: len(pcm16) // 2 * 2], dtype="<i2").astype(np.float64)
    if samples.size == 0:
        return 0.0
    rms = math.sqrt(float(np.mean(samples * samples))) / 32768.0
    if rms <= 0.0:
        return 0.0
    decibels = 20.0 * math.log10(rms)
    return min(1.0, max(0.0, (decibels - FLOOR_DB) / -FLOOR_DB))


class EnergyVad:
    """Feeds on PCM16 at `sample_rate` and reports speech start/stop with session timestamps.

    `audio_start_ms` includes the prefix padding (clamped to the start of the current buffer) and
    `audio_end_ms` includes the silence that ended the turn, as OpenAI documents for server VAD.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 200,
        position_ms: float = 0.0,
        buffer_start_ms: float = 0.0,
    ) -> None:
        self.sample_rate = sample_rate
        self.threshold = threshold
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms
        self._frame_bytes = sample_rate * FRAME_MS // 1000 * 2
        self._pending = b""
        self._position_ms = position_ms
        self._buffer_start_ms = buffer_start_ms
        self._speaking = False
        self._silence_ms = 0

    @property
    def speaking(self) -> bool:
        return self._speaking

    @property
    def position_ms(self) -> float:
        """Milliseconds of audio judged so far (whole frames only)."""
        return self._position_ms

    def buffer_reset(self) -> None:
        """The input buffer was committed or cleared: prefix padding may not reach before here."""
        self._buffer_start_ms = self._position_ms + len(self._pending) / 2 / self.sample_rate * 1000
        if not self._speaking:
            self._silence_ms = 0

    def feed(self, pcm16: bytes) -> list[VadEvent]:
        events: list[VadEvent] = []
        data = self._pending + pcm16
        offset = 0
        while len(data) - offset >= self._frame_bytes:
            frame = data[offset : offset + self._frame_bytes]
            offset += self._frame_bytes
            event = self._judge(level(frame) > self.threshold)
            self._position_ms += FRAME_MS
            if event is not None:
                events.append(event)
        self._pending = data[offset:]
        return events

    def _judge(self, voiced: bool) -> VadEvent | None:
        start = self._position_ms
        if not self._speaking:
            if not voiced:
                return None
            self._speaking = True
            self._silence_ms = 0
            padded = max(self._buffer_start_ms, start - self.prefix_padding_ms, 0.0)
            return SpeechStarted(round(padded))
        if voiced:
            self._silence_ms = 0
            return None
        self._silence_ms += FRAME_MS
        if self._silence_ms >= self.silence_duration_ms:
            self._speaking = False
            self._silence_ms = 0
            return SpeechStopped(round(start + FRAME_MS))
        return None
