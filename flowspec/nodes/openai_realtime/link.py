"""A Realtime node's link to the model: the one owner of what the node knows about its connection,
the server's session and the response in progress, and the one way client events go out.

The node (`node.py`) turns frames into client events and runs the connection loop; the server
events handler (`receive.py`) turns server events into frames. Both read and change this state
through a `ModelLink`, and neither knows the other.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from flowspec.conversation.events import FlowTransitionRefused
from flowspec.conversation.flow import Flow, Move
from flowspec.errors import TransportError
from flowspec.frames import ErrorFrame, InterruptFrame, ResponseEndedFrame
from flowspec.nodes.openai_realtime import protocol
from flowspec.nodes.openai_realtime.audio_in import AudioInput
from flowspec.nodes.openai_realtime.connection import EncodedEvent, WireSocket, encode
from flowspec.nodes.openai_realtime.conversation import Calls, History, Retrievals
from flowspec.nodes.openai_realtime.dialect import Dialect
from flowspec.nodes.openai_realtime.held import HeldInput
from flowspec.nodes.openai_realtime.metrics import ResponseClock
from flowspec.nodes.openai_realtime.output import Outbox
from flowspec.nodes.openai_realtime.settings import LiveSettings, SettingsUpdate
from flowspec.nodes.openai_realtime.turns import OutputItem, Turns
from flowspec.runtime.bus import ClientMessageRejected, ProviderError
from flowspec.runtime.node import Context

if TYPE_CHECKING:
    from flowspec.conversation.driver import Driver

log = logging.getLogger("flowspec.nodes.openai_realtime")

_last_encoded: tuple[object, object, str] = (None, None, "")
"""The partial session last encoded, its dialect and its JSON (`ModelLink._session_update`)."""

PENDING = "pending"


class ModelLink:
    """Connection and conversation state of one Realtime node, shared by its frame handling and
    its server events handling. Methods may be called from any task of the session."""

    def __init__(self, ctx: Context, dialect: Dialect, settings: LiveSettings,
                 audio_in: AudioInput, *, playback_wait_s: float) -> None:
        self.ctx = ctx
        self.dialect = dialect
        self.settings = settings
        self.audio_in = audio_in
        self.history = History(dialect.ASSISTANT_TEXT_PART)
        self.held = HeldInput()
        """User text on its way to the model (held while it is not ready)."""
        self.calls = Calls()
        self.retrievals = Retrievals()
        self.turns = Turns()
        self.clock = ResponseClock()
        self.outbox = Outbox(ctx.emit)
        self.session: dict[str, Any] = {}
        """The effective session, as the server last echoed it."""
        self.ready = asyncio.Event()
        """Set once the session is configured (`session.updated`), cleared when it is lost."""
        self.generation = 0
        """Counts connections: item ids mean nothing to a later one."""
        self.attempt = 0
        self.active_response: str | None = None
        """The response in progress: its id, PENDING between our `response.create` and the
        server's `response.created`, None when the model is idle."""
        self.response_request = ""
        """The event id of the last `response.create` sent (an error about it frees the
        pending response)."""
        self.response_wanted = False
        self.seed_items: list[dict[str, Any]] | None = None
        """Items for the next connection instead of the history (after a reset)."""
        self.driver: Driver | None = None
        """The call's conversation, when this node holds it (`conversation:`)."""
        self.flow: Flow | None = None
        """The call's place in the spec's `flow:`, when this node holds it."""
        self.wanted: dict[str, Any] = {}
        """What the response asked for while another ran carries (its `instructions`, ...)."""
        self.loop = asyncio.get_running_loop()
        self.socket: WireSocket | None = None
        self._playback_wait_s = playback_wait_s
        self._delivering = asyncio.Lock()  # keeps held text in order behind a re-seeding
        # Client event ids only need to be unique on the connection: a counter, not a random id
        # (a getrandom call per appended audio frame). Ids an answer is matched by (settings
        # updates, retrievals) are made where they are matched, and never look like these.
        self._ids = itertools.count(1)

    # -- the connection ------------------------------------------------------------------------

    def connected(self, socket: WireSocket) -> None:
        self.socket = socket
        self.generation += 1

    async def lost(self, socket: WireSocket) -> bool:
        """Forget what only the lost connection knew, and close it. True when the session had
        been configured on it."""
        was_ready = self.ready.is_set()
        self.socket = None
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
        return was_ready

    def manual_turns(self) -> bool:
        return self.ready.is_set() and self.dialect.turn_detection(self.session) is None

    # -- client events -------------------------------------------------------------------------

    async def send(self, event: dict[str, Any], *, event_id: str | None = None) -> bool:
        """Send one client event; False when there is no connection (it is dropped: the
        conversation is re-seeded on reconnect, user text is held (`held.py`) and sent again,
        and audio is stale by then)."""
        socket = self.socket
        if socket is None:
            log.debug("%s: not connected; dropped %s", self.ctx.node_id, event.get("type"))
            return False
        if "event_id" not in event:
            event["event_id"] = event_id or f"fs_{next(self._ids)}"
        try:
            await socket.send(event)
        except TransportError as exc:
            # The receive loop sees the same failure and reconnects.
            log.debug("%s: send failed: %s", self.ctx.node_id, exc)
            return False
        return True

    async def send_settings(self, update: SettingsUpdate) -> None:
        """Send an update's partial session (if any) under the id its answer is matched by.
        An update that takes back a refused flow move puts the call back in its state."""
        if update.undone is not None and self.flow is not None:
            move = update.undone
            assert isinstance(move, Move)
            self.flow.undo(move)
            self.ctx.publish(FlowTransitionRefused(
                session_id=self.ctx.session_id, node_id=self.ctx.node_id, source=move.source,
                target=move.target, message="the provider refused the state's update"))
        if not update.session:
            return
        event = self._session_update(update)
        if not await self.send(event, event_id=update.event_id):
            # Not connected: the next connection sends the whole (new) session anyway.
            self.settings.forget(update.event_id)

    def _session_update(self, update: SettingsUpdate) -> dict[str, Any]:
        """The `session.update` event of `update`. Every live call given the same change has
        the very same partial session (`SHARED`), and a reload hands it to them one after
        another: its JSON is made once for the run of them (one entry, so calls whose sessions
        are their own never crowd the shared settings out)."""
        session = self.dialect.settings_session(update.session)
        event = protocol.session_update(session)
        if not update.event_id:
            return event
        global _last_encoded
        held, dialect, text = _last_encoded
        if held is not update.session or dialect is not self.dialect:
            text = encode(session)
            _last_encoded = (update.session, self.dialect, text)
        event["event_id"] = update.event_id
        return EncodedEvent(event, f'{{"type":"session.update","session":{text},'
                                   f'"event_id":{encode(update.event_id)}}}')

    async def request_response(self, overrides: dict[str, Any] | None = None) -> None:
        """Ask for a response now, or as soon as the session is ready and idle. `overrides`
        go into the `response` object (the conversation's words: `instructions`,
        `tool_choice`)."""
        if overrides is not None:
            self.wanted = dict(overrides)
        if not self.ready.is_set() or self.active_response is not None:
            self.response_wanted = True
            return
        self.response_wanted = False
        self.clock.start(self.loop.time())
        event = self.dialect.response_create(self.session)
        if self.wanted:
            event["response"] = {**event["response"], **self.wanted}
            self.wanted = {}
        # Until `response.created` names it, the response is ours alone to know of: a second
        # request meanwhile would be refused (`conversation_already_has_active_response`) and
        # its turn never answered, so it waits for this one to end instead.
        self.response_request = f"fs_response_{next(self._ids)}"
        if await self.send(event, event_id=self.response_request):
            self.active_response = PENDING

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

    # -- what the client and the bus are told --------------------------------------------------

    def report(self, code: str | None, message: str, *, type_: str | None = None,
               fatal: bool = False) -> None:
        self.ctx.publish(ProviderError(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                                       message=message, code=code, type=type_, fatal=fatal))

    async def undelivered(self, count: int, why: str) -> None:
        """Tell the client (an error downstream, and the bus) that its input was lost."""
        message = (f"{count} user message{'s were' if count > 1 else ' was'} not delivered: "
                   f"{why}.")
        log.warning("%s: %s", self.ctx.node_id, message)
        self.ctx.publish(ClientMessageRejected(session_id=self.ctx.session_id,
                                               node_id=self.ctx.node_id,
                                               code="input_not_delivered", message=message))
        await self.ctx.emit(ErrorFrame(node_id=self.ctx.node_id, message=message,
                                       code="input_not_delivered"))

    # -- barge-in ------------------------------------------------------------------------------

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
