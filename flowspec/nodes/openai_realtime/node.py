"""`openai.realtime` and `openai.realtime_beta`: one node, one WebSocket per session.

The node speaks GA event names; `protocol.py` and `protocol_beta.py` hold what differs on the
wire. Frames in (port `in`): audio, images, user text, speech and turn frames from a local VAD,
pause/resume, commit, reset, settings, playback reports; tool results on `tool_result`. Frames
out: assistant audio/text/transcripts, user transcripts, response and speech boundaries, and an
`InterruptFrame` when the server hears the user barge in.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from flowspec.audio import AudioFormat
from flowspec.errors import TransportError, UsageError
from flowspec.frames import (
    AudioFrame,
    BotSpeechEndedFrame,
    BotSpeechStartedFrame,
    CommitInputFrame,
    EndFrame,
    Frame,
    FunctionCallFrame,
    FunctionResultFrame,
    ImageFrame,
    InterruptFrame,
    Lane,
    PauseInputFrame,
    PlaybackProgressFrame,
    ResetConversationFrame,
    ResponseEndedFrame,
    ResponseStartedFrame,
    ResumeInputFrame,
    TextFrame,
    TranscriptFrame,
    UpdateSettingsFrame,
    UserSpeechEndedFrame,
    UserSpeechStartedFrame,
)
from flowspec.nodes.openai_realtime import protocol, protocol_beta
from flowspec.nodes.openai_realtime.audio_in import AudioInput, VideoInput, append_event
from flowspec.nodes.openai_realtime.connection import Connector, WireSocket, aiohttp_connect
from flowspec.nodes.openai_realtime.conversation import (
    RETRIEVE_PREFIX,
    Calls,
    History,
    Retrievals,
)
from flowspec.nodes.openai_realtime.metrics import ResponseClock, usage_values
from flowspec.nodes.openai_realtime.settings import LiveSettings
from flowspec.nodes.openai_realtime.turns import OutputItem, Turns
from flowspec.runtime.bus import (
    ConversationItemCreated,
    ConversationItemUpdated,
    FunctionCallsStarted,
    Metrics,
    ModelConnected,
    ProviderError,
)
from flowspec.runtime.node import TOOL_RESULT_PORT, Context
from flowspec.spec.models.realtime import RealtimeNodeSpec
from flowspec.spec.models.realtime_beta import RealtimeBetaNodeSpec

log = logging.getLogger("flowspec.nodes.openai_realtime")

RECONNECT_DELAYS = (0.25, 1.0, 2.0, 4.0, 8.0)
PLAYBACK_WAIT_S = 0.5
"""How long a truncation waits for the output transport to report where playback stopped."""
BENIGN_CODES = frozenset({"response_cancel_not_active", "conversation_already_has_active_response"})
RECONNECT_CODES = frozenset({"session_expired"})


class RealtimeNode:
    """One Realtime conversation per session. Public methods may be called from any task of
    the session (not from inside a bus handler)."""

    def __init__(
        self,
        ctx: Context,
        *,
        connect: Connector = aiohttp_connect,
        reconnect_delays: Sequence[float] = RECONNECT_DELAYS,
        playback_wait_s: float = PLAYBACK_WAIT_S,
    ) -> None:
        spec = ctx.spec
        if not isinstance(spec, RealtimeNodeSpec | RealtimeBetaNodeSpec):
            raise UsageError(f"RealtimeNode cannot run a {spec.type!r} node.")
        self.ctx = ctx
        self.spec = spec
        self.dialect: ModuleType = protocol_beta if isinstance(spec, RealtimeBetaNodeSpec) \
            else protocol
        self.settings = LiveSettings(spec, ctx.tool_specs, node_id=ctx.node_id)
        self._connect = connect
        self._delays = tuple(reconnect_delays)
        self._playback_wait_s = playback_wait_s
        ga = spec if isinstance(spec, RealtimeNodeSpec) else None
        self.audio_in = AudioInput(paused=spec.start_audio_paused,
                                   preroll_s=ga.user_audio_preroll_secs if ga else None)
        self.video_in = VideoInput(paused=ga.start_video_paused if ga else True,
                                   detail=ga.video_frame_detail if ga else "auto")
        self._video_supported = ga is not None
        self._send_transcripts = (spec.send_transcription_frames
                                  if isinstance(spec, RealtimeBetaNodeSpec) else True)
        self.history = History(self.dialect.ASSISTANT_TEXT_PART)
        self.calls = Calls()
        self.retrievals = Retrievals()
        self.turns = Turns()
        self.clock = ResponseClock()
        self.session: dict[str, Any] = {}
        """The effective session, as the server last echoed it."""
        self._out_format = AudioFormat("pcm16", 24000)
        self._socket: WireSocket | None = None
        self._ready = asyncio.Event()
        self._generation = 0
        self._attempt = 0
        self._update_id: str | None = None
        self._active_response: str | None = None
        self._response_wanted = False
        self._restart = False
        self._stopping = False
        self._seed: list[dict[str, Any]] | None = None
        self._outbox: deque[tuple[int, Frame]] = deque()
        self._outbox_ready = asyncio.Event()
        self._out_epoch = 0
        self._was_ready = False
        self._loop = asyncio.get_running_loop()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.ctx.spawn(self._run(), name=f"flowspec:{self.ctx.node_id}:realtime")
        self.ctx.spawn(self._write(), name=f"flowspec:{self.ctx.node_id}:out")

    async def stop(self) -> None:
        self._stopping = True
        socket, self._socket = self._socket, None
        self.retrievals.cancel_all(self.ctx.node_id, "The node stopped.")
        if socket is not None:
            try:
                await socket.close()
            except TransportError:
                log.debug("closing %s's connection failed", self.ctx.node_id)

    async def wait_ready(self) -> None:
        """Return once the session is configured (`session.updated` arrived)."""
        await self._ready.wait()

    # -- public API --------------------------------------------------------------------------

    def set_audio_input_paused(self, paused: bool) -> None:
        self.audio_in.paused = paused

    def set_video_input_paused(self, paused: bool) -> None:
        self.video_in.paused = paused

    async def send_client_event(self, event: Mapping[str, Any]) -> None:
        """Send a raw client event through the node's own send path (it gets an `event_id`)."""
        await self._send(dict(event))

    async def retrieve_conversation_item(self, item_id: str) -> dict[str, Any]:
        """The full item (with audio) as the server holds it. Concurrent calls for one item
        share one request. Raises RemoteProtocolError when the server answers with an error."""
        future, first = self.retrievals.waiter(item_id)
        if first:
            await self._send({"type": "conversation.item.retrieve", "item_id": item_id},
                             event_id=f"{RETRIEVE_PREFIX}{item_id}")
        return await future

    async def reset_conversation(self, history: Sequence[Mapping[str, Any]] = ()) -> None:
        """Start a new server conversation on a new connection, seeded with `history` items
        (none: an empty conversation). The session settings are sent again."""
        self.history.clear()
        self._seed = [dict(item) for item in history]
        self._response_wanted = False
        self._restart = True
        socket = self._socket
        if socket is not None:
            await socket.close()

    # -- frames in ---------------------------------------------------------------------------

    async def handle(self, frame: Frame, port: str) -> None:
        match frame:
            case AudioFrame():
                await self._on_audio_in(frame)
            case FunctionResultFrame() if port == TOOL_RESULT_PORT:
                await self._on_tool_result(frame)
            case PlaybackProgressFrame():
                self.turns.progress(frame.item_id, frame.played_ms)
            case BotSpeechStartedFrame():
                self.turns.playback_started(frame.item_id)
            case BotSpeechEndedFrame():
                self.turns.playback_stopped(frame.item_id)
            case InterruptFrame():
                await self._on_local_interrupt()
            case UserSpeechEndedFrame() if self._manual_turns():
                await self._commit_turn()
            case CommitInputFrame():
                await self._commit_turn()
            case ImageFrame():
                await self._on_image(frame)
            case TextFrame(role="user"):
                await self._send({"type": "conversation.item.create", "item": {
                    "type": "message", "role": "user",
                    "content": [{"type": "input_text", "text": frame.text}]}})
                await self._request_response()
            case PauseInputFrame() | ResumeInputFrame():
                paused = isinstance(frame, PauseInputFrame)
                if frame.kind == "audio":
                    self.set_audio_input_paused(paused)
                else:
                    self.set_video_input_paused(paused)
            case ResetConversationFrame():
                await self.reset_conversation()
            case UpdateSettingsFrame():
                update = self.settings.update(frame.delta, frame.version, self.ctx.session_id,
                                              audio_sent=bool(self.turns.items))
                for event in update.events:
                    self.ctx.publish(event)
                if update.session:
                    await self._send(protocol.session_update(
                        self.dialect.settings_session(update.session)))
            case _:
                pass

    async def _on_audio_in(self, frame: AudioFrame) -> None:
        data = self.audio_in.accept(frame)
        if data is None:
            return
        if not self._ready.is_set() or self._socket is None:
            self.audio_in.hold(data)
            return
        self.audio_in.appended(data)
        await self._send(append_event(data))

    async def _on_image(self, frame: ImageFrame) -> None:
        if not self._video_supported:
            return  # the beta dialect has no image input
        event = self.video_in.accept(frame, self._loop.time())
        if event is not None:
            await self._send(event)

    async def _commit_turn(self) -> None:
        if self.audio_in.buffered_ms < 100:
            # The server rejects a commit of less than 100 ms; nothing was said.
            log.debug("%s: no turn to commit (%.0f ms buffered)", self.ctx.node_id,
                      self.audio_in.buffered_ms)
            return
        await self._send({"type": "input_audio_buffer.commit"})
        self.audio_in.reset_buffer()
        await self._request_response()

    async def _on_local_interrupt(self) -> None:
        """An interrupt from upstream (a local VAD): in manual turn mode the server knows
        nothing of it, so clear its input, keep the user's onset, and cancel the response."""
        if self._manual_turns() and self._socket is not None:
            await self._send({"type": "input_audio_buffer.clear"})
            self.audio_in.reset_buffer()
            preroll = self.audio_in.preroll()
            if preroll:
                self.audio_in.appended(preroll)
                await self._send(append_event(preroll))
            if self._active_response is not None:
                await self._send({"type": "response.cancel"})
        await self._barge_in(emit_interrupt=False)

    async def _on_tool_result(self, frame: FunctionResultFrame) -> None:
        item = {"type": "function_call_output", "call_id": frame.call_id, "output": frame.result}
        if not await self._send({"type": "conversation.item.create", "item": item}):
            # Not connected: the output joins the history that re-seeds the next connection.
            self.history.observe({"id": f"output_{frame.call_id}", **item})
        if self.calls.answered(frame.call_id) and not getattr(frame, "cancelled", False):
            await self._request_response()

    # -- frames out --------------------------------------------------------------------------

    def _queue(self, frame: Frame) -> None:
        """Ordered output goes through one writer task, so that the receive loop never waits
        for a slow consumer and can always act on a barge-in at once."""
        self._outbox.append((self._out_epoch, frame))
        self._outbox_ready.set()

    async def _write(self) -> None:
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                epoch, frame = self._outbox.popleft()
                if epoch != self._out_epoch and frame.lane is Lane.DATA:
                    continue  # queued before a barge-in: stale
                await self.ctx.emit(frame)

    def _flush_output(self) -> None:
        self._out_epoch += 1
        self._outbox = deque(e for e in self._outbox if e[1].lane is not Lane.DATA)

    # -- connection --------------------------------------------------------------------------

    def _url(self) -> str:
        parts = urlsplit(self.spec.base_url)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        query = "&".join(q for q in (parts.query, urlencode({"model": self.settings.model})) if q)
        return urlunsplit((scheme, parts.netloc, parts.path, query, parts.fragment))

    def _headers(self) -> dict[str, str]:
        key = self.spec.api_key.get_secret_value() if self.spec.api_key is not None \
            else os.environ.get("OPENAI_API_KEY", "")
        headers = {"Authorization": f"Bearer {key}", **self.dialect.HEADERS}
        if self.spec.organization:
            headers["OpenAI-Organization"] = self.spec.organization
        if self.spec.project:
            headers["OpenAI-Project"] = self.spec.project
        headers.update(self.spec.default_headers)
        return headers

    async def _run(self) -> None:
        """Connect, receive, and reconnect with backoff until the node stops or the connection
        cannot be restored (then the session ends cleanly)."""
        failures = 0
        while not self._stopping:
            self._attempt += 1
            reason = ""
            try:
                socket = await self._connect(self._url(), self._headers(), self.ctx.node_id)
            except TransportError as exc:
                reason = str(exc)
            else:
                self._socket = socket
                self._generation += 1
                try:
                    reason = await self._receive(socket)
                except TransportError as exc:
                    reason = str(exc)
                finally:
                    await self._disconnected(socket)
            if self._stopping:
                return
            if self._restart:
                self._restart = False
                failures = 0
                continue
            if self._was_ready:
                failures = 0  # it worked for a while: start the backoff again
                self._was_ready = False
            if failures >= len(self._delays):
                await self._give_up(reason)
                return
            self._report("connection_lost", f"The model connection was lost ({reason}); "
                         "reconnecting.")
            await asyncio.sleep(self._delays[failures])
            failures += 1

    async def _disconnected(self, socket: WireSocket) -> None:
        self._was_ready = self._ready.is_set()
        self._socket = None
        self._ready.clear()
        self._active_response = None
        self.turns.reset()
        self.clock.stop()
        try:
            await socket.close()
        except TransportError:
            pass
        if self.turns.end():
            self._queue(ResponseEndedFrame(status="disconnected"))

    async def _give_up(self, reason: str) -> None:
        message = f"The model connection could not be restored: {reason}"
        log.warning("%s: %s", self.ctx.node_id, message)
        self.retrievals.cancel_all(self.ctx.node_id, message)
        self._report("connection_lost", message, fatal=True)
        await self.ctx.emit(EndFrame(reason=f"{self.ctx.node_id}: {message}"))

    async def _receive(self, socket: WireSocket) -> str:
        while True:
            event = await socket.receive()
            if event is None:
                return "closed by the server"
            kind = self.dialect.canonical(str(event.get("type")))
            expired = await self._dispatch(kind, event)
            if expired:
                return "session expired"

    async def _send(self, event: dict[str, Any], *, event_id: str | None = None) -> bool:
        """Send one client event; False when there is no connection (it is dropped: the
        conversation is re-seeded on reconnect, and audio is stale by then)."""
        socket = self._socket
        if socket is None:
            log.debug("%s: not connected; dropped %s", self.ctx.node_id, event.get("type"))
            return False
        event.setdefault("event_id", event_id or f"fs_{uuid.uuid4().hex}")
        try:
            await socket.send(event)
        except TransportError as exc:
            # The receive loop sees the same failure and reconnects.
            log.debug("%s: send failed: %s", self.ctx.node_id, exc)
            return False
        return True

    async def _request_response(self) -> None:
        """Ask for a response now, or as soon as the session is ready and idle."""
        if not self._ready.is_set() or self._active_response is not None:
            self._response_wanted = True
            return
        self._response_wanted = False
        self.clock.start(self._loop.time())
        await self._send(self.dialect.response_create(self.session))

    def _manual_turns(self) -> bool:
        return self._ready.is_set() and self.dialect.turn_detection(self.session) is None

    def _report(self, code: str | None, message: str, *, type_: str | None = None,
                fatal: bool = False) -> None:
        self.ctx.publish(ProviderError(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                                       message=message, code=code, type=type_, fatal=fatal))

    # -- server events -----------------------------------------------------------------------

    async def _dispatch(self, kind: str, event: dict[str, Any]) -> bool:
        match kind:
            case "session.created":
                await self._on_session_created()
            case "session.updated":
                await self._on_session_updated(event.get("session") or {})
            case "error":
                return await self._on_error(event.get("error") or {})
            case "input_audio_buffer.speech_started":
                await self._on_speech_started(event)
            case "input_audio_buffer.speech_stopped":
                self.clock.start(self._loop.time())
                await self.ctx.emit(UserSpeechEndedFrame(audio_end_ms=event.get("audio_end_ms"),
                                                         item_id=event.get("item_id")))
            case "input_audio_buffer.committed" if not self._manual_turns():
                # The server VAD committed. In manual mode the node tracks its own commits and
                # clears: this reply may arrive after the pre-roll was appended again.
                self.audio_in.reset_buffer()
            case "conversation.item.added":
                self._on_item(event.get("item") or {}, created=True)
            case "conversation.item.done":
                self._on_item(event.get("item") or {}, created=False)
            case "conversation.item.retrieved":
                self.retrievals.resolve(event.get("item") or {})
            case "conversation.item.input_audio_transcription.delta":
                if self._send_transcripts and event.get("delta"):
                    self._queue(TranscriptFrame(text=event["delta"], role="user", final=False,
                                                item_id=event.get("item_id")))
            case "conversation.item.input_audio_transcription.completed":
                self._on_user_transcript(event)
            case "response.created":
                self._active_response = (event.get("response") or {}).get("id")
            case "response.output_audio.delta":
                self._on_audio_delta(event)
            case "response.output_audio_transcript.delta" | "response.output_text.delta":
                self._on_text_delta(kind, event)
            case "response.output_audio_transcript.done" | "response.output_text.done":
                self._on_text_done(kind, event)
            case "response.function_call_arguments.done" if self.dialect.CALLS_ON_ARGUMENTS_DONE:
                await self._on_calls(event.get("response_id") or "", [event])
            case "response.done":
                await self._on_response_done(event.get("response") or {})
            case _:
                pass  # everything else is informational; unknown types are tolerated
        return False

    async def _on_session_created(self) -> None:
        self._update_id = f"fs_{uuid.uuid4().hex}"
        await self._send(protocol.session_update(self.settings.session_payload()),
                         event_id=self._update_id)

    async def _on_session_updated(self, session: dict[str, Any]) -> None:
        self.session = session
        self.audio_in.set_format(*self.dialect.audio_format(session, "input"))
        encoding, rate = self.dialect.audio_format(session, "output")
        self._out_format = AudioFormat(encoding, rate)
        if not self._ready.is_set():
            await self._became_ready()

    async def _became_ready(self) -> None:
        self._update_id = None
        self._ready.set()
        seed = self.history.seed() if self._seed is None else [
            {"type": "conversation.item.create", "item": item} for item in self._seed]
        self._seed = None
        for event in seed:
            await self._send(event)
        pending = self.audio_in.take_pending()
        if pending:
            self.audio_in.appended(pending)
            await self._send(append_event(pending))
        self.ctx.publish(ModelConnected(session_id=self.ctx.session_id,
                                        node_id=self.ctx.node_id, attempt=self._attempt,
                                        seeded=len(seed)))
        if self._response_wanted:
            await self._request_response()

    async def _on_error(self, error: dict[str, Any]) -> bool:
        code, message = error.get("code"), str(error.get("message") or "unknown error")
        event_id = str(error.get("event_id") or "")
        if self.retrievals.fail(event_id, message, self.ctx.node_id):
            return False
        if code in BENIGN_CODES:
            log.debug("%s: %s (%s)", self.ctx.node_id, message, code)
            return False
        log.warning("%s: the model reported an error: %s (%s)", self.ctx.node_id, message, code)
        self._report(code, message, type_=error.get("type"))
        if self._update_id is not None and event_id == self._update_id:
            # A rejected first update leaves the server's defaults; better than no session.
            await self._became_ready()
        return code in RECONNECT_CODES

    def _on_item(self, item: dict[str, Any], *, created: bool) -> None:
        item_id = str(item.get("id") or "")
        self.history.observe(item)
        if item.get("type") == "function_call" and item.get("call_id"):
            self.calls.names[str(item["call_id"])] = str(item.get("name") or "")
        kind = ConversationItemCreated if created else ConversationItemUpdated
        self.ctx.publish(kind(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                              item_id=item_id, item=item))

    def _on_user_transcript(self, event: dict[str, Any]) -> None:
        item_id, text = str(event.get("item_id") or ""), str(event.get("transcript") or "")
        self.history.transcript(item_id, "user", text)
        self.ctx.publish(ConversationItemUpdated(session_id=self.ctx.session_id,
                                                 node_id=self.ctx.node_id, item_id=item_id))
        if self._send_transcripts:
            self._queue(TranscriptFrame(text=text, role="user", final=True, item_id=item_id))

    def _open_turn(self, response_id: str | None) -> None:
        ttfb = self.clock.first_output(self._loop.time())
        if ttfb is not None:
            self._metrics({"ttfb_ms": ttfb})
        if self.turns.start(response_id):
            self._queue(ResponseStartedFrame(response_id=response_id))

    def _on_audio_delta(self, event: dict[str, Any]) -> None:
        response_id = event.get("response_id")
        if self.turns.dropped(response_id):
            return
        audio = base64.b64decode(event.get("delta") or "")
        item_id = str(event.get("item_id") or "")
        self._open_turn(response_id)
        self.turns.audio(item_id, int(event.get("content_index") or 0), response_id, len(audio),
                         self._out_format, self._generation, self._loop.time())
        self._queue(AudioFrame(audio=audio, encoding=self._out_format.encoding,
                               sample_rate=self._out_format.sample_rate, item_id=item_id))

    def _on_text_delta(self, kind: str, event: dict[str, Any]) -> None:
        if self.turns.dropped(event.get("response_id")) or not event.get("delta"):
            return
        self._open_turn(event.get("response_id"))
        item_id = event.get("item_id")
        if kind == "response.output_text.delta":
            self._queue(TextFrame(text=event["delta"], item_id=item_id))
        else:
            self._queue(TranscriptFrame(text=event["delta"], role="assistant", final=False,
                                        item_id=item_id))

    def _on_text_done(self, kind: str, event: dict[str, Any]) -> None:
        item_id = str(event.get("item_id") or "")
        text = str(event.get("transcript") or event.get("text") or "")
        self.history.transcript(item_id, "assistant", text)
        if kind == "response.output_audio_transcript.done" and text:
            if not self.turns.dropped(event.get("response_id")):
                self._queue(TranscriptFrame(text=text, role="assistant", final=True,
                                            item_id=item_id))

    async def _on_calls(self, response_id: str, items: list[dict[str, Any]]) -> None:
        started: list[FunctionCallFrame] = []
        for item in items:
            call_id = str(item.get("call_id") or "")
            name = str(item.get("name") or self.calls.names.pop(call_id, ""))
            if not call_id or not name or not self.calls.add(response_id, call_id, name):
                continue
            started.append(FunctionCallFrame(call_id=call_id, name=name,
                                             arguments=str(item.get("arguments") or "{}")))
        if not started:
            return
        self.ctx.publish(FunctionCallsStarted(
            session_id=self.ctx.session_id, node_id=self.ctx.node_id,
            calls=tuple((call.call_id, call.name) for call in started)))
        for call in started:
            await self.ctx.call_tool(call)

    async def _on_response_done(self, response: dict[str, Any]) -> None:
        response_id = str(response.get("id") or "")
        status = str(response.get("status") or "completed")
        self._active_response = None
        now = self._loop.time()
        values = usage_values(response.get("usage"))
        processing = self.clock.done(now)
        if processing is not None:
            values["processing_ms"] = processing
        if values:
            self._metrics(values)
        if status == "failed":
            error = (response.get("status_details") or {}).get("error") or {}
            self._report(error.get("code"), str(error.get("message") or "The response failed."),
                         type_=error.get("type"))
        output = [item for item in response.get("output") or [] if isinstance(item, dict)]
        if not self.dialect.CALLS_ON_ARGUMENTS_DONE:
            for item in output:
                self.ctx.publish(ConversationItemUpdated(
                    session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                    item_id=str(item.get("id") or ""), item=item))
                self.history.observe(item)
            calls = [i for i in output if i.get("type") == "function_call"
                     and i.get("status") != "incomplete"]
            await self._on_calls(response_id, calls)
        if self.turns.end():
            self._queue(ResponseEndedFrame(response_id=response_id, status=status))
        if self.calls.response_done(response_id) or self._response_wanted:
            await self._request_response()

    def _metrics(self, values: dict[str, float]) -> None:
        self.ctx.publish(Metrics(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                                 values=values))

    # -- barge-in ----------------------------------------------------------------------------

    async def _on_speech_started(self, event: dict[str, Any]) -> None:
        await self.ctx.emit(UserSpeechStartedFrame(audio_start_ms=event.get("audio_start_ms"),
                                                   item_id=event.get("item_id")))
        await self._barge_in(emit_interrupt=True)

    async def _barge_in(self, *, emit_interrupt: bool) -> None:
        """Stop the assistant: drop its queued output, interrupt the nodes downstream (the
        output transport stops playback and reports what it played), then truncate the item
        to what the user heard."""
        self._flush_output()
        self.clock.stop()
        item = self.turns.interrupt()
        if emit_interrupt:
            await self.ctx.emit(InterruptFrame())
        if self.turns.end():
            self._queue(ResponseEndedFrame(response_id=self.turns.response_id,
                                           status="interrupted"))
        if item is not None:
            self.ctx.spawn(self._truncate(item), name=f"flowspec:{self.ctx.node_id}:truncate")

    async def _truncate(self, item: OutputItem) -> None:
        if self.turns.reports_playback and not item.stopped.is_set():
            try:
                async with asyncio.timeout(self._playback_wait_s):
                    await item.stopped.wait()
            except TimeoutError:
                log.debug("%s: no playback report for %s; using the last one",
                          self.ctx.node_id, item.item_id)
        self.turns.forget(item)
        end_ms = item.audio_end_ms(self._loop.time(), self.turns.reports_playback)
        if item.generation != self._generation or end_ms >= int(item.received_ms):
            return  # another connection, or the user heard it all: nothing to cut
        await self._send({"type": "conversation.item.truncate", "item_id": item.item_id,
                          "content_index": item.content_index, "audio_end_ms": end_ms})
