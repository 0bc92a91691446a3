"""`openai.realtime` and `openai.realtime_beta`: one node, one WebSocket per session.

The node speaks GA event names; `protocol.py` and `protocol_beta.py` hold what differs on the
wire. Frames in (port `in`): audio, images, user text, speech and turn frames from a local VAD,
pause/resume, commit, reset, settings, playback reports; tool results on `tool_result`. Frames
out: assistant audio/text/transcripts, user transcripts, response and speech boundaries, and an
`InterruptFrame` when the server hears the user barge in. Server events are handled in
`receive.py`; output frames leave through `output.py`'s writer. User text waits in `held.py`
while the model cannot take it (before the session is configured, during a reconnect); what is
never delivered is reported to the client, never dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from flowspec.errors import TransportError, UsageError
from flowspec.frames import (
    AudioFrame,
    BotSpeechEndedFrame,
    BotSpeechStartedFrame,
    CommitInputFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    FunctionResultFrame,
    ImageFrame,
    InterruptFrame,
    PauseInputFrame,
    PlaybackProgressFrame,
    ResetConversationFrame,
    ResponseEndedFrame,
    ResumeInputFrame,
    TextFrame,
    UpdateSettingsFrame,
    UserSpeechEndedFrame,
)
from flowspec.nodes.openai_realtime import protocol, protocol_beta
from flowspec.nodes.openai_realtime.audio_in import AudioInput, VideoInput, append_event
from flowspec.nodes.openai_realtime.connection import (
    Connector,
    WireSocket,
    aiohttp_connect,
    realtime_url,
    request_headers,
)
from flowspec.nodes.openai_realtime.conversation import (
    RETRIEVE_PREFIX,
    Calls,
    History,
    Retrievals,
)
from flowspec.nodes.openai_realtime.held import HeldInput, user_text_item
from flowspec.nodes.openai_realtime.metrics import ResponseClock
from flowspec.nodes.openai_realtime.output import Outbox
from flowspec.nodes.openai_realtime.receive import ServerEvents
from flowspec.nodes.openai_realtime.settings import LiveSettings, SettingsUpdate
from flowspec.nodes.openai_realtime.turns import OutputItem, Turns
from flowspec.runtime.bus import ClientMessageRejected, ProviderError
from flowspec.runtime.node import TOOL_RESULT_PORT, Context
from flowspec.spec.models.realtime import RealtimeNodeSpec
from flowspec.spec.models.realtime_beta import RealtimeBetaNodeSpec

log = logging.getLogger("flowspec.nodes.openai_realtime")

RECONNECT_DELAYS = (0.25, 1.0, 2.0, 4.0, 8.0)
PLAYBACK_WAIT_S = 0.5
"""How long a truncation waits for the output transport to report where playback stopped."""


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
        self.history = History(self.dialect.ASSISTANT_TEXT_PART)
        self.held = HeldInput()
        """User text on its way to the model (held while it is not ready)."""
        self._delivering = asyncio.Lock()  # keeps held text in order behind a re-seeding
        self.calls = Calls()
        self.retrievals = Retrievals()
        self.turns = Turns()
        self.clock = ResponseClock()
        self.session: dict[str, Any] = {}
        """The effective session, as the server last echoed it."""
        self.outbox = Outbox(ctx.emit)
        self.events = ServerEvents(self, send_transcripts=spec.send_transcription_frames
                                   if isinstance(spec, RealtimeBetaNodeSpec) else True)
        # Connection state, shared with `events`.
        self.ready = asyncio.Event()
        self.generation = 0
        """Counts connections: item ids mean nothing to a later one."""
        self.attempt = 0
        self.active_response: str | None = None
        self.response_wanted = False
        self.seed_items: list[dict[str, Any]] | None = None
        """Items for the next connection instead of the history (after a reset)."""
        self.loop = asyncio.get_running_loop()
        self._socket: WireSocket | None = None
        self._restart = False
        self._stopping = False
        self._was_ready = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        # Both loops are essential: without either the session can no longer hear the model.
        self.ctx.spawn(self._run(), name=f"flowspec:{self.ctx.node_id}:realtime", essential=True)
        self.ctx.spawn(self.outbox.run(), name=f"flowspec:{self.ctx.node_id}:out",
                       essential=True)

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
        await self.ready.wait()

    # -- public API --------------------------------------------------------------------------

    def set_audio_input_paused(self, paused: bool) -> None:
        self.audio_in.paused = paused

    def set_video_input_paused(self, paused: bool) -> None:
        self.video_in.paused = paused

    async def send_client_event(self, event: Mapping[str, Any]) -> None:
        """Send a raw client event through the node's own send path (it gets an `event_id`)."""
        await self.send(dict(event))

    async def retrieve_conversation_item(self, item_id: str) -> dict[str, Any]:
        """The full item (with audio) as the server holds it. Concurrent calls for one item
        share one request. Raises RemoteProtocolError when the server answers with an error."""
        future, first = self.retrievals.waiter(item_id)
        if first:
            await self.send({"type": "conversation.item.retrieve", "item_id": item_id},
                            event_id=f"{RETRIEVE_PREFIX}{item_id}")
        return await future

    async def reset_conversation(self, history: Sequence[Mapping[str, Any]] = ()) -> None:
        """Start a new server conversation on a new connection, seeded with `history` items
        (none: an empty conversation). The session settings are sent again."""
        self.history.clear()
        self.held.forget_unconfirmed()
        self.seed_items = [dict(item) for item in history]
        self.response_wanted = False
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
            case UserSpeechEndedFrame() if self.manual_turns():
                await self._commit_turn()
            case CommitInputFrame():
                await self._commit_turn()
            case ImageFrame():
                await self._on_image(frame)
            case TextFrame(role="user"):
                await self._on_user_text(frame.text)
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
                await self.send_settings(update)
            case _:
                pass

    async def _on_audio_in(self, frame: AudioFrame) -> None:
        data = self.audio_in.accept(frame)
        if data is None:
            return
        if not self.ready.is_set() or self._socket is None:
            self.audio_in.hold(data)
            return
        self.audio_in.appended(data)
        await self.send(append_event(data))

    async def _on_user_text(self, text: str) -> None:
        # Through the hold even when connected: text typed meanwhile keeps its order behind
        # a re-seeding, and a connection that drops before confirming it sends it again.
        if not self.held.hold(user_text_item(text)):
            await self._undelivered(1, f"{len(self.held)} messages already wait for the model "
                                    "connection")
            return
        await self.deliver_held()
        await self.request_response()

    async def deliver_held(self, seed: Sequence[dict[str, Any]] = ()) -> int:
        """Send the `seed` events, then the held user items, in order, while the session is
        ready; returns how many held items went. Text arriving meanwhile queues behind."""
        delivered = 0
        async with self._delivering:
            for event in seed:
                await self.send(event)
            while self.ready.is_set() and (item := self.held.next()) is not None:
                if not await self.send({"type": "conversation.item.create", "item": dict(item)}):
                    self.held.put_back(item)  # the next connection sends it
                    break
                delivered += 1
        return delivered

    async def _undelivered(self, count: int, why: str) -> None:
        """Tell the client (an error downstream, and the bus) that its input was lost."""
        message = (f"{count} user message{'s were' if count > 1 else ' was'} not delivered: "
                   f"{why}.")
        log.warning("%s: %s", self.ctx.node_id, message)
        self.ctx.publish(ClientMessageRejected(session_id=self.ctx.session_id,
                                               node_id=self.ctx.node_id,
                                               code="input_not_delivered", message=message))
        await self.ctx.emit(ErrorFrame(node_id=self.ctx.node_id, message=message,
                                       code="input_not_delivered"))

    async def _on_image(self, frame: ImageFrame) -> None:
        if not self._video_supported:
            return  # the beta dialect has no image input
        event = self.video_in.accept(frame, self.loop.time())
        if event is not None:
            await self.send(event)

    async def _commit_turn(self) -> None:
        if self.audio_in.buffered_ms < 100:
            # The server rejects a commit of less than 100 ms; nothing was said.
            log.debug("%s: no turn to commit (%.0f ms buffered)", self.ctx.node_id,
                      self.audio_in.buffered_ms)
            return
        await self.send({"type": "input_audio_buffer.commit"})
        self.audio_in.reset_buffer()
        await self.request_response()

    async def _on_local_interrupt(self) -> None:
        """An interrupt from upstream (a local VAD): in manual turn mode the server knows
        nothing of it, so clear its input, keep the user's onset, and cancel the response."""
        if self.manual_turns() and self._socket is not None:
            await self.send({"type": "input_audio_buffer.clear"})
            self.audio_in.reset_buffer()
            preroll = self.audio_in.preroll()
            if preroll:
                self.audio_in.appended(preroll)
                await self.send(append_event(preroll))
            if self.active_response is not None:
                await self.send({"type": "response.cancel"})
        await self.barge_in(emit_interrupt=False)

    async def _on_tool_result(self, frame: FunctionResultFrame) -> None:
        item = {"type": "function_call_output", "call_id": frame.call_id, "output": frame.result}
        if not await self.send({"type": "conversation.item.create", "item": item}):
            # Not connected: the output joins the history that re-seeds the next connection.
            self.history.observe({"id": f"output_{frame.call_id}", **item})
        if self.calls.answered(frame.call_id) and not getattr(frame, "cancelled", False):
            await self.request_response()

    # -- connection --------------------------------------------------------------------------

    async def _run(self) -> None:
        """Connect, receive, and reconnect with backoff until the node stops or the connection
        cannot be restored (then the session ends cleanly)."""
        failures = 0
        while not self._stopping:
            self.attempt += 1
            reason = ""
            try:
                url = realtime_url(self.spec.base_url, self.settings.model)
                headers = request_headers(self.spec, self.dialect.HEADERS)
                socket = await self._connect(url, headers, self.ctx.node_id)
            except TransportError as exc:
                reason = str(exc)
            else:
                self._socket = socket
                self.generation += 1
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
            self.report("connection_lost", f"The model connection was lost ({reason}); "
                        "reconnecting.")
            await asyncio.sleep(self._delays[failures])
            failures += 1

    async def _disconnected(self, socket: WireSocket) -> None:
        self._was_ready = self.ready.is_set()
        self._socket = None
        self.ready.clear()
        self.held.connection_lost()
        self.active_response = None
        self.turns.reset()
        self.clock.stop()
        try:
            await socket.close()
        except TransportError:
            pass
        if self.turns.end():
            self.outbox.put(ResponseEndedFrame(status="disconnected"))

    async def _give_up(self, reason: str) -> None:
        message = f"The model connection could not be restored: {reason}"
        log.warning("%s: %s", self.ctx.node_id, message)
        self.retrievals.cancel_all(self.ctx.node_id, message)
        self.report("connection_lost", message, fatal=True)
        lost = self.held.drop_all()
        if lost:
            await self._undelivered(lost, "the model connection could not be restored")
        await self.ctx.emit(EndFrame(reason=f"{self.ctx.node_id}: {message}"))

    async def _receive(self, socket: WireSocket) -> str:
        while True:
            event = await socket.receive()
            if event is None:
                return "closed by the server"
            kind = self.dialect.canonical(str(event.get("type")))
            expired = await self.events.dispatch(kind, event)
            if expired:
                return "session expired"

    # -- shared with `events` (receive.py) -----------------------------------------------------

    async def send(self, event: dict[str, Any], *, event_id: str | None = None) -> bool:
        """Send one client event; False when there is no connection (it is dropped: the
        conversation is re-seeded on reconnect, user text is held (`held.py`) and sent again,
        and audio is stale by then)."""
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

    async def send_settings(self, update: SettingsUpdate) -> None:
        """Send an update's partial session (if any) under the id its answer is matched by."""
        if not update.session:
            return
        event = protocol.session_update(self.dialect.settings_session(update.session))
        if not await self.send(event, event_id=update.event_id):
            # Not connected: the next connection sends the whole (new) session anyway.
            self.settings.forget(update.event_id)

    async def request_response(self) -> None:
        """Ask for a response now, or as soon as the session is ready and idle."""
        if not self.ready.is_set() or self.active_response is not None:
            self.response_wanted = True
            return
        self.response_wanted = False
        self.clock.start(self.loop.time())
        await self.send(self.dialect.response_create(self.session))

    def manual_turns(self) -> bool:
        return self.ready.is_set() and self.dialect.turn_detection(self.session) is None

    def report(self, code: str | None, message: str, *, type_: str | None = None,
               fatal: bool = False) -> None:
        self.ctx.publish(ProviderError(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                                       message=message, code=code, type=type_, fatal=fatal))

    # -- barge-in ----------------------------------------------------------------------------

    async def barge_in(self, *, emit_interrupt: bool) -> None:
        """Stop the assistant: drop its queued output, interrupt the nodes downstream (the
        output transport stops playback and reports what it played), then truncate the item
        to what the user heard."""
        self.outbox.flush()
        self.clock.stop()
        item = self.turns.interrupt()
        if emit_interrupt:
            await self.ctx.emit(InterruptFrame())
        if self.turns.end():
            self.outbox.put(ResponseEndedFrame(response_id=self.turns.response_id,
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
        end_ms = item.audio_end_ms(self.loop.time(), self.turns.reports_playback)
        if item.generation != self.generation or end_ms >= int(item.received_ms):
            return  # another connection, or the user heard it all: nothing to cut
        await self.send({"type": "conversation.item.truncate", "item_id": item.item_id,
                         "content_index": item.content_index, "audio_end_ms": end_ms})
