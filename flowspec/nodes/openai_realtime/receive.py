"""Server events in: one `match` dispatch on the canonical (GA) event name, one method per event
that changes what the node knows or emits. The node owns the state; this object reads and
updates it, so the connection loop stays apart from what each event means."""

from __future__ import annotations

import base64
import logging
import uuid
from typing import TYPE_CHECKING, Any

from flowspec.audio import AudioFormat
from flowspec.frames import (
    AudioFrame,
    FunctionCallFrame,
    ResponseEndedFrame,
    ResponseStartedFrame,
    TextFrame,
    TranscriptFrame,
    UserSpeechEndedFrame,
    UserSpeechStartedFrame,
)
from flowspec.nodes.openai_realtime import protocol
from flowspec.nodes.openai_realtime.audio_in import append_event
from flowspec.nodes.openai_realtime.metrics import usage_values
from flowspec.runtime.bus import (
    ConversationItemCreated,
    ConversationItemUpdated,
    FunctionCallsStarted,
    Metrics,
    ModelConnected,
)

if TYPE_CHECKING:  # the node composes this object; only its type is needed here
    from flowspec.nodes.openai_realtime.node import RealtimeNode

log = logging.getLogger("flowspec.nodes.openai_realtime")

BENIGN_CODES = frozenset({"response_cancel_not_active", "conversation_already_has_active_response"})
RECONNECT_CODES = frozenset({"session_expired"})
MALFORMED = (AttributeError, KeyError, TypeError, ValueError)
"""What reading a field of the wrong type raises (`binascii.Error` is a ValueError)."""


class ServerEvents:
    """What the node does with each server event of one connection at a time."""

    def __init__(self, node: RealtimeNode, *, send_transcripts: bool) -> None:
        self._node = node
        self._send_transcripts = send_transcripts
        self._update_id: str | None = None
        self._out_format = AudioFormat("pcm16", 24000)

    async def dispatch(self, kind: str, event: dict[str, Any]) -> bool:
        """Handle one event; True when the connection must be replaced (the session expired).

        An event whose fields have the wrong shape is reported (`malformed_event`) and skipped:
        one bad event never ends the receive loop."""
        try:
            return await self._dispatch(kind, event)
        except MALFORMED as exc:
            node = self._node
            log.warning("%s: skipped a malformed %r event: %r", node.ctx.node_id, kind, exc,
                        exc_info=exc)
            node.report("malformed_event", f"Skipped a malformed {kind!r} event from the model: "
                        f"{type(exc).__name__}: {exc}")
            return False

    async def _dispatch(self, kind: str, event: dict[str, Any]) -> bool:
        node = self._node
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
                node.clock.start(node.loop.time())
                await node.ctx.emit(UserSpeechEndedFrame(audio_end_ms=event.get("audio_end_ms"),
                                                         item_id=event.get("item_id")))
            case "input_audio_buffer.committed" if not node.manual_turns():
                # The server VAD committed. In manual mode the node tracks its own commits and
                # clears: this reply may arrive after the pre-roll was appended again.
                node.audio_in.reset_buffer()
            case "conversation.item.added":
                self._on_item(event.get("item") or {}, created=True)
            case "conversation.item.done":
                self._on_item(event.get("item") or {}, created=False)
            case "conversation.item.retrieved":
                node.retrievals.resolve(event.get("item") or {})
            case "conversation.item.input_audio_transcription.delta":
                if self._send_transcripts and event.get("delta"):
                    node.outbox.put(TranscriptFrame(text=event["delta"], role="user", final=False,
                                                    item_id=event.get("item_id")))
            case "conversation.item.input_audio_transcription.completed":
                self._on_user_transcript(event)
            case "response.created":
                node.active_response = (event.get("response") or {}).get("id")
            case "response.output_audio.delta":
                self._on_audio_delta(event)
            case "response.output_audio_transcript.delta" | "response.output_text.delta":
                self._on_text_delta(kind, event)
            case "response.output_audio_transcript.done" | "response.output_text.done":
                self._on_text_done(kind, event)
            case "response.function_call_arguments.done" if node.dialect.CALLS_ON_ARGUMENTS_DONE:
                await self._on_calls(event.get("response_id") or "", [event])
            case "response.done":
                await self._on_response_done(event.get("response") or {})
            case _:
                pass  # everything else is informational; unknown types are tolerated
        return False

    # -- session -----------------------------------------------------------------------------

    async def _on_session_created(self) -> None:
        self._node.settings.connected()
        self._update_id = f"fs_{uuid.uuid4().hex}"
        await self._node.send(protocol.session_update(self._node.settings.session_payload()),
                              event_id=self._update_id)

    async def _on_session_updated(self, session: dict[str, Any]) -> None:
        node = self._node
        node.session = session
        node.audio_in.set_format(*node.dialect.audio_format(session, "input"))
        encoding, rate = node.dialect.audio_format(session, "output")
        self._out_format = AudioFormat(encoding, rate)
        if node.ready.is_set():
            # The echo of a live settings update: confirm it, or roll back.
            update = node.settings.confirm(session)
            for bus_event in update.events:
                node.ctx.publish(bus_event)
            await node.send_settings(update)
        else:
            await self._became_ready()

    async def _became_ready(self) -> None:
        node = self._node
        self._update_id = None
        node.ready.set()
        seed = node.history.seed() if node.seed_items is None else [
            {"type": "conversation.item.create", "item": item} for item in node.seed_items]
        node.seed_items = None
        delivered = await node.deliver_held(seed)
        pending = node.audio_in.take_pending()
        if pending:
            node.audio_in.appended(pending)
            await node.send(append_event(pending))
        node.ctx.publish(ModelConnected(session_id=node.ctx.session_id,
                                        node_id=node.ctx.node_id, attempt=node.attempt,
                                        seeded=len(seed)))
        if delivered or node.response_wanted:
            await node.request_response()  # held text is answered once it is in

    async def _on_error(self, error: dict[str, Any]) -> bool:
        node = self._node
        code, message = error.get("code"), str(error.get("message") or "unknown error")
        event_id = str(error.get("event_id") or "")
        if node.retrievals.fail(event_id, message, node.ctx.node_id):
            return False
        rollback = node.settings.refused(event_id, code, message)
        if rollback is not None:
            node.report(code, message, type_=error.get("type"))
            for bus_event in rollback.events:
                node.ctx.publish(bus_event)
            await node.send_settings(rollback)
            return False
        if code in BENIGN_CODES:
            log.debug("%s: %s (%s)", node.ctx.node_id, message, code)
            return False
        log.warning("%s: the model reported an error: %s (%s)", node.ctx.node_id, message, code)
        node.report(code, message, type_=error.get("type"))
        if self._update_id is not None and event_id == self._update_id:
            # A rejected first update leaves the server's defaults; better than no session.
            await self._became_ready()
        return code in RECONNECT_CODES

    # -- conversation items ------------------------------------------------------------------

    def _on_item(self, item: dict[str, Any], *, created: bool) -> None:
        node = self._node
        item_id = str(item.get("id") or "")
        node.history.observe(item)
        node.held.confirmed(item_id)
        if item.get("type") == "function_call" and item.get("call_id"):
            node.calls.names[str(item["call_id"])] = str(item.get("name") or "")
        kind = ConversationItemCreated if created else ConversationItemUpdated
        node.ctx.publish(kind(session_id=node.ctx.session_id, node_id=node.ctx.node_id,
                              item_id=item_id, item=item))

    def _on_user_transcript(self, event: dict[str, Any]) -> None:
        node = self._node
        item_id, text = str(event.get("item_id") or ""), str(event.get("transcript") or "")
        node.history.transcript(item_id, "user", text)
        node.ctx.publish(ConversationItemUpdated(session_id=node.ctx.session_id,
                                                 node_id=node.ctx.node_id, item_id=item_id))
        if self._send_transcripts:
            node.outbox.put(TranscriptFrame(text=text, role="user", final=True, item_id=item_id))

    # -- assistant output --------------------------------------------------------------------

    def _open_turn(self, response_id: str | None) -> None:
        node = self._node
        ttfb = node.clock.first_output(node.loop.time())
        if ttfb is not None:
            self._metrics({"ttfb_ms": ttfb})
        if node.turns.start(response_id):
            node.outbox.put(ResponseStartedFrame(response_id=response_id))

    def _on_audio_delta(self, event: dict[str, Any]) -> None:
        node = self._node
        node.settings.audio_produced = True
        response_id = event.get("response_id")
        if node.turns.dropped(response_id):
            return
        audio = base64.b64decode(event.get("delta") or "")
        item_id = str(event.get("item_id") or "")
        self._open_turn(response_id)
        node.turns.audio(item_id, int(event.get("content_index") or 0), response_id, len(audio),
                         self._out_format, node.generation, node.loop.time())
        node.outbox.put(AudioFrame(audio=audio, encoding=self._out_format.encoding,
                                   sample_rate=self._out_format.sample_rate, item_id=item_id))

    def _on_text_delta(self, kind: str, event: dict[str, Any]) -> None:
        node = self._node
        if node.turns.dropped(event.get("response_id")) or not event.get("delta"):
            return
        self._open_turn(event.get("response_id"))
        item_id = event.get("item_id")
        if kind == "response.output_text.delta":
            node.outbox.put(TextFrame(text=event["delta"], item_id=item_id))
        else:
            node.outbox.put(TranscriptFrame(text=event["delta"], role="assistant", final=False,
                                            item_id=item_id))

    def _on_text_done(self, kind: str, event: dict[str, Any]) -> None:
        node = self._node
        item_id = str(event.get("item_id") or "")
        text = str(event.get("transcript") or event.get("text") or "")
        node.history.transcript(item_id, "assistant", text)
        if kind == "response.output_audio_transcript.done" and text:
            if not node.turns.dropped(event.get("response_id")):
                node.outbox.put(TranscriptFrame(text=text, role="assistant", final=True,
                                                item_id=item_id))

    # -- function calls and response ends ----------------------------------------------------

    async def _on_calls(self, response_id: str, items: list[dict[str, Any]]) -> None:
        node = self._node
        started: list[FunctionCallFrame] = []
        for item in items:
            call_id = str(item.get("call_id") or "")
            name = str(item.get("name") or node.calls.names.pop(call_id, ""))
            if not call_id or not name or not node.calls.add(response_id, call_id, name):
                continue
            started.append(FunctionCallFrame(call_id=call_id, name=name,
                                             arguments=str(item.get("arguments") or "{}")))
        if not started:
            return
        node.ctx.publish(FunctionCallsStarted(
            session_id=node.ctx.session_id, node_id=node.ctx.node_id,
            calls=tuple((call.call_id, call.name) for call in started)))
        for call in started:
            await node.ctx.call_tool(call)

    async def _on_response_done(self, response: dict[str, Any]) -> None:
        node = self._node
        response_id = str(response.get("id") or "")
        status = str(response.get("status") or "completed")
        node.active_response = None
        values = usage_values(response.get("usage"))
        processing = node.clock.done(node.loop.time())
        if processing is not None:
            values["processing_ms"] = processing
        if values:
            self._metrics(values)
        if status == "failed":
            error = (response.get("status_details") or {}).get("error") or {}
            node.report(error.get("code"), str(error.get("message") or "The response failed."),
                        type_=error.get("type"))
        output = [item for item in response.get("output") or [] if isinstance(item, dict)]
        if not node.dialect.CALLS_ON_ARGUMENTS_DONE:
            for item in output:
                node.ctx.publish(ConversationItemUpdated(
                    session_id=node.ctx.session_id, node_id=node.ctx.node_id,
                    item_id=str(item.get("id") or ""), item=item))
                node.history.observe(item)
            calls = [i for i in output if i.get("type") == "function_call"
                     and i.get("status") != "incomplete"]
            await self._on_calls(response_id, calls)
        if node.turns.end():
            node.outbox.put(ResponseEndedFrame(response_id=response_id, status=status))
        if node.calls.response_done(response_id) or node.response_wanted:
            await node.request_response()

    def _metrics(self, values: dict[str, float]) -> None:
        node = self._node
        node.ctx.publish(Metrics(session_id=node.ctx.session_id, node_id=node.ctx.node_id,
                                 values=values))

    # -- barge-in ----------------------------------------------------------------------------

    async def _on_speech_started(self, event: dict[str, Any]) -> None:
        await self._node.ctx.emit(UserSpeechStartedFrame(
            audio_start_ms=event.get("audio_start_ms"), item_id=event.get("item_id")))
        await self._node.barge_in(emit_interrupt=True)
