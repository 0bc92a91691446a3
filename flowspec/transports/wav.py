"""`transport.wav`: a WAV file in, a WAV file out; one batch session (`flowspec run`).

The input is converted to the spec's audio format and fed to the graph (as fast as it accepts it,
or at real-time pace with `realtime: true`), followed by `trailing_silence_ms` of silence so a
voice activity detector hears the turn end. The session then ends once the bot has answered and
gone quiet: no response in progress and nothing received for `settle_s`. The bot's audio, in the
order received, is written to the output file when the session stops.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TextIO

from flowspec.audio import AudioFormat, Converter, convert, read_wav, write_wav
from flowspec.frames import (
    AudioFrame,
    EndFrame,
    Frame,
    ResponseEndedFrame,
    ResponseStartedFrame,
    TextFrame,
    TranscriptFrame,
)
from flowspec.runtime.node import Context
from flowspec.spec.models.transports import TransportAudioSpec

CHUNK_MS = 100
SETTLE_S = 1.5  # quiet time after the last reply that ends the run
REPLY_TIMEOUT_S = 120.0  # the longest a run waits for replies once its input is sent


class WavTransport:
    boundary = True

    def __init__(self, ctx: Context, *, input_path: str | Path | None = None,
                 output_path: str | Path | None = None, echo: TextIO | None = None,
                 settle_s: float = SETTLE_S, reply_timeout_s: float = REPLY_TIMEOUT_S) -> None:
        self.ctx = ctx
        spec = ctx.spec
        audio = getattr(spec, "audio", None)
        self.audio = audio if isinstance(audio, TransportAudioSpec) else TransportAudioSpec()
        self.format = AudioFormat("pcm16", self.audio.sample_rate, self.audio.channels)
        given_in = input_path or getattr(spec, "input", None)
        given_out = output_path or getattr(spec, "output", None)
        self.input_path = Path(given_in) if given_in else None
        self.output_path = Path(given_out) if given_out else None
        self.realtime = bool(getattr(spec, "realtime", False))
        self.trailing_silence_ms = int(getattr(spec, "trailing_silence_ms", 1500))
        self.echo = echo
        self.settle_s = settle_s
        self.reply_timeout_s = reply_timeout_s
        self.transcript: list[tuple[str, str]] = []
        """Final (role, text) turns seen, in order."""
        self._out: list[bytes] = []
        self._converters: dict[AudioFormat, Converter] = {}
        self._activity = asyncio.Event()  # something arrived from the graph
        self._responding = 0
        self._answered = False
        self._text: dict[str | None, list[str]] = {}

    async def start(self) -> None:
        if self.input_path is not None:
            # Read now, so that a missing or unreadable file fails the session's start loudly.
            src, data = read_wav(self.input_path)
            self._input = convert(data, src, self.format)
            self.ctx.spawn(self._feed(), name=f"flowspec:{self.ctx.node_id}:feed",
                           essential=True)

    @property
    def audio_bytes(self) -> int:
        """How much of the bot's audio arrived."""
        return sum(map(len, self._out))

    @property
    def answered(self) -> bool:
        """The bot answered, in audio or text."""
        return self._answered

    async def stop(self) -> None:
        # Nothing heard, nothing written: an empty WAV would pass for an answer.
        if self.output_path is not None and self._out:
            self.output_path.parent.mkdir(parents=True, exist_ok=True)
            write_wav(self.output_path, self.format, b"".join(self._out))

    async def handle(self, frame: Frame, port: str) -> None:
        match frame:
            case AudioFrame():
                self._out.append(self._convert(frame))
                self._answered = True
            case TranscriptFrame(final=True):
                self._turn(frame.role, frame.text)
            case TextFrame(role="assistant"):
                self._text.setdefault(frame.item_id, []).append(frame.text)
                self._answered = True
            case ResponseStartedFrame():
                self._responding += 1
            case ResponseEndedFrame():
                self._responding = max(0, self._responding - 1)
                for parts in self._text.values():
                    self._turn("assistant", "".join(parts))
                self._text.clear()
            case _:
                return
        self._activity.set()

    def _turn(self, role: str, text: str) -> None:
        self.transcript.append((role, text))
        if self.echo is not None:
            self.echo.write(f"{role}: {text}\n")
            self.echo.flush()

    def _convert(self, frame: AudioFrame) -> bytes:
        src = AudioFormat(frame.encoding, frame.sample_rate, frame.channels)
        if src == self.format:
            return frame.audio
        converter = self._converters.get(src)
        if converter is None:
            converter = self._converters[src] = Converter(src, self.format)
        return converter.process(frame.audio)

    async def _feed(self) -> None:
        step = int(self.format.bytes_per_second * CHUNK_MS / 1000)
        step -= step % self.format.frame_size
        silence = bytes(int(self.format.bytes_per_second * self.trailing_silence_ms / 1000)
                        // self.format.frame_size * self.format.frame_size)
        data = self._input + silence
        if self.ctx.call.speaks_first:
            await self._settle()  # the caller hears the bot's opening out before talking
            self._answered = False
        began = time.monotonic()
        sent_ms = 0.0
        for offset in range(0, len(data), step):
            chunk = data[offset:offset + step]
            frame = AudioFrame(audio=chunk, encoding="pcm16", sample_rate=self.format.sample_rate,
                               channels=self.format.channels, timestamp_ms=sent_ms)
            await self.ctx.emit(frame)
            sent_ms += frame.duration_ms
            if self.realtime:
                await asyncio.sleep(max(0.0, began + sent_ms / 1000 - time.monotonic()))
        reason = await self._settle()
        await self.ctx.emit(EndFrame(reason=reason))

    async def _settle(self) -> str:
        """Wait until the bot answered and went quiet; the reason the run ends."""
        try:
            async with asyncio.timeout(self.reply_timeout_s):
                while True:
                    self._activity.clear()
                    try:
                        async with asyncio.timeout(self.settle_s):
                            await self._activity.wait()
                    except TimeoutError:
                        if self._answered and not self._responding:
                            return "input done"
        except TimeoutError:
            return "no reply" if not self._answered else "reply timed out"
