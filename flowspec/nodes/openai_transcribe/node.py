"""`openai.transcribe`: the caller's audio in, what they said out, over one Realtime
transcription session (`?intent=transcription`) per call.

Frames in (port `in`): audio (appended to the session's buffer), a `commit` or a local VAD's
speech end (manual turns: `turn_detection: false`), pause/resume, settings. Every other frame
passes on unchanged (typed text, the transport's playback reports), so the model behind this
node hears the caller's words and learns what was played. Frames out: interim transcripts
(`final=False`, the deltas) and the final one per turn, the user's speech started/stopped, and
an `InterruptFrame` when speech starts (barge-in), unless `should_interrupt` is off.

The connection, its seam and its reconnects are the Realtime node's (`openai_realtime`): a
dropped socket is opened again with backoff and configured anew; audio that arrives meanwhile
waits, bounded. Bad provider events are reported and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flowspec.conversation.variables import VariableRefused
from flowspec.errors import TransportError, UsageError
from flowspec.frames import (
    AudioFrame,
    CommitInputFrame,
    EndFrame,
    Frame,
    InterruptFrame,
    PauseInputFrame,
    ResumeInputFrame,
    StartFrame,
    TranscriptFrame,
    UpdateSettingsFrame,
    UserSpeechEndedFrame,
    UserSpeechStartedFrame,
)
from flowspec.nodes.openai_realtime.audio_in import AudioInput, append_event
from flowspec.nodes.openai_realtime.connection import (
    Connector,
    WireSocket,
    aiohttp_connect,
    request_headers,
)
from flowspec.nodes.openai_realtime.delta import merge_delta
from flowspec.nodes.openai_realtime.receive import MALFORMED
from flowspec.nodes.openai_transcribe.dialect import BETA, GA, TranscriptionDialect
from flowspec.runtime.bus import (
    Metrics,
    ModelConnected,
    ProviderError,
    SettingsApplied,
    SettingsRejected,
)
from flowspec.runtime.node import Context
from flowspec.spec.models.speech import TranscribeNodeSpec, TranscribeSettingsSpec

log = logging.getLogger("flowspec.nodes.openai_transcribe")

RECONNECT_DELAYS = (0.25, 1.0, 2.0, 4.0, 8.0)
RECONNECT_CODES = frozenset({"session_expired"})
BENIGN_CODES = frozenset({"input_audio_buffer_commit_empty"})
MIN_COMMIT_MS = 100


def transcription_url(base_url: str) -> str:
    """The WebSocket URL of a transcription session: http(s) become ws(s), the intent joins
    the query."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = "&".join(q for q in (parts.query, "intent=transcription") if q)
    return urlunsplit((scheme, parts.netloc, parts.path, query, parts.fragment))


class TranscribeNode:
    """One call's transcription session. `connect` replaces the WebSocket connector (tests)."""

    def __init__(self, ctx: Context, *, connect: Connector = aiohttp_connect,
                 reconnect_delays: Sequence[float] = RECONNECT_DELAYS) -> None:
        spec = ctx.spec
        if not isinstance(spec, TranscribeNodeSpec):
            raise UsageError(f"Node {ctx.node_id!r} is not an openai.transcribe node.")
        self.ctx = ctx
        self.spec = spec
        self.settings = spec.settings
        self.dialect: TranscriptionDialect = BETA if spec.dialect == "beta" else GA
        self.audio_in = AudioInput(paused=False, preroll_s=0.0)
        self.ready = asyncio.Event()
        self._connect = connect
        self._delays = tuple(reconnect_delays)
        self._socket: WireSocket | None = None
        self._session: dict[str, Any] = {}  # what the server was last asked for
        self._update_id: str | None = None
        self._ids = 0
        self._attempt = 0
        self._stopped_at: float | None = None  # when the user's last turn ended
        self._stopping = False

    @property
    def manual(self) -> bool:
        """Turns end when upstream says so (`turn_detection: false`)."""
        return self.settings.turn_detection is False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.ctx.spawn(self._run(), name=f"flowspec:{self.ctx.node_id}:transcribe",
                       essential=True)

    async def stop(self) -> None:
        self._stopping = True
        socket, self._socket = self._socket, None
        if socket is not None:
            try:
                await socket.close()
            except TransportError:
                log.debug("closing %s's connection failed", self.ctx.node_id)

    # -- frames in ---------------------------------------------------------------------------

    async def handle(self, frame: Frame, port: str) -> None:
        match frame:
            case AudioFrame():
                await self._on_audio(frame)
            case CommitInputFrame():
                await self._commit()
            case UserSpeechEndedFrame() if self.manual:
                await self._commit()
                await self.ctx.emit(frame)
            case PauseInputFrame(kind="audio") | ResumeInputFrame(kind="audio"):
                self.audio_in.paused = isinstance(frame, PauseInputFrame)
            case UpdateSettingsFrame():
                await self._update_settings(frame)
            case StartFrame() | InterruptFrame():
                pass  # an interrupt from upstream reaches the nodes downstream by itself
            case _:
                await self.ctx.emit(frame)

    async def _on_audio(self, frame: AudioFrame) -> None:
        data = self.audio_in.accept(frame)
        if data is None:
            return
        if self._socket is None or not self.ready.is_set():
            self.audio_in.hold(data)
            return
        self.audio_in.appended(data)
        await self._send(append_event(data))

    async def _commit(self) -> None:
        if not self.manual or self.audio_in.buffered_ms < MIN_COMMIT_MS:
            return  # the server refuses a commit of less than 100 ms: nothing was said
        if await self._send({"type": "input_audio_buffer.commit"}):
            self.audio_in.reset_buffer()
            self._stopped_at = asyncio.get_running_loop().time()

    async def _update_settings(self, frame: UpdateSettingsFrame) -> None:
        data = merge_delta(self.settings.model_dump(exclude_unset=True, mode="json"),
                           dict(frame.delta))
        try:
            settings = TranscribeSettingsSpec.model_validate(data)
        except ValueError as exc:
            self.ctx.publish(SettingsRejected(
                session_id=self.ctx.session_id, node_id=self.ctx.node_id, version=frame.version,
                message=f"The settings are not valid: {exc}"))
            return
        self.settings = settings
        wanted = self.dialect.session(settings, self.spec.extra)
        partial = self.dialect.changes(self._session, wanted)
        # Not connected: the next connection sends the whole new session anyway.
        if partial and self.ready.is_set() and await self._send(self.dialect.update(partial)):
            self._session = wanted
        self.ctx.publish(SettingsApplied(session_id=self.ctx.session_id,
                                         node_id=self.ctx.node_id,
                                         changed=tuple(sorted(frame.delta)),
                                         version=frame.version))

    # -- the connection ----------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self.ctx.call.ready()
        except VariableRefused:
            return  # the call was refused before anything was sent: it is ending
        failures = 0
        while not self._stopping:
            self._attempt += 1
            reason, was_ready = "", False
            try:
                socket = await self._connect(transcription_url(self.spec.base_url),
                                             request_headers(self.spec, self.dialect.HEADERS),
                                             self.ctx.node_id)
            except TransportError as exc:
                reason = str(exc)
            else:
                self._socket = socket
                try:
                    reason = await self._receive(socket)
                except TransportError as exc:
                    reason = str(exc)
                finally:
                    was_ready = await self._lost(socket)
            if self._stopping:
                return
            if was_ready:
                failures = 0  # it worked for a while: start the backoff again
            if failures >= len(self._delays):
                await self._give_up(reason)
                return
            self._report("connection_lost", f"The transcription connection was lost "
                         f"({reason}); reconnecting.")
            await asyncio.sleep(self._delays[failures])
            failures += 1

    async def _lost(self, socket: WireSocket) -> bool:
        was_ready = self.ready.is_set()
        self.ready.clear()
        self._socket = None
        self.audio_in.reset_buffer()
        try:
            await socket.close()
        except TransportError:
            pass
        return was_ready

    async def _give_up(self, reason: str) -> None:
        message = f"The transcription connection could not be restored: {reason}"
        log.warning("%s: %s", self.ctx.node_id, message)
        self._report("connection_lost", message, fatal=True)
        await self.ctx.emit(EndFrame(reason=f"{self.ctx.node_id}: {message}"))

    async def _receive(self, socket: WireSocket) -> str:
        if not self.dialect.WAITS_FOR_CREATED:
            await self._configure()
        while True:
            event = await socket.receive()
            if event is None:
                return "closed by the server"
            kind = str(event.get("type"))
            try:
                if await self._dispatch(kind, event):
                    return "session expired"
            except MALFORMED as exc:
                log.warning("%s: skipped a malformed %r event: %r", self.ctx.node_id, kind, exc)
                self._report("malformed_event", f"Skipped a malformed {kind!r} event from the "
                             f"transcription session: {type(exc).__name__}: {exc}")

    async def _configure(self) -> None:
        self._session = self.dialect.session(self.settings, self.spec.extra)
        self._ids += 1
        self._update_id = f"fs_transcribe_{self._ids}"
        await self._send(self.dialect.update(self._session), event_id=self._update_id)

    async def _send(self, event: dict[str, Any], *, event_id: str | None = None) -> bool:
        socket = self._socket
        if socket is None:
            return False
        if event_id is not None:
            event["event_id"] = event_id
        try:
            await socket.send(event)
        except TransportError as exc:
            log.debug("%s: send failed: %s", self.ctx.node_id, exc)  # the receive loop sees it
            return False
        return True

    # -- server events -----------------------------------------------------------------------

    async def _dispatch(self, kind: str, event: dict[str, Any]) -> bool:
        match kind:
            case "session.created" if self.dialect.WAITS_FOR_CREATED:
                await self._configure()
            case _ if kind == self.dialect.UPDATED:
                await self._became_ready()
            case "error":
                return await self._on_error(event.get("error") or {})
            case "input_audio_buffer.speech_started":
                await self.ctx.emit(UserSpeechStartedFrame(
                    audio_start_ms=event.get("audio_start_ms"), item_id=event.get("item_id")))
                if self.spec.should_interrupt:
                    await self.ctx.emit(InterruptFrame())
            case "input_audio_buffer.speech_stopped":
                self._stopped_at = asyncio.get_running_loop().time()
                await self.ctx.emit(UserSpeechEndedFrame(audio_end_ms=event.get("audio_end_ms"),
                                                         item_id=event.get("item_id")))
            case "input_audio_buffer.committed":
                self.audio_in.reset_buffer()
            case "conversation.item.input_audio_transcription.delta":
                if event.get("delta"):
                    await self.ctx.emit(TranscriptFrame(
                        text=str(event["delta"]), role="user", final=False,
                        item_id=event.get("item_id"), language=self.settings.language))
            case "conversation.item.input_audio_transcription.completed":
                await self._on_transcript(event)
            case "conversation.item.input_audio_transcription.failed":
                error = event.get("error") or {}
                self._report(error.get("code"), "A turn could not be transcribed: "
                             f"{error.get('message') or 'no reason given'}.")
            case _:
                pass  # informational, or unknown: tolerated
        return False

    async def _became_ready(self) -> None:
        if self.ready.is_set():
            return  # the echo of a live change
        self._update_id = None
        self.ready.set()
        pending = self.audio_in.take_pending()
        if pending:
            self.audio_in.appended(pending)
            await self._send(append_event(pending))
        self.ctx.publish(ModelConnected(session_id=self.ctx.session_id,
                                        node_id=self.ctx.node_id, attempt=self._attempt))

    async def _on_error(self, error: dict[str, Any]) -> bool:
        code, message = error.get("code"), str(error.get("message") or "unknown error")
        if code in BENIGN_CODES:
            log.debug("%s: %s (%s)", self.ctx.node_id, message, code)
            return False
        log.warning("%s: the transcription session reported an error: %s (%s)",
                    self.ctx.node_id, message, code)
        self._report(code, message, type_=error.get("type"))
        if self._update_id is not None and error.get("event_id") == self._update_id:
            # A refused configuration leaves the server's defaults: better than no ears.
            await self._became_ready()
        return code in RECONNECT_CODES

    async def _on_transcript(self, event: dict[str, Any]) -> None:
        text = str(event.get("transcript") or "")
        values: dict[str, float] = {}
        if self._stopped_at is not None:
            values["transcription_ms"] = (asyncio.get_running_loop().time()
                                          - self._stopped_at) * 1000
            self._stopped_at = None
        raw = event.get("usage")
        usage: dict[str, Any] = raw if isinstance(raw, dict) else {}
        for key in ("input_tokens", "output_tokens", "total_tokens", "seconds"):
            if isinstance(usage.get(key), int | float):
                values[key if key != "seconds" else "audio_seconds"] = float(usage[key])
        if values:
            self.ctx.publish(Metrics(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                                     values=values))
        if text.strip():
            await self.ctx.emit(TranscriptFrame(text=text, role="user", final=True,
                                                item_id=event.get("item_id"),
                                                language=self.settings.language))

    def _report(self, code: Any, message: str, *, type_: Any = None, fatal: bool = False) -> None:
        self.ctx.publish(ProviderError(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                                       message=message, code=code if isinstance(code, str)
                                       else None, type=type_ if isinstance(type_, str) else None,
                                       fatal=fatal))
