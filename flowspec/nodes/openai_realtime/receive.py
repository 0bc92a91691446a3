"""Server events in: one `match` dispatch on the canonical (GA) event name, one method per event
that changes what the node knows or emits. The state lives in the node's `ModelLink`
(`link.py`); this object reads and updates it there, so the connection loop stays apart from
what each event means."""

from __future__ import annotations

import base64
import logging
import uuid
from typing import Any

from flowspec.audio import AudioFormat
from flowspec.conversation.driver import end_call_reason
from flowspec.conversation.events import TranscriptItem
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
from flowspec.nodes.openai_realtime import moves, protocol
from flowspec.nodes.openai_realtime.audio_in import append_event
from flowspec.nodes.openai_realtime.link import PENDING, ModelLink
from flowspec.nodes.openai_realtime.metrics import usage_values
from flowspec.nodes.refusal import access_refused
from flowspec.runtime.bus import (
    ConversationItemCreated,
    ConversationItemUpdated,
    FunctionCallEnded,
    FunctionCallsStarted,
    Metrics,
    ModelConnected,
)

log = logging.getLogger("flowspec.nodes.openai_realtime")

BENIGN_CODES = frozenset({"response_cancel_not_active", "conversation_already_has_active_response"})
RECONNECT_CODES = frozenset({"session_expired"})
MALFORMED = (AttributeError, KeyError, TypeError, ValueError)
"""What reading a field of the wrong type raises (`binascii.Error` is a ValueError)."""


class ServerEvents:
    """What the node does with each server event of one connection at a time."""

    def __init__(self, link: ModelLink, *, send_transcripts: bool) -> None:
        self._link = link
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
            link = self._link
            log.warning("%s: skipped a malformed %r event: %r", link.ctx.node_id, kind, exc,
                        exc_info=exc)
            link.report("malformed_event", f"Skipped a malformed {kind!r} event from the model: "
                        f"{type(exc).__name__}: {exc}")
            return False

    async def _dispatch(self, kind: str, event: dict[str, Any]) -> bool:
        link = self._link
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
                link.clock.start(link.loop.time())
                await link.ctx.emit(UserSpeechEndedFrame(audio_end_ms=event.get("audio_end_ms"),
                                                         item_id=event.get("item_id")))
            case "input_audio_buffer.committed" if not link.manual_turns():
                # The server VAD committed. In manual mode the node tracks its own commits and
                # clears: this reply may arrive after the pre-roll was appended again.
                link.audio_in.reset_buffer()
            case "conversation.item.added":
                self._on_item(event.get("item") or {}, created=True)
            case "conversation.item.done":
                self._on_item(event.get("item") or {}, created=False)
            case "conversation.item.retrieved":
                link.retrievals.resolve(event.get("item") or {})
            case "conversation.item.input_audio_transcription.delta":
                if self._send_transcripts and event.get("delta"):
                    link.outbox.put(TranscriptFrame(text=event["delta"], role="user", final=False,
                                                    item_id=event.get("item_id")))
            case "conversation.item.input_audio_transcription.completed":
                self._on_user_transcript(event)
            case "response.created":
                link.active_response = (event.get("response") or {}).get("id")
                if link.driver is not None:
                    link.driver.response_started()
            case "response.output_audio.delta":
                self._on_audio_delta(event)
            case "response.output_audio_transcript.delta" | "response.output_text.delta":
                self._on_text_delta(kind, event)
            case "response.output_audio_transcript.done" | "response.output_text.done":
                self._on_text_done(kind, event)
            case "response.function_call_arguments.done" if link.dialect.CALLS_ON_ARGUMENTS_DONE:
                await self._on_calls(event.get("response_id") or "", [event])
            case "response.done":
                await self._on_response_done(event.get("response") or {})
            case _:
                pass  # everything else is informational; unknown types are tolerated
        return False

    # -- session -----------------------------------------------------------------------------

    async def _on_session_created(self) -> None:
        self._link.settings.connected()
        self._update_id = f"fs_{uuid.uuid4().hex}"
        await self._link.send(protocol.session_update(self._link.settings.session_payload()),
                              event_id=self._update_id)

    async def _on_session_updated(self, session: dict[str, Any]) -> None:
        link = self._link
        link.session = session
        link.audio_in.set_format(*link.dialect.audio_format(session, "input"))
        encoding, rate = link.dialect.audio_format(session, "output")
        self._out_format = AudioFormat(encoding, rate)
        if link.ready.is_set():
            # The echo of a live settings update: confirm it, or roll back.
            update = link.settings.confirm(session)
            for bus_event in update.events:
                link.ctx.publish(bus_event)
            await link.send_settings(update)
        else:
            await self._became_ready()

    async def _became_ready(self) -> None:
        link = self._link
        self._update_id = None
        link.ready.set()
        seed = link.history.seed() if link.seed_items is None else [
            {"type": "conversation.item.create", "item": item} for item in link.seed_items]
        link.seed_items = None
        delivered = await link.deliver_held(seed)
        pending = link.audio_in.take_pending()
        if pending:
            link.audio_in.appended(pending)
            await link.send(append_event(pending))
        link.ctx.publish(ModelConnected(session_id=link.ctx.session_id,
                                        node_id=link.ctx.node_id, attempt=link.attempt,
                                        seeded=len(seed)))
        if delivered or link.response_wanted:
            await link.request_response()  # held text is answered once it is in
        if link.driver is not None:
            link.driver.model_ready()

    async def _on_error(self, error: dict[str, Any]) -> bool:
        link = self._link
        code, message = error.get("code"), str(error.get("message") or "unknown error")
        _raise_if_refused(link, error, message)
        event_id = str(error.get("event_id") or "")
        if link.retrievals.fail(event_id, message, link.ctx.node_id):
            return False
        rollback = link.settings.refused(event_id, code, message)
        if rollback is not None:
            link.report(code, message, type_=error.get("type"))
            for bus_event in rollback.events:
                link.ctx.publish(bus_event)
            await link.send_settings(rollback)
            return False
        if link.active_response == PENDING and event_id in ("", link.response_request):
            # Our response.create was refused (or an error names no event, as one that ends a
            # response before it starts does): no response runs.
            link.active_response = None
            if link.response_wanted:  # a later turn waited for this one: it goes now
                await link.request_response()
        elif code == "conversation_already_has_active_response":
            link.response_wanted = True  # answered once the running response is done
        if code in BENIGN_CODES:
            log.debug("%s: %s (%s)", link.ctx.node_id, message, code)
            return False
        log.warning("%s: the model reported an error: %s (%s)", link.ctx.node_id, message, code)
        link.report(code, message, type_=error.get("type"))
        if self._update_id is not None and event_id == self._update_id:
            # A rejected first update leaves the server's defaults; better than no session.
            await self._became_ready()
        return code in RECONNECT_CODES

    # -- conversation items ------------------------------------------------------------------

    def _on_item(self, item: dict[str, Any], *, created: bool) -> None:
        link = self._link
        item_id = str(item.get("id") or "")
        link.history.observe(item)
        link.held.confirmed(item_id)
        if item.get("type") == "function_call" and item.get("call_id"):
            link.calls.names[str(item["call_id"])] = str(item.get("name") or "")
        kind = ConversationItemCreated if created else ConversationItemUpdated
        link.ctx.publish(kind(session_id=link.ctx.session_id, node_id=link.ctx.node_id,
                              item_id=item_id, item=item))

    def _on_user_transcript(self, event: dict[str, Any]) -> None:
        link = self._link
        item_id, text = str(event.get("item_id") or ""), str(event.get("transcript") or "")
        link.history.transcript(item_id, "user", text)
        # The item as the API shows it once its transcript is known.
        item = {"id": item_id, "type": "message", "role": "user",
                "content": [{"type": "input_audio", "transcript": text}]}
        link.ctx.publish(ConversationItemUpdated(session_id=link.ctx.session_id,
                                                 node_id=link.ctx.node_id, item_id=item_id,
                                                 item=item))
        link.ctx.publish(TranscriptItem(session_id=link.ctx.session_id, node_id=link.ctx.node_id,
                                        item_id=item_id, role="user", text=text))
        if self._send_transcripts:
            link.outbox.put(TranscriptFrame(text=text, role="user", final=True, item_id=item_id))

    # -- assistant output --------------------------------------------------------------------

    def _open_turn(self, response_id: str | None) -> None:
        link = self._link
        ttfb = link.clock.first_output(link.loop.time())
        if ttfb is not None:
            self._metrics({"ttfb_ms": ttfb})
        if link.turns.start(response_id):
            link.outbox.put(ResponseStartedFrame(response_id=response_id))

    def _on_audio_delta(self, event: dict[str, Any]) -> None:
        link = self._link
        link.settings.audio_produced = True
        response_id = event.get("response_id")
        if link.turns.dropped(response_id):
            return
        audio = base64.b64decode(event.get("delta") or "")
        item_id = str(event.get("item_id") or "")
        self._open_turn(response_id)
        link.turns.audio(item_id, int(event.get("content_index") or 0), response_id, len(audio),
                         self._out_format, link.generation, link.loop.time())
        if link.driver is not None:
            link.driver.audio(self._out_format.duration_ms(len(audio)))
        link.outbox.put(AudioFrame(audio=audio, encoding=self._out_format.encoding,
                                   sample_rate=self._out_format.sample_rate, item_id=item_id))

    def _on_text_delta(self, kind: str, event: dict[str, Any]) -> None:
        link = self._link
        if link.turns.dropped(event.get("response_id")) or not event.get("delta"):
            return
        self._open_turn(event.get("response_id"))
        item_id = event.get("item_id")
        if kind == "response.output_text.delta":
            link.outbox.put(TextFrame(text=event["delta"], item_id=item_id))
        else:
            link.outbox.put(TranscriptFrame(text=event["delta"], role="assistant", final=False,
                                            item_id=item_id))

    def _on_text_done(self, kind: str, event: dict[str, Any]) -> None:
        link = self._link
        item_id = str(event.get("item_id") or "")
        text = str(event.get("transcript") or event.get("text") or "")
        link.history.transcript(item_id, "assistant", text)
        link.ctx.publish(TranscriptItem(session_id=link.ctx.session_id, node_id=link.ctx.node_id,
                                        item_id=item_id, role="assistant", text=text,
                                        interrupted=link.turns.dropped(event.get("response_id"))))
        if kind == "response.output_audio_transcript.done" and text:
            if not link.turns.dropped(event.get("response_id")):
                link.outbox.put(TranscriptFrame(text=text, role="assistant", final=True,
                                                item_id=item_id))

    # -- function calls and response ends ----------------------------------------------------

    async def _on_calls(self, response_id: str, items: list[dict[str, Any]]) -> None:
        link = self._link
        started: list[FunctionCallFrame] = []
        for item in items:
            call_id = str(item.get("call_id") or "")
            name = str(item.get("name") or link.calls.names.pop(call_id, ""))
            if not call_id or not name or not link.calls.add(response_id, call_id, name):
                continue
            started.append(FunctionCallFrame(call_id=call_id, name=name,
                                             arguments=str(item.get("arguments") or "{}")))
        if not started:
            return
        link.ctx.publish(FunctionCallsStarted(
            session_id=link.ctx.session_id, node_id=link.ctx.node_id,
            calls=tuple((call.call_id, call.name) for call in started)))
        for call in started:
            if link.driver is not None and link.driver.is_end_call(call.name):
                await self._end_call(call)
            elif link.flow is not None and link.flow.is_function(call.name):
                await moves.function_called(link, call.call_id, call.name, call.arguments)
            else:
                if link.flow is not None:
                    link.flow.called(call.call_id, call.name, call.arguments)
                await link.ctx.call_tool(call)

    async def _end_call(self, call: FunctionCallFrame) -> None:
        """The built-in `end_call`: answered here; the driver hangs up once the goodbye (the
        model's answer to this result, or the spec's own line) has been heard."""
        link = self._link
        assert link.driver is not None
        respond = link.driver.end_call(end_call_reason(call.arguments))
        link.ctx.publish(FunctionCallEnded(session_id=link.ctx.session_id,
                                           node_id=link.ctx.node_id, call_id=call.call_id,
                                           name=call.name, ok=True, arguments=call.arguments))
        item = {"type": "function_call_output", "call_id": call.call_id,
                "output": '{"ok": true, "note": "The call ends after your goodbye."}'
                if respond else '{"ok": true}'}
        await link.send({"type": "conversation.item.create", "item": item})
        if link.calls.answered(call.call_id, quiet=not respond):
            await link.request_response()

    async def _on_response_done(self, response: dict[str, Any]) -> None:
        link = self._link
        response_id = str(response.get("id") or "")
        status = str(response.get("status") or "completed")
        link.active_response = None
        values = usage_values(response.get("usage"))
        processing = link.clock.done(link.loop.time())
        if processing is not None:
            values["processing_ms"] = processing
        if values:
            self._metrics(values)
        error: dict[str, Any] = {}
        if status == "failed":
            error = (response.get("status_details") or {}).get("error") or {}
            link.report(error.get("code"), str(error.get("message") or "The response failed."),
                        type_=error.get("type"))
        output = [item for item in response.get("output") or [] if isinstance(item, dict)]
        if not link.dialect.CALLS_ON_ARGUMENTS_DONE:
            for item in output:
                link.ctx.publish(ConversationItemUpdated(
                    session_id=link.ctx.session_id, node_id=link.ctx.node_id,
                    item_id=str(item.get("id") or ""), item=item))
                link.history.observe(item)
            calls = [i for i in output if i.get("type") == "function_call"
                     and i.get("status") != "incomplete"]
            await self._on_calls(response_id, calls)
        if link.turns.end():
            link.outbox.put(ResponseEndedFrame(response_id=response_id, status=status))
        if link.calls.response_done(response_id) or link.response_wanted:
            await link.request_response()
        if link.driver is not None:
            link.driver.response_ended()
        # Once what the response did is accounted for: a spent quota fails it this way.
        _raise_if_refused(link, error, str(error.get("message") or "The response failed."))

    def _metrics(self, values: dict[str, float]) -> None:
        link = self._link
        link.ctx.publish(Metrics(session_id=link.ctx.session_id, node_id=link.ctx.node_id,
                                 values=values))

    # -- barge-in ----------------------------------------------------------------------------

    async def _on_speech_started(self, event: dict[str, Any]) -> None:
        if self._link.driver is not None:
            self._link.driver.user_active()
        await self._link.ctx.emit(UserSpeechStartedFrame(
            audio_start_ms=event.get("audio_start_ms"), item_id=event.get("item_id")))
        await self._link.barge_in(emit_interrupt=True)


def _raise_if_refused(link: ModelLink, error: dict[str, Any], message: str) -> None:
    """AccessRefused when `error` refuses the key, its permissions or its quota: no later
    request on this connection or another would be served, so the node gives up (`node.py`)."""
    refused = access_refused(link.ctx.node_id, message, error.get("code"), error.get("type"))
    if refused is not None:
        raise refused
