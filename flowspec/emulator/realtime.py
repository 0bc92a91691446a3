"""The Realtime session state machine (GA and beta): client events in, server events out."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from flowspec.emulator import codec, dialect, voice
from flowspec.emulator import session as sessions
from flowspec.emulator import vad as vads
from flowspec.emulator.conversation import Conversation, Item, Part
from flowspec.emulator.dialect import ResponseParams, error_event, render_item
from flowspec.emulator.planner import plan_reply
from flowspec.emulator.realtime_response import Dropped, Pacing, ResponseRun
from flowspec.emulator.script import InputKind, Script, Turn
from flowspec.emulator.session import Dialect
from flowspec.emulator.wire import (
    JSONObject,
    WireError,
    check_keys,
    estimate_tokens,
    invalid_value,
    new_id,
    parse_json_object,
    require_str,
)

Send = Callable[[JSONObject], Awaitable[None]]
MIN_COMMIT_MS = 100

# Fields each client event may carry besides `type` and `event_id`.
_EVENT_FIELDS: dict[str, frozenset[str]] = {
    "session.update": frozenset({"session"}),
    "input_audio_buffer.append": frozenset({"audio"}),
    "input_audio_buffer.commit": frozenset(),
    "input_audio_buffer.clear": frozenset(),
    "conversation.item.create": frozenset({"item", "previous_item_id"}),
    "conversation.item.retrieve": frozenset({"item_id"}),
    "conversation.item.truncate": frozenset({"item_id", "content_index", "audio_end_ms"}),
    "conversation.item.delete": frozenset({"item_id"}),
    "response.create": frozenset({"response"}),
    "response.cancel": frozenset({"response_id"}),
}


class RealtimeSession:
    """One Realtime WebSocket connection. `handle()` never raises for bad client input."""

    def __init__(
        self,
        *,
        dialect: Dialect,
        model: str,
        send: Send,
        abort: Callable[[], None],
        tasks: asyncio.TaskGroup,
        pacing: Pacing,
        script: Script | None,
    ) -> None:
        self.dialect = dialect
        self.session = sessions.default_session(dialect, model)
        self.conversation = Conversation()
        self.conversation_id = new_id("conv")
        self._send_raw = send
        self._abort = abort
        self._tasks = tasks
        self._pacing = pacing
        self._script = script
        self._buffer = bytearray()
        self._buffer_start_ms = 0.0
        self._appended_ms = 0.0
        self._vad: vads.EnergyVad | None = None
        self._speech_item: str | None = None
        self._active: ResponseRun | None = None
        self._run_tasks: dict[int, asyncio.Task[None]] = {}  # by id() of the run
        self._runs: set[asyncio.Task[None]] = set()
        self._turns = 0
        self._audio_sent = False
        self._configure_vad()

    @property
    def view(self) -> sessions.SessionView:
        return sessions.view(self.dialect, self.session)

    async def start(self) -> None:
        await self.send({"type": "session.created", "session": self.session})

    def close(self) -> None:
        """Stop every running response; the owning TaskGroup then reaps them."""
        for task in self._runs:
            task.cancel()

    async def send(self, event: JSONObject) -> None:
        name = dialect.event_name(self.dialect, event["type"])
        if name is None:
            return
        body = {key: value for key, value in event.items() if key != "type"}
        await self._send_raw({"type": name, "event_id": new_id("event"), **body})

    async def handle(self, text: str) -> None:
        event_id: str | None = None
        try:
            event = parse_json_object(text)
            raw_id = event.get("event_id")
            event_id = raw_id if isinstance(raw_id, str) else None
            kind = event.get("type")
            if kind not in _EVENT_FIELDS:
                raise dialect.unknown_event(kind)
            check_keys(event, _EVENT_FIELDS[kind] | {"type", "event_id"}, "")
            handler = getattr(self, "_on_" + kind.replace(".", "_"))
            await handler(event)
        except WireError as err:
            await self.send(error_event(err, event_id))

    # --- session ------------------------------------------------------------------------------

    async def _on_session_update(self, event: JSONObject) -> None:
        if "session" not in event:
            raise WireError(
                "Missing required parameter: 'session'.",
                code="missing_required_parameter",
                param="session",
            )
        self._scripted_refusal(event["session"])
        self.session = sessions.apply_update(
            self.dialect, self.session, event["session"], audio_sent=self._audio_sent
        )
        self._configure_vad()
        await self.send({"type": "session.updated", "session": self.session})

    def _scripted_refusal(self, update: Any) -> None:
        """A script rule with `when: {event: session.update}` and `fail:` refuses the update."""
        if self._script is None:
            return
        turn = Turn("realtime", self._turns, json.dumps(update), "text",
                    instructions=self.view.instructions, event="session.update")
        rule = self._script.match(turn)
        if rule is not None and rule.fail is not None:
            fail = rule.fail
            raise WireError(fail.message, code=fail.code, param=fail.param, type=fail.type)

    def _configure_vad(self) -> None:
        view = self.view
        detection = view.turn_detection
        if detection is None:
            self._vad = None
            return
        silence = detection.get("silence_duration_ms")
        if detection["type"] == "semantic_vad":
            silence = sessions.EAGERNESS_SILENCE_MS[detection["eagerness"]]
        self._vad = vads.EnergyVad(
            sample_rate=codec.sample_rate(view.input_format),
            threshold=float(detection.get("threshold", 0.5)),
            prefix_padding_ms=int(detection.get("prefix_padding_ms", 300)),
            silence_duration_ms=int(silence if silence is not None else 200),
            position_ms=self._appended_ms,
            buffer_start_ms=self._buffer_start_ms,
        )

    # --- input audio buffer -------------------------------------------------------------------

    async def _on_input_audio_buffer_append(self, event: JSONObject) -> None:
        encoded = require_str(event, "audio", "")
        try:
            data = base64.b64decode(encoded or "", validate=True)
        except binascii.Error as exc:
            raise invalid_value("audio", "Invalid 'audio'. Expected base64-encoded audio.") from exc
        fmt = self.view.input_format
        self._buffer += data
        self._appended_ms += len(data) / codec.bytes_per_ms(fmt)
        if self._vad is None:
            return
        for change in self._vad.feed(codec.to_pcm16(fmt, data)):
            if isinstance(change, vads.SpeechStarted):
                await self._speech_started(change.audio_start_ms)
            else:
                await self._speech_stopped(change.audio_end_ms)

    async def _speech_started(self, audio_start_ms: int) -> None:
        self._speech_item = new_id("item")
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": audio_start_ms,
                "item_id": self._speech_item,
            }
        )
        detection = self.view.turn_detection or {}
        if self._active is not None and detection.get("interrupt_response", True):
            self._active.cancel("turn_detected")

    async def _speech_stopped(self, audio_end_ms: int) -> None:
        item_id = self._speech_item or new_id("item")
        self._speech_item = None
        await self.send(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": audio_end_ms,
             "item_id": item_id}
        )
        per_ms = codec.bytes_per_ms(self.view.input_format)
        cut = max(0, int((audio_end_ms - self._buffer_start_ms) * per_ms))
        await self._commit(item_id, upto=min(cut, len(self._buffer)))
        detection = self.view.turn_detection or {}
        if self._active is not None and self._active.cancelling:
            # The turn that began this speech cancelled the reply: as on the real service, that
            # reply is over (its `response.done` sent) before the new turn's reply starts.
            await self._finished(self._active)
        if detection.get("create_response", True) and self._active is None:
            await self._start_response(self._params(None))

    async def _on_input_audio_buffer_commit(self, event: JSONObject) -> None:
        per_ms = codec.bytes_per_ms(self.view.input_format)
        buffered = len(self._buffer) / per_ms
        if buffered < MIN_COMMIT_MS:
            raise WireError(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {buffered:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        item_id = self._speech_item or new_id("item")
        self._speech_item = None
        await self._commit(item_id, upto=len(self._buffer))

    async def _on_input_audio_buffer_clear(self, event: JSONObject) -> None:
        self._take_buffer(len(self._buffer))
        await self.send({"type": "input_audio_buffer.cleared"})

    def _take_buffer(self, upto: int) -> bytes:
        per_ms = codec.bytes_per_ms(self.view.input_format)
        taken = bytes(self._buffer[:upto])
        del self._buffer[:upto]
        self._buffer_start_ms += upto / per_ms
        if self._vad is not None:
            self._vad.buffer_reset()
        return taken

    async def _commit(self, item_id: str, *, upto: int) -> None:
        audio = self._take_buffer(upto)
        audio_ms = len(audio) / codec.bytes_per_ms(self.view.input_format)
        heard = self._script.next_transcript() if self._script is not None else None
        if heard is None:
            heard = f"({audio_ms / 1000:.1f} seconds of audio)"
        part = Part("input_audio", audio=audio, audio_ms=audio_ms)
        item = Item(id=item_id, type="message", role="user", parts=[part])
        previous = self.conversation.add(item)
        await self.send(
            {"type": "input_audio_buffer.committed", "previous_item_id": previous,
             "item_id": item_id}
        )
        await self._item_added(item, previous)
        # The planner reads what was "heard" even when the client asked for no transcription.
        part.transcript = heard
        if self.view.transcription is not None:
            await self._transcribe(item, heard, audio_ms)

    async def _transcribe(self, item: Item, transcript: str, audio_ms: float) -> None:
        for segment in voice.timeline(transcript):
            await self.send(
                {"type": "conversation.item.input_audio_transcription.delta", "item_id": item.id,
                 "content_index": 0, "delta": segment.text}
            )
        model = (self.view.transcription or {}).get("model")
        usage: JSONObject
        if model == "whisper-1":
            usage = {"type": "duration", "seconds": round(audio_ms / 1000, 3)}
        else:
            audio_tokens, text_tokens = int(audio_ms) // 100, estimate_tokens(transcript)
            usage = {"type": "tokens", "input_tokens": audio_tokens, "output_tokens": text_tokens,
                     "total_tokens": audio_tokens + text_tokens,
                     "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens}}
        await self.send(
            {"type": "conversation.item.input_audio_transcription.completed", "item_id": item.id,
             "content_index": 0, "transcript": transcript, "usage": usage}
        )

    # --- conversation items -------------------------------------------------------------------

    async def _item_added(self, item: Item, previous: str | None) -> None:
        rendered = render_item(self.dialect, item)
        await self.send(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": rendered}
        )
        await self.send({"type": "conversation.item.done", "previous_item_id": previous,
                         "item": rendered})

    async def _on_conversation_item_create(self, event: JSONObject) -> None:
        if "item" not in event:
            raise WireError("Missing required parameter: 'item'.",
                            code="missing_required_parameter", param="item")
        item = dialect.parse_item(self.dialect, event["item"])
        anchor = event.get("previous_item_id")
        if anchor is not None and not isinstance(anchor, str):
            raise invalid_value("previous_item_id", "'previous_item_id' must be a string.")
        previous = self.conversation.add(item, anchor)
        await self._item_added(item, previous)

    async def _on_conversation_item_retrieve(self, event: JSONObject) -> None:
        item = self.conversation.require(require_str(event, "item_id", "") or "")
        await self.send({"type": "conversation.item.retrieved",
                         "item": render_item(self.dialect, item, include_audio=True)})

    async def _on_conversation_item_delete(self, event: JSONObject) -> None:
        item_id = require_str(event, "item_id", "") or ""
        self.conversation.delete(item_id)
        await self.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def _on_conversation_item_truncate(self, event: JSONObject) -> None:
        item = self.conversation.require(require_str(event, "item_id", "") or "")
        index, end_ms = event.get("content_index"), event.get("audio_end_ms")
        if item.role != "assistant":
            raise invalid_value("item_id", "Only assistant messages can be truncated.")
        if not isinstance(index, int) or not 0 <= index < len(item.parts):
            raise invalid_value("content_index", f"Invalid content_index: {index!r}.")
        part = item.parts[index]
        if part.kind != "audio":
            raise invalid_value("content_index", "The content part at content_index has no audio.")
        if isinstance(end_ms, bool) or not isinstance(end_ms, int) or end_ms < 0:
            raise invalid_value("audio_end_ms", "'audio_end_ms' must be a non-negative integer.")
        if end_ms > part.audio_ms:
            raise invalid_value(
                "audio_end_ms",
                f"Audio content of {int(part.audio_ms)}ms is already shorter than {end_ms}ms",
            )
        per_ms = codec.bytes_per_ms(self.view.output_format)
        part.audio = part.audio[: end_ms * per_ms]
        part.audio_ms = float(end_ms)
        heard = [s.text for s in voice.timeline(part.transcript or "") if s.start_ms < end_ms]
        part.transcript = "".join(heard)
        await self.send({"type": "conversation.item.truncated", "item_id": item.id,
                         "content_index": index, "audio_end_ms": end_ms})

    # --- responses ----------------------------------------------------------------------------

    async def _on_response_create(self, event: JSONObject) -> None:
        params = self._params(event.get("response"))
        if self._active is not None and not params.out_of_band:
            raise WireError(
                "Conversation already has an active response in progress: "
                f"{self._active.id}. Wait until the response is finished before creating a new "
                "one.",
                code="conversation_already_has_active_response",
            )
        await self._start_response(params)

    async def _on_response_cancel(self, event: JSONObject) -> None:
        wanted = event.get("response_id")
        active = self._active
        if active is None or (wanted is not None and wanted != active.id):
            raise WireError(
                "Cancellation failed: no active response found", code="response_cancel_not_active"
            )
        active.cancel("client_cancelled")

    def _params(self, raw: Any) -> ResponseParams:
        params = dialect.parse_response_params(self.dialect, raw, self.view)
        if params.input is not None:
            for index, item in enumerate(params.input):
                if item.role == "reference":
                    params.input[index] = self.conversation.require(item.id, "response.input")
        return params

    async def _start_response(self, params: ResponseParams) -> None:
        context = params.input if params.input is not None else list(self.conversation)
        latest = next(
            (i for i in reversed(context) if i.role == "user" or i.type == "function_call_output"),
            None,
        )
        self._turns += 1
        kind: InputKind = "text"
        if latest is not None and latest.type == "function_call_output":
            kind = "tool_output"
        elif latest is not None and any(p.kind == "input_audio" for p in latest.parts):
            kind = "audio"
        turn = Turn("realtime", self._turns, latest.text() if latest else "", kind,
                    instructions=params.instructions)
        plan = plan_reply(turn, params.tools, params.tool_choice, self._script)
        text_tokens = estimate_tokens(params.instructions + " ".join(i.text() for i in context))
        audio_tokens = sum(int(p.audio_ms) // 100 for i in context for p in i.parts
                           if p.kind == "input_audio")
        run = ResponseRun(
            dialect=self.dialect, params=params, plan=plan, conversation=self.conversation,
            send=self.send, abort=self._abort, pacing=self._pacing,
            input_tokens=(text_tokens, audio_tokens), conversation_id=self.conversation_id,
        )
        if plan.failure is not None and plan.failure.stage == "before":
            failure = plan.failure
            err = WireError(failure.message, code=failure.code, param=failure.param,
                            type=failure.type)
            await self.send(error_event(err, None))
            return
        if not params.out_of_band:
            self._active = run
        task = self._tasks.create_task(self._run(run))
        self._runs.add(task)
        self._run_tasks[id(run)] = task
        task.add_done_callback(self._runs.discard)
        task.add_done_callback(lambda _task: self._run_tasks.pop(id(run), None))

    async def _finished(self, run: ResponseRun) -> None:
        task = self._run_tasks.get(id(run))
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait([task])

    async def _run(self, run: ResponseRun) -> None:
        try:
            await run.run()
        except (Dropped, ConnectionResetError):
            return
        finally:
            if self._active is run:
                self._active = None
            self._audio_sent = self._audio_sent or run.audio_started
