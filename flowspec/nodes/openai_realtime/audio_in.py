"""User audio and video on their way to the model: pause, format, pre-roll, image throttling."""

from __future__ import annotations

import base64
from collections import deque
from typing import Any

from flowspec.audio import AudioFormat, Converter, Encoding
from flowspec.frames import AudioFrame, ImageFrame

DEFAULT_PREROLL_S = 0.5
"""Pipecat's choice before VAD parameters are known: enough to keep the onset of a word."""
PENDING_LIMIT_S = 5.0
IMAGE_INTERVAL_S = 1.0


class AudioInput:
    """Turns `AudioFrame`s into `input_audio_buffer.append` payloads in the session's format.

    While the connection is being (re)established, audio waits in a bounded buffer so that the
    user's first words are not lost; the oldest audio goes first when it is full. A rolling
    pre-roll of the most recent audio is kept for manual turns: after an interruption clears the
    server's buffer, it is appended again so the start of the user's new speech survives."""

    def __init__(self, *, paused: bool, preroll_s: float | None) -> None:
        self.paused = paused
        self._preroll_s = DEFAULT_PREROLL_S if preroll_s is None else preroll_s
        self._format = AudioFormat("pcm16", 24000)
        self._bytes_per_second = self._format.bytes_per_second
        self._converter: Converter | None = None
        # The last frame format seen, and whether it needs converting: audio arrives in one
        # format frame after frame, so it is checked when it changes, not built per frame.
        self._source_key: tuple[str, int, int] | None = None
        self._source = self._format
        self._converting = False
        self._preroll: deque[bytes] = deque()
        self._preroll_bytes = 0
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self.buffered_ms = 0.0
        """Audio appended since the last commit or clear (a commit needs 100 ms)."""

    def set_format(self, encoding: Encoding, sample_rate: int) -> None:
        fmt = AudioFormat(encoding, sample_rate)
        if fmt != self._format:
            self._format = fmt
            self._bytes_per_second = fmt.bytes_per_second
            self._converter = None
            self._source_key = None
            self._preroll.clear()
            self._preroll_bytes = 0

    def accept(self, frame: AudioFrame) -> bytes | None:
        """The audio to append for `frame` (converted when the frame's format differs), or None
        while paused. Raises ValueError for a frame whose format is not a valid `AudioFormat`."""
        if self.paused or not frame.audio:
            return None
        key = (frame.encoding, frame.sample_rate, frame.channels)
        if key != self._source_key:
            self._source = AudioFormat(frame.encoding, frame.sample_rate, frame.channels)
            self._converting = self._source != self._format
            self._source_key = key
        data = frame.audio
        if self._converting:
            # The compiler inserts converters where formats differ; this covers graphs built
            # by hand and transports whose format changes at run time.
            source = self._source
            if self._converter is None or self._converter.src != source:
                self._converter = Converter(source, self._format)
            data = self._converter.process(data)
        self._remember(data)
        return data or None

    def appended(self, data: bytes) -> None:
        self.buffered_ms += len(data) * 1000 / self._bytes_per_second

    def reset_buffer(self) -> None:
        self.buffered_ms = 0.0

    def hold(self, data: bytes) -> None:
        """Keep `data` until the connection is ready (bounded)."""
        self._pending.append(data)
        self._pending_bytes += len(data)
        limit = int(PENDING_LIMIT_S * self._bytes_per_second)
        while self._pending_bytes > limit and self._pending:
            self._pending_bytes -= len(self._pending.popleft())

    def take_pending(self) -> bytes:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        return data

    def preroll(self) -> bytes:
        return b"".join(self._preroll)

    def _remember(self, data: bytes) -> None:
        limit = int(self._preroll_s * self._bytes_per_second)
        if limit <= 0 or not data:
            return
        self._preroll.append(data)
        self._preroll_bytes += len(data)
        while self._preroll and self._preroll_bytes - len(self._preroll[0]) >= limit:
            self._preroll_bytes -= len(self._preroll.popleft())


def append_event(data: bytes) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(data).decode()}


class VideoInput:
    """Video frames become user `input_image` items, at most one per second."""

    def __init__(self, *, paused: bool, detail: str) -> None:
        self.paused = paused
        self.detail = detail
        self._last: float | None = None

    def accept(self, frame: ImageFrame, now: float) -> dict[str, Any] | None:
        """The `conversation.item.create` event for `frame`, or None (paused or throttled)."""
        if self.paused or (self._last is not None and now - self._last < IMAGE_INTERVAL_S):
            return None
        self._last = now
        url = f"data:{frame.mime_type};base64,{base64.b64encode(frame.image).decode()}"
        part = {"type": "input_image", "image_url": url, "detail": self.detail}
        return {"type": "conversation.item.create",
                "item": {"type": "message", "role": "user", "content": [part]}}
