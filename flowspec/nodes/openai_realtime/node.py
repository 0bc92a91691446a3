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
from collections.abc import Mapping, Sequence
from typing import Any

from flowspec.conversation.driver import Driver, Words, say_instruction
from flowspec.conversation.events import TranscriptItem
from flowspec.conversation.flow import Flow
from flowspec.conversation.variables import VariableRefused
from flowspec.errors import AccessRefused, TransportError, UsageError
from flowspec.frames import (
    AudioFrame,
    BotSpeechEndedFrame,
    BotSpeechStartedFrame,
    CommitInputFrame,
    EndFrame,
    Frame,
    FunctionResultFrame,
    ImageFrame,
    InterruptFrame,
    PauseInputFrame,
    PlaybackProgressFrame,
    ResetConversationFrame,
    ResumeInputFrame,
    TextFrame,
    UpdateSettingsFrame,
    UserSpeechEndedFrame,
)
from flowspec.nodes.openai_realtime import moves
from flowspec.nodes.openai_realtime.audio_in import AudioInput, VideoInput, append_event
from flowspec.nodes.openai_realtime.connection import (
    Connector,
    WireSocket,
    aiohttp_connect,
    realtime_url,
    request_headers,
)
from flowspec.nodes.openai_realtime.conversation import RETRIEVE_PREFIX, History
from flowspec.nodes.openai_realtime.dialect import BETA, GA, Dialect
from flowspec.nodes.openai_realtime.held import context_item, user_text_item
from flowspec.nodes.openai_realtime.link import ModelLink
from flowspec.nodes.openai_realtime.receive import ServerEvents
from flowspec.nodes.openai_realtime.settings import LiveSettings
from flowspec.runtime.node import TOOL_RESULT_PORT, Context
from flowspec.spec.models.flow import FlowSpec
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
        self.dialect: Dialect = BETA if isinstance(spec, RealtimeBetaNodeSpec) else GA
        call = ctx.call
        holds = call.model == ctx.node_id and (call.conversation is not None or
                                               call.flow is not None)
        self.driver = Driver(call, self) if holds else None
        """The call's conversation (`conversation:`), when this node holds it."""
        end_call = self.driver.end_call_tool() if self.driver is not None else None
        self.settings = LiveSettings(spec, ctx.tool_specs, node_id=ctx.node_id,
                                     builtin={end_call.name or "": end_call} if end_call else None)
        self._connect = connect
        self._delays = tuple(reconnect_delays)
        ga = spec if isinstance(spec, RealtimeNodeSpec) else None
        self.audio_in = AudioInput(paused=spec.start_audio_paused,
                                   preroll_s=ga.user_audio_preroll_secs if ga else None)
        self.video_in = VideoInput(paused=ga.start_video_paused if ga else True,
                                   detail=ga.video_frame_detail if ga else "auto")
        self._video_supported = ga is not None
        self.link = ModelLink(ctx, self.dialect, self.settings, self.audio_in,
                              playback_wait_s=playback_wait_s)
        """Connection and conversation state, shared with `events`."""
        self.link.driver = self.driver
        self.link.flow = Flow(call.flow, ctx.tool_specs, call.tool_names,
                              session_id=ctx.session_id, node_id=ctx.node_id, bus=ctx.bus) \
            if holds and call.flow is not None else None
        self.events = ServerEvents(self.link, send_transcripts=spec.send_transcription_frames
                                   if isinstance(spec, RealtimeBetaNodeSpec) else True)
        self._restart = False
        self._stopping = False

    @property
    def history(self) -> History:
        """The conversation as the node knows it (what re-seeds a new connection)."""
        return self.link.history

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.link.loop = asyncio.get_running_loop()
        # Both loops are essential: without either the session can no longer hear the model.
        self.ctx.spawn(self._run(), name=f"flowspec:{self.ctx.node_id}:realtime", essential=True)
        self.ctx.spawn(self.link.outbox.run(), name=f"flowspec:{self.ctx.node_id}:out",
                       essential=True)
        if self.driver is not None:
            self.ctx.spawn(self.driver.run(), name=f"flowspec:{self.ctx.node_id}:conversation",
                           essential=True)

    async def stop(self) -> None:
        self._stopping = True
        link = self.link
        socket, link.socket = link.socket, None
        link.retrievals.cancel_all(self.ctx.node_id, "The node stopped.")
        if socket is not None:
            try:
                await socket.close()
            except TransportError:
                log.debug("closing %s's connection failed", self.ctx.node_id)

    async def wait_ready(self) -> None:
        """Return once the session is configured (`session.updated` arrived)."""
        await self.link.ready.wait()

    # -- public API --------------------------------------------------------------------------

    def set_audio_input_paused(self, paused: bool) -> None:
        self.audio_in.paused = paused

    def set_video_input_paused(self, paused: bool) -> None:
        self.video_in.paused = paused

    async def send_client_event(self, event: Mapping[str, Any]) -> None:
        """Send a raw client event through the node's own send path (it gets an `event_id`)."""
        await self.link.send(dict(event))

    async def retrieve_conversation_item(self, item_id: str) -> dict[str, Any]:
        """The full item (with audio) as the server holds it. Concurrent calls for one item
        share one request. Raises RemoteProtocolError when the server answers with an error."""
        future, first = self.link.retrievals.waiter(item_id)
        if first:
            await self.link.send({"type": "conversation.item.retrieve", "item_id": item_id},
                                 event_id=f"{RETRIEVE_PREFIX}{item_id}")
        return await future

    async def reset_conversation(self, history: Sequence[Mapping[str, Any]] = ()) -> None:
        """Start a new server conversation on a new connection, seeded with `history` items
        (none: an empty conversation). The session settings are sent again."""
        link = self.link
        link.history.clear()
        link.held.forget_unconfirmed()
        link.seed_items = [dict(item) for item in history]
        link.response_wanted = False
        self._restart = True
        socket = link.socket
        if socket is not None:
            await socket.close()

    async def speak(self, words: Words) -> None:
        """The conversation's words (`Voice`): exact words are asked for as such, with no tool
        call allowed; a prompt joins the session's instructions for this one response."""
        overrides: dict[str, Any]
        if words.say is not None:
            overrides = {"instructions": say_instruction(words.say), "tool_choice": "none"}
        elif words.prompt is not None:
            base = self.settings.session_payload().get("instructions")
            overrides = {"instructions": f"{base}\n\n{words.prompt}" if base else words.prompt}
        else:
            overrides = {}
        await self.link.request_response(overrides)

    # -- frames in ---------------------------------------------------------------------------

    async def flow_changed(self, flow: FlowSpec, states: frozenset[str]) -> None:
        """A live change of the call's flow (`flowspec.reload.flow_live.FlowHolder`)."""
        await moves.restate(self.link, flow, states)

    async def handle(self, frame: Frame, port: str) -> None:
        match frame:
            case AudioFrame():
                await self._on_audio_in(frame)
            case FunctionResultFrame() if port == TOOL_RESULT_PORT:
                await self._on_tool_result(frame)
            case PlaybackProgressFrame():
                self.link.turns.progress(frame.item_id, frame.played_ms)
            case BotSpeechStartedFrame():
                self.link.turns.playback_started(frame.item_id)
                if self.driver is not None:
                    self.driver.playback_started()
            case BotSpeechEndedFrame():
                self.link.turns.playback_stopped(frame.item_id)
                if self.driver is not None:
                    self.driver.playback_stopped()
            case InterruptFrame():
                await self._on_local_interrupt()
            case UserSpeechEndedFrame() if self.link.manual_turns():
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
                                              audio_sent=bool(self.link.turns.items))
                for event in update.events:
                    self.ctx.publish(event)
                await self.link.send_settings(update)
            case _:
                pass

    async def _on_audio_in(self, frame: AudioFrame) -> None:
        if self.driver is not None and self.driver.muted:
            return  # words that may not be interrupted are playing: the model hears nothing
        data = self.audio_in.accept(frame)
        if data is None:
            return
        link = self.link
        if link.socket is None or not link.ready.is_set():
            self.audio_in.hold(data)
            return
        self.audio_in.appended(data)
        await link.send(append_event(data))

    async def _on_user_text(self, text: str) -> None:
        # Through the hold even when connected: text typed meanwhile keeps its order behind
        # a re-seeding, and a connection that drops before confirming it sends it again.
        link = self.link
        if self.driver is not None:
            self.driver.user_active()
        self.ctx.publish(TranscriptItem(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                                        item_id="", role="user", text=text))
        if not link.held.hold(user_text_item(text)):
            await link.undelivered(1, f"{len(link.held)} messages already wait for the model "
                                   "connection")
            return
        await link.deliver_held()
        await link.request_response()

    async def _on_image(self, frame: ImageFrame) -> None:
        if not self._video_supported:
            return  # the beta dialect has no image input
        event = self.video_in.accept(frame, self.link.loop.time())
        if event is not None:
            await self.link.send(event)

    async def _commit_turn(self) -> None:
        if self.audio_in.buffered_ms < 100:
            # The server rejects a commit of less than 100 ms; nothing was said.
            log.debug("%s: no turn to commit (%.0f ms buffered)", self.ctx.node_id,
                      self.audio_in.buffered_ms)
            return
        await self.link.send({"type": "input_audio_buffer.commit"})
        self.audio_in.reset_buffer()
        await self.link.request_response()

    async def _on_local_interrupt(self) -> None:
        """An interrupt from upstream (a local VAD): in manual turn mode the server knows
        nothing of it, so clear its input, keep the user's onset, and cancel the response."""
        link = self.link
        if link.manual_turns() and link.socket is not None:
            await link.send({"type": "input_audio_buffer.clear"})
            self.audio_in.reset_buffer()
            preroll = self.audio_in.preroll()
            if preroll:
                self.audio_in.appended(preroll)
                await link.send(append_event(preroll))
            if link.active_response is not None:
                await link.send({"type": "response.cancel"})
        await link.barge_in(emit_interrupt=False)

    async def _on_tool_result(self, frame: FunctionResultFrame) -> None:
        link = self.link
        if link.flow is not None and not frame.cancelled:
            move = link.flow.answered(frame.call_id, frame.name, frame.result)
            await moves.answered(link, frame.call_id, frame.result, move)
            return
        item = {"type": "function_call_output", "call_id": frame.call_id, "output": frame.result}
        if not await link.send({"type": "conversation.item.create", "item": item}):
            # Not connected: the output joins the history that re-seeds the next connection.
            link.history.observe({"id": f"output_{frame.call_id}", **item})
        if link.calls.answered(frame.call_id) and not getattr(frame, "cancelled", False):
            await link.request_response()

    # -- connection --------------------------------------------------------------------------

    async def _run(self) -> None:
        """Connect, receive, and reconnect with backoff until the node stops or the connection
        cannot be restored (then the session ends cleanly)."""
        link = self.link
        try:
            values = await self.ctx.call.ready()
        except VariableRefused:
            return  # the call was refused before the model was contacted: it is ending
        self.settings.values = values
        if link.flow is not None:
            moves.enter_initial(link, values)
        conversation = self.ctx.call.conversation if self.driver is not None else None
        if conversation is not None and conversation.context:
            link.seed_items = [context_item(item.role, self.ctx.call.fill(item.text),
                                            self.dialect.ASSISTANT_TEXT_PART)
                               for item in conversation.context]
        failures = 0
        while not self._stopping:
            link.attempt += 1
            reason = ""
            was_ready = False
            try:
                url = realtime_url(self.spec.base_url, self.settings.model)
                headers = request_headers(self.spec, self.dialect.HEADERS)
                socket = await self._connect(url, headers, self.ctx.node_id)
                link.connected(socket)
                try:
                    reason = await self._receive(socket)
                finally:
                    was_ready = await link.lost(socket)
            except AccessRefused as exc:
                # At connect or mid-session (the key, its permissions or its quota refused):
                # a retry would be refused too.
                await self._give_up(str(exc), restorable=False, code=exc.code)
                return
            except TransportError as exc:
                reason = str(exc)
            if self._stopping:
                return
            if self._restart:
                self._restart = False
                failures = 0
                continue
            if was_ready:
                failures = 0  # it worked for a while: start the backoff again
            if failures >= len(self._delays):
                await self._give_up(reason)
                return
            link.report("connection_lost", f"The model connection was lost ({reason}); "
                        "reconnecting.")
            await asyncio.sleep(self._delays[failures])
            failures += 1

    async def _give_up(self, reason: str, *, restorable: bool = True,
                       code: str | None = None) -> None:
        link = self.link
        message = f"The model connection could not be restored: {reason}" if restorable \
            else f"The model could not be used: {reason}"
        log.warning("%s: %s", self.ctx.node_id, message)
        link.retrievals.cancel_all(self.ctx.node_id, message)
        link.report(code or "connection_lost", message, fatal=True)
        lost = link.held.drop_all()
        if lost:
            await link.undelivered(lost, "the model connection could not be restored"
                                   if restorable else "the model refused the connection")
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
