"""The caller of a scenario: it stands in the spec's entry transport and does what the turns say,
and it keeps, turn by turn, what reached it (the bot's words, audio, errors, interruptions).

It keeps the entry transport's audio format (PCM16 at the browser's rate, μ-law 8 kHz for a phone)
and feeds speech as fast as the graph takes it, then the silence that lets a voice activity
detector end the turn. The model's side runs on a fast clock (the emulator's pace), so a call
takes a fraction of its real-time length. A turn is over when the bot has answered and gone
quiet; a barge-in speaks once enough of the bot's reply has arrived.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flowspec.audio import AudioFormat, convert, read_wav
from flowspec.conversation.clock import ManualClock
from flowspec.emulator import voice
from flowspec.frames import (
    AudioFrame,
    DTMFFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InterruptFrame,
    ResponseEndedFrame,
    ResponseStartedFrame,
    TextFrame,
    TranscriptFrame,
)
from flowspec.runtime.bus import ProviderError
from flowspec.runtime.node import Context
from flowspec.scenario.model import Turn

CHUNK_MS = 100
TRAILING_SILENCE_MS = 1_200
"""After speech: enough silence for a server VAD (default 500 ms) to end the turn."""
SETTLE_S = 0.15
"""Quiet (wall time, on the fast clock) after which the bot counts as done with a turn."""
TURN_TIMEOUT_S = 30.0
"""The longest one turn may take, in wall time."""


@dataclass(slots=True)
class Heard:
    """What reached the caller in one turn."""

    said: list[str] = field(default_factory=list)
    """The bot's final words per item (transcripts, or text put together)."""
    errors: list[str] = field(default_factory=list)
    provider_errors: list[str] = field(default_factory=list)
    """Errors the provider reported (the caller is not always told)."""
    audio_ms: float = 0.0
    interrupted_items: set[str] = field(default_factory=set)
    late_audio_ms: float = 0.0
    """Bot audio of an interrupted item that arrived after the interruption did."""
    responses: int = 0


class ScenarioCaller:
    """An entry transport driven by a scenario's turns (see the module docstring)."""

    boundary = True

    def __init__(self, ctx: Context, *, turns: Sequence[Turn], base: Path,
                 audio: AudioFormat | None, timeout_s: float = TURN_TIMEOUT_S,
                 on_turn: Callable[[], None] | None = None) -> None:
        self.ctx = ctx
        self.on_turn = on_turn
        """Called as each turn begins (the runner marks what happened before it)."""
        self.turns = list(turns)
        self.base = base
        self.format = audio
        self.timeout_s = timeout_s
        self.heard: list[Heard] = []
        """One entry per turn played so far."""
        self.audio_arrivals: list[float] = []
        """`time.perf_counter()` at each bot audio frame's arrival, in order."""
        self.done = asyncio.Event()
        self.failure: str | None = None
        self._now = Heard()
        self._activity = asyncio.Event()
        self._responding = 0
        self._replies = 0  # responses started so far
        self._reply_audio_ms = 0.0  # of the reply in progress (or the last one)
        self._parts: dict[str | None, list[str]] = {}
        self._last_item: str | None = None

    # -- the node contract ----------------------------------------------------------------------

    async def start(self) -> None:
        self._subscription = self.ctx.bus.subscribe(self._on_provider_error, ProviderError)
        self.ctx.spawn(self._play(), name=f"flowspec:{self.ctx.node_id}:scenario",
                       essential=True)

    def _on_provider_error(self, event: ProviderError) -> None:
        # A turn the provider refused is answered, with an error the caller may never see.
        if event.session_id == self.ctx.session_id:
            self._now.provider_errors.append(event.message)
            self._replies += 1
            self._activity.set()

    async def stop(self) -> None:
        self._subscription.close()
        self.done.set()

    async def handle(self, frame: Frame, port: str) -> None:
        heard = self._now
        match frame:
            case AudioFrame():
                if frame.item_id is not None and frame.item_id in heard.interrupted_items:
                    heard.late_audio_ms += frame.duration_ms
                heard.audio_ms += frame.duration_ms
                self._reply_audio_ms += frame.duration_ms
            case TranscriptFrame(role="assistant", final=True):
                heard.said.append(frame.text)
                self._parts.pop(frame.item_id, None)
            case TextFrame(role="assistant"):
                self._parts.setdefault(frame.item_id, []).append(frame.text)
            case ResponseStartedFrame():
                self._responding += 1
                self._replies += 1
                self._reply_audio_ms = 0.0
                heard.responses += 1
            case ResponseEndedFrame():
                self._responding = max(0, self._responding - 1)
                for parts in self._parts.values():
                    heard.said.append("".join(parts))
                self._parts.clear()
            case InterruptFrame():
                # Only a reply in progress is cut short; speech between replies interrupts
                # nothing the caller could hear.
                if self._last_item is not None and self._responding:
                    heard.interrupted_items.add(self._last_item)
            case ErrorFrame():
                heard.errors.append(f"{frame.node_id}: {frame.message}")
            case _:
                pass
        if isinstance(frame, AudioFrame):
            if frame.item_id is not None:
                self._last_item = frame.item_id
            self.audio_arrivals.append(time.perf_counter())
        self._activity.set()

    # -- the turns ------------------------------------------------------------------------------

    async def _play(self) -> None:
        reason = "scenario done"
        try:
            for index, turn in enumerate(self.turns):
                self._now = Heard()
                self.heard.append(self._now)
                if self.on_turn is not None:
                    self.on_turn()
                if index == 0 and self.ctx.call.speaks_first:
                    await self._settle(reply=True)  # the opening counts as turn 1's
                if turn.hang_up:
                    reason = "the caller hung up"
                    break
                following = self.turns[index + 1] if index + 1 < len(self.turns) else None
                await self._act(turn, barged=following is not None and
                                following.barge_in is not None)
        except ScenarioError as exc:
            self.failure = str(exc)
            reason = f"the scenario could not go on: {exc}"
        finally:
            self.done.set()
        await self.ctx.emit(EndFrame(reason=reason))

    async def _act(self, turn: Turn, *, barged: bool) -> None:
        """Do what `turn` says, then wait for the bot: to answer and go quiet, or, when the
        next turn barges in, only to start answering."""
        if turn.text is not None:
            await self.ctx.emit(TextFrame(text=turn.text, role="user"))
        elif turn.say is not None:
            await self._speak(voice.synthesize(turn.say, 24000), AudioFormat("pcm16", 24000))
        elif turn.audio is not None:
            fmt, data = read_wav(self.base / turn.audio)
            await self._speak(data, fmt)
        elif turn.barge_in is not None:
            await self._wait_for_audio(turn.barge_in.after_ms)
            await self._speak(voice.synthesize(turn.barge_in.say, 24000),
                              AudioFormat("pcm16", 24000))
        elif turn.silence_s is not None:
            await self._silence(turn.silence_s * 1000)
            await self._pass_time(turn.silence_s)
        elif turn.dtmf is not None:
            for digit in turn.dtmf:
                await self.ctx.emit(DTMFFrame(digit=digit))
        if barged:
            await self._wait_for_reply()
        else:
            await self._settle(reply=turn.silence_s is None and turn.dtmf is None)

    async def _speak(self, data: bytes, fmt: AudioFormat) -> None:
        if self.format is None:
            raise ScenarioError("this spec's caller sends no audio: use `text:` turns")
        await self._feed(convert(data, fmt, self.format))
        await self._silence(TRAILING_SILENCE_MS)

    async def _silence(self, ms: float) -> None:
        if self.format is None:
            await asyncio.sleep(0)  # text callers have no line to be silent on
            return
        frame_bytes = self.format.frame_size
        size = int(self.format.bytes_per_second * ms / 1000) // frame_bytes * frame_bytes
        silent = b"\xff" if self.format.encoding == "pcmu" else \
            b"\xd5" if self.format.encoding == "pcma" else b"\x00"
        await self._feed(silent * size)

    async def _pass_time(self, seconds: float) -> None:
        """Let `seconds` of the conversation's clock pass: the silence a caller keeps is what
        idle prompts and the longest call count. Time jumps from one timer to the next, and the
        bot's answer to each is awaited, so a minute of silence takes a fraction of a second."""
        clock = self.ctx.call.clock
        if not isinstance(clock, ManualClock):
            return
        end = clock.now() + seconds
        while True:
            wake = clock.next_wake()
            if wake is None or wake > end:
                break
            await clock.advance(max(0.0, wake - clock.now()))
            await self._settle(reply=False)
        await clock.advance(max(0.0, end - clock.now()))

    async def _feed(self, data: bytes) -> None:
        assert self.format is not None
        step = int(self.format.bytes_per_second * CHUNK_MS / 1000)
        step -= step % self.format.frame_size
        for offset in range(0, len(data), step):
            await self.ctx.emit(AudioFrame(audio=data[offset:offset + step],
                                           encoding=self.format.encoding,
                                           sample_rate=self.format.sample_rate,
                                           channels=self.format.channels))

    async def _wait_for_reply(self) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                while not self._responding:
                    self._activity.clear()
                    await self._activity.wait()
        except TimeoutError:
            raise ScenarioError("the bot never started a reply to barge in on") from None

    async def _wait_for_audio(self, after_ms: float) -> None:
        """Until `after_ms` of the reply in progress has arrived."""
        try:
            async with asyncio.timeout(self.timeout_s):
                while self._reply_audio_ms < after_ms:
                    if not self._responding and self._reply_audio_ms:
                        raise ScenarioError(f"the bot's reply ended after "
                                            f"{self._reply_audio_ms:.0f} ms of audio, before "
                                            f"{after_ms:g} ms to barge in at")
                    self._activity.clear()
                    await self._activity.wait()
        except TimeoutError:
            raise ScenarioError(f"the bot's reply never reached {after_ms:g} ms of audio to "
                                "barge in at") from None

    async def _settle(self, *, reply: bool) -> None:
        """Until the bot went quiet, and first (with `reply`) until it answered: a response
        started after the turn's action."""
        started = self._replies
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    self._activity.clear()
                    try:
                        async with asyncio.timeout(SETTLE_S):
                            await self._activity.wait()
                    except TimeoutError:
                        answered = self._replies > started or not reply
                        if answered and not self._responding:
                            return
        except TimeoutError:
            what = "kept talking" if self._replies > started else "never answered"
            raise ScenarioError(f"the bot {what} within {self.timeout_s:g} s") from None


class ScenarioError(Exception):
    """A scenario that cannot go on (the caller cannot do what a turn says)."""
