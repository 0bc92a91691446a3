"""Audio utility nodes: `audio.convert` (format conversion) and `audio.record` (a WAV per call)."""

from __future__ import annotations

import dataclasses
import datetime
import wave
from pathlib import Path

import numpy as np

from flowspec.audio import AudioFormat, Converter
from flowspec.frames import AudioFrame, Frame, InterruptFrame
from flowspec.runtime.node import Context
from flowspec.spec.models.audio import AudioConvertSpec, AudioRecordSpec
from flowspec.spec.models.transports import TransportAudioSpec


def audio_format(spec: TransportAudioSpec) -> AudioFormat:
    return AudioFormat(spec.encoding, spec.sample_rate, spec.channels)


def frame_format(frame: AudioFrame) -> AudioFormat:
    return AudioFormat(frame.encoding, frame.sample_rate, frame.channels)


class ConvertNode:
    """Converts audio frames to the `output` format; every other frame passes unchanged.

    Audio arriving in another format than `input` is converted too (from what it says it is), so
    a converter never emits audio in the wrong format. An interrupt drops the resampler state:
    the tail of the interrupted audio must not leak into what comes next."""

    def __init__(self, ctx: Context) -> None:
        spec = ctx.spec
        if not isinstance(spec, AudioConvertSpec):
            raise TypeError(f"audio.convert got a {type(spec).__name__}, not an AudioConvertSpec.")
        self.ctx = ctx
        self.src = audio_format(spec.input)
        self.dst = audio_format(spec.output)
        self._converters: dict[AudioFormat, Converter] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def handle(self, frame: Frame, port: str) -> None:
        if isinstance(frame, AudioFrame):
            src = frame_format(frame)
            if src == self.dst:
                await self.ctx.emit(frame)
                return
            converter = self._converters.get(src)
            if converter is None:
                converter = self._converters[src] = Converter(src, self.dst)
            audio = converter.process(frame.audio)
            if audio:
                await self.ctx.emit(dataclasses.replace(
                    frame, audio=audio, encoding=self.dst.encoding,
                    sample_rate=self.dst.sample_rate, channels=self.dst.channels))
        elif isinstance(frame, InterruptFrame):
            self._converters.clear()
        else:
            await self.ctx.emit(frame)


def expand_path(template: str, session_id: str) -> Path:
    """A per-session path from a template with `{session_id}` and `{date}` (YYYY-MM-DD)."""
    date = datetime.date.today().isoformat()
    return Path(template.replace("{session_id}", session_id).replace("{date}", date))


_FLUSH_SECONDS = 1.0


class RecordNode:
    """Records the user (`user` port) and the bot (`bot` port) to one WAV file per session.

    The user's audio is a continuous stream, so it is the conversation's clock: bot audio is
    placed where the user's stream stood when it arrived (or right after the bot's previous
    audio), and an interrupt cuts the bot's track at that point, as the user stopped hearing it
    there. Audio older than the user's clock can no longer change and is written out as it goes,
    so memory stays bounded however long the call."""

    def __init__(self, ctx: Context) -> None:
        spec = ctx.spec
        if not isinstance(spec, AudioRecordSpec):
            raise TypeError(f"audio.record got a {type(spec).__name__}, not an AudioRecordSpec.")
        self.ctx = ctx
        self.path = expand_path(spec.path, ctx.session_id)
        self.format = AudioFormat("pcm16", spec.sample_rate, 1)
        self.channels = spec.channels
        self._converters: dict[tuple[str, AudioFormat], Converter] = {}
        self._user = np.zeros(0, dtype=np.int16)  # samples from `_written` on
        self._bot = np.zeros(0, dtype=np.int16)
        self._clock = 0  # samples of user audio so far: the conversation's time
        self._bot_end = 0  # where the bot's track ends, in samples
        self._written = 0
        self._wav: wave.Wave_write | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        wav = wave.open(str(self.path), "wb")
        wav.setnchannels(self.channels)
        wav.setsampwidth(2)
        wav.setframerate(self.format.sample_rate)
        self._wav = wav

    async def stop(self) -> None:
        if self._wav is None:
            return
        self._write(max(self._clock, self._bot_end))
        self._wav.close()
        self._wav = None

    async def handle(self, frame: Frame, port: str) -> None:
        if isinstance(frame, AudioFrame):
            samples = self._decode(port, frame)
            if port == "bot":
                self._add_bot(samples)
            else:
                self._add_user(samples)
            if self._clock - self._written >= self.format.sample_rate * _FLUSH_SECONDS:
                self._write(self._clock)
        elif isinstance(frame, InterruptFrame) and self._bot_end > self._clock:
            self._bot = self._bot[: self._clock - self._written]
            self._bot_end = self._clock

    def _decode(self, port: str, frame: AudioFrame) -> np.ndarray:
        src = frame_format(frame)
        converter = self._converters.get((port, src))
        if converter is None:
            converter = self._converters[(port, src)] = Converter(src, self.format)
        return np.frombuffer(converter.process(frame.audio), dtype="<i2")

    def _add_user(self, samples: np.ndarray) -> None:
        self._user = np.concatenate([self._user, samples])
        self._clock += samples.size

    def _add_bot(self, samples: np.ndarray) -> None:
        start = max(self._bot_end, self._clock)
        gap = start - self._bot_end
        self._bot = np.concatenate([self._bot, np.zeros(gap, dtype=np.int16), samples])
        self._bot_end = start + samples.size

    def _write(self, until: int) -> None:
        """Write both tracks up to sample `until` (padding the shorter with silence)."""
        count = until - self._written
        if count <= 0 or self._wav is None:
            return
        user, bot = _take(self._user, count), _take(self._bot, count)
        self._user, self._bot = self._user[count:], self._bot[count:]
        self._written = until
        if self.channels == 2:
            data = np.stack([user, bot], axis=1)
        else:
            data = np.clip(user.astype(np.int32) + bot, -32768, 32767).astype(np.int16)
        self._wav.writeframes(data.astype("<i2").tobytes())


def _take(track: np.ndarray, count: int) -> np.ndarray:
    head = track[:count]
    if head.size < count:
        head = np.concatenate([head, np.zeros(count - head.size, dtype=np.int16)])
    return head
