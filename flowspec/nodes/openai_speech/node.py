"""`openai.speech`: the model's text in, speech out, through `POST /v1/audio/speech`.

Text deltas gather until a sentence ends (`sentences.py`); each sentence is one request, sent at
once, and the requests run one after another, so the audio keeps the order of the text. A reply
starts speaking at its first sentence, never at its end; the rest of a reply is spoken when it
ends (`ResponseEndedFrame`). Every other frame passes on in order: a response's end leaves after
its audio, so whoever waits for it (a WAV run, a scenario) hears the reply out.

Each piece of audio is tagged with the text item it says, and the session's `SpokenText` learns
where every sentence lies in that item's audio: the model node maps the caller's played
position back to the words heard. An interruption drops the queued text at once and cuts the
request in flight; no audio of it leaves the node afterwards. A failed request is reported (bus
and an error frame) and the next sentence goes on.

The worker makes each request itself, under a deadline an interruption moves to now (the
request in flight ends at its next await, and nothing else does). A sentence that finds the
worker idle yields once, so its request leaves before the model's stream hands over the rest
of what it has already received.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass

import aiohttp

from flowspec.errors import NodeError, NodeTimeout, UsageError
from flowspec.frames import (
    AudioFrame,
    ErrorFrame,
    Frame,
    InterruptFrame,
    Lane,
    ResponseEndedFrame,
    StartFrame,
    TextFrame,
    UpdateSettingsFrame,
)
from flowspec.nodes.openai_realtime.delta import merge_delta
from flowspec.nodes.openai_speech.client import (
    SAMPLE_RATE,
    SpeechApiError,
    SpeechStream,
    headers,
    open_speech,
    request_body,
)
from flowspec.nodes.openai_speech.sentences import SentenceSplitter
from flowspec.runtime.bus import Metrics, ProviderError, SettingsApplied, SettingsRejected
from flowspec.runtime.node import Context
from flowspec.spec.models.speech import SpeechNodeSpec, SpeechSettingsSpec

log = logging.getLogger("flowspec.nodes.openai_speech")

FRAME_BYTES = SAMPLE_RATE * 2 // 10
"""The longest audio frame sent on: 100 ms."""
BYTES_PER_MS = SAMPLE_RATE * 2 / 1000


@dataclass(frozen=True, slots=True)
class _Say:
    item_id: str
    text: str


@dataclass(frozen=True, slots=True)
class _Pass:
    frame: Frame


class SpeechNode:
    """One session's voice. `session` replaces the HTTP client session (tests, embedders); a
    node that makes its own closes it when it stops."""

    def __init__(self, ctx: Context, *, session: aiohttp.ClientSession | None = None) -> None:
        spec = ctx.spec
        if not isinstance(spec, SpeechNodeSpec):
            raise UsageError(f"Node {ctx.node_id!r} is not an openai.speech node.")
        self.ctx = ctx
        self.spec = spec
        self.settings = spec.settings
        self._given = session
        self._http: aiohttp.ClientSession | None = session
        self._headers: dict[str, str] = {}
        self._url = spec.base_url.rstrip("/") + "/audio/speech"
        self._splitter = SentenceSplitter()
        self._item: str | None = None  # the item whose text the splitter holds
        self._items = 0
        self._jobs: deque[_Say | _Pass] = deque()
        self._queued = 0  # characters waiting in `_jobs`
        self._room = asyncio.Event()
        self._wake = asyncio.Event()
        self._epoch = 0  # bumped by each interruption: audio of an older epoch is stale
        self._scope: asyncio.Timeout | None = None  # the deadline of the request in flight
        self._idle = False  # the worker waits for something to say
        self.requests = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._headers = headers(self.spec, self.ctx.node_id)
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        self.ctx.call.spoken.active = True
        self.ctx.spawn(self._work(), name=f"flowspec:{self.ctx.node_id}:speech", essential=True)

    async def stop(self) -> None:
        if self._http is not None and self._given is None:
            await self._http.close()

    # -- frames in ---------------------------------------------------------------------------

    async def handle(self, frame: Frame, port: str) -> None:
        match frame:
            case TextFrame(role="assistant"):
                await self._on_text(frame)
            case ResponseEndedFrame():
                self._end_item()
                self._put(_Pass(frame))
            case InterruptFrame():
                self._interrupt()
            case UpdateSettingsFrame():
                self._update_settings(frame)
            case StartFrame():
                pass
            case _ if frame.lane is Lane.SYSTEM:
                await self.ctx.emit(frame)  # errors and speech events overtake the speech
            case _:
                self._put(_Pass(frame))

    async def _on_text(self, frame: TextFrame) -> None:
        self.ctx.call.spoken.busy(True)
        item = frame.item_id
        if item is None:
            item = self._item if self._item is not None else self._new_item()
        if item != self._item:
            self._end_item()
            self._item = item
        sentences = self._splitter.feed(frame.text)
        for sentence in sentences:
            self._put(_Say(item, sentence))
        if sentences and self._idle:
            await asyncio.sleep(0)  # the worker starts the request before more text is read
        # Bounded: past the limit the model's stream waits for the voice to catch up.
        while self._queued + len(self._splitter.pending) > self.spec.max_buffered_chars:
            self._room.clear()
            await self._room.wait()

    def _new_item(self) -> str:
        self._items += 1
        return f"{self.ctx.node_id}_{self._items}"

    def _end_item(self) -> None:
        tail = self._splitter.flush()
        if tail is not None and self._item is not None:
            self._put(_Say(self._item, tail))
        self._item = None

    def _put(self, job: _Say | _Pass) -> None:
        if isinstance(job, _Say):
            if not job.text.strip():
                return
            self._queued += len(job.text)
        self._jobs.append(job)
        self._wake.set()

    def _interrupt(self) -> None:
        self._epoch += 1
        self._splitter.reset()
        self._item = None
        # Queued text and data are stale; response boundaries and other control frames stay.
        self._jobs = deque(job for job in self._jobs
                           if isinstance(job, _Pass) and job.frame.lane is not Lane.DATA)
        self._queued = 0
        self._room.set()
        scope = self._scope
        if scope is not None and not scope.expired():
            scope.reschedule(asyncio.get_running_loop().time())  # cut the request in flight
        self._wake.set()  # the worker sees what is left, and says when it is quiet

    def _update_settings(self, frame: UpdateSettingsFrame) -> None:
        data = merge_delta(self.settings.model_dump(exclude_unset=True, mode="json"),
                           dict(frame.delta))
        try:
            self.settings = SpeechSettingsSpec.model_validate(data)
        except ValueError as exc:
            self.ctx.publish(SettingsRejected(
                session_id=self.ctx.session_id, node_id=self.ctx.node_id, version=frame.version,
                message=f"The settings are not valid: {exc}"))
            return
        self.ctx.publish(SettingsApplied(session_id=self.ctx.session_id,
                                         node_id=self.ctx.node_id,
                                         changed=tuple(sorted(frame.delta)),
                                         version=frame.version))

    # -- the worker --------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            while not self._jobs:
                if not self._splitter.pending.strip():
                    self.ctx.call.spoken.busy(False)  # all said: the conversation may go on
                self._wake.clear()
                self._idle = True
                try:
                    await self._wake.wait()
                finally:
                    self._idle = False
            job = self._jobs.popleft()
            if isinstance(job, _Pass):
                await self.ctx.emit(job.frame)
                continue
            self._queued -= len(job.text)
            self._room.set()
            await self._say(job, self._epoch)

    async def _say(self, job: _Say, epoch: int) -> None:
        spoken = self.ctx.call.spoken
        spoken.piece(job.item_id, job.text)
        self.requests += 1
        began = time.monotonic()
        stream: SpeechStream | None = None
        try:
            async with asyncio.timeout(self.spec.timeout_s) as scope:
                self._scope = scope
                try:
                    stream = await self._stream(job, epoch, scope, began)
                finally:
                    self._scope = None
            if stream is not None:
                spoken.piece_done(job.item_id)
                self._metrics({"processing_ms": (time.monotonic() - began) * 1000,
                               "characters": float(len(job.text.strip()))})
        except TimeoutError:
            if epoch != self._epoch:
                return  # interrupted: the request was cut on purpose
            await self._failed(NodeTimeout(self.ctx.node_id, f"no speech within "
                                           f"{self.spec.timeout_s:g} s."), epoch)
        except NodeError as exc:
            await self._failed(exc, epoch)

    async def _stream(self, job: _Say, epoch: int, scope: asyncio.Timeout,
                      began: float) -> SpeechStream | None:
        """Request `job` and pass its audio on; None when an interruption made it stale."""
        assert self._http is not None, "start() makes the HTTP session"
        body = request_body(self.spec, self.settings, job.text.strip())
        stream = await open_speech(self._http, self._url, self._headers, body,
                                   self.ctx.node_id)
        try:
            first = True
            async for pcm in stream.pcm():
                if first:
                    first = False
                    scope.reschedule(None)  # the limit guards the start of the audio only
                    self._metrics({"ttfb_ms": (time.monotonic() - began) * 1000})
                    await self.ctx.emit(TextFrame(text=job.text, role="assistant",
                                                  item_id=job.item_id))
                for offset in range(0, len(pcm), FRAME_BYTES):
                    if epoch != self._epoch:
                        return None
                    audio = pcm[offset:offset + FRAME_BYTES]
                    self.ctx.call.spoken.audio(job.item_id, len(audio) / BYTES_PER_MS)
                    await self.ctx.emit(AudioFrame(audio=audio, sample_rate=SAMPLE_RATE,
                                                   item_id=job.item_id))
        finally:
            stream.close()
        return stream

    async def _failed(self, exc: NodeError, epoch: int) -> None:
        code = exc.code if isinstance(exc, SpeechApiError) else None
        message = str(exc).split(": ", 1)[-1]
        log.warning("%s: a sentence was not spoken: %s", self.ctx.node_id, message)
        self.ctx.publish(ProviderError(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                                       message=message, code=code))
        if epoch == self._epoch:
            await self.ctx.emit(ErrorFrame(node_id=self.ctx.node_id, message=message,
                                           code=code or "speech_failed"))

    def _metrics(self, values: dict[str, float]) -> None:
        self.ctx.publish(Metrics(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                                 values=values))
