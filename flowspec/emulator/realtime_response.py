"""One Realtime response, from `response.created` to `response.done`, with its faults.

A run never stops half-way through the protocol: cancellation (client or barge-in) is a flag the
run checks between chunks, so every started item is closed out and exactly one `response.done`
is sent, as the real service does.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from flowspec.emulator import codec, voice
from flowspec.emulator.conversation import Conversation, Item, Part
from flowspec.emulator.dialect import ResponseParams, content_part, render_item, render_response
from flowspec.emulator.planner import Plan, arguments_json
from flowspec.emulator.session import Dialect
from flowspec.emulator.wire import JSONObject, cancelled_within, estimate_tokens, new_id

Send = Callable[[JSONObject], Awaitable[None]]


class Dropped(Exception):
    """The script dropped the socket; the run ends without further events."""


@dataclass(slots=True)
class Pacing:
    """`pace` is wall seconds per second of audio: 1.0 is real time, 0 sends at once."""

    pace: float = 1.0
    chunk_ms: int = 100


@dataclass(slots=True)
class ResponseRun:
    dialect: Dialect
    params: ResponseParams
    plan: Plan
    conversation: Conversation
    send: Send
    abort: Callable[[], None]
    pacing: Pacing
    input_tokens: tuple[int, int]
    id: str = field(default_factory=lambda: new_id("resp"))
    conversation_id: str | None = None
    cancel_reason: str | None = None
    audio_started: bool = False
    _cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    _output: list[Item] = field(default_factory=list)
    _chunks: int = 0
    _fault_done: bool = False
    _failure: JSONObject | None = None

    @property
    def cancelling(self) -> bool:
        """It was asked to stop and has not finished yet."""
        return self._cancelled.is_set()

    def cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason
            self._cancelled.set()

    async def run(self) -> None:
        """Stream the whole response. Raises `Dropped` after aborting the socket for `drop`."""
        await self._event("response.created", response=self._response("in_progress"))
        await self._rate_limits()
        if await self._maybe_fault():
            return await self._finish()
        if self.plan.text is not None:
            await self._message(self.plan.text)
        for call in self.plan.calls:
            if self._stopped():
                break
            await self._function_call(call.name, arguments_json(call))
        await self._finish()

    # --- items -------------------------------------------------------------------------------

    async def _message(self, text: str) -> None:
        audio = self.params.audio
        part = Part("audio" if audio else "text", text="" if not audio else None,
                    transcript="" if audio else None)
        item = Item(id=new_id("item"), type="message", role="assistant", status="in_progress",
                    parts=[part])
        await self._open(item)
        ctx = {"response_id": self.id, "item_id": item.id, "output_index": len(self._output) - 1,
               "content_index": 0}
        await self._event("response.content_part.added", **ctx, part=content_part(part))
        if audio:
            await self._speak(text, part, ctx)
            await self._event("response.output_audio.done", **ctx)
            await self._event(
                "response.output_audio_transcript.done", **ctx, transcript=part.transcript
            )
        else:
            for segment in voice.timeline(text):
                if self._stopped():
                    break
                part.text = (part.text or "") + segment.text
                await self._event("response.output_text.delta", **ctx, delta=segment.text)
                if await self._after_chunk():
                    break
            await self._event("response.output_text.done", **ctx, text=part.text)
        await self._event("response.content_part.done", **ctx, part=content_part(part))
        await self._close(item)

    async def _speak(self, text: str, part: Part, ctx: JSONObject) -> None:
        fmt = self.params.output_format
        rate, per_ms = codec.sample_rate(fmt), codec.bytes_per_ms(fmt)
        audio = codec.from_pcm16(fmt, voice.synthesize(text, rate))
        loop = asyncio.get_running_loop()
        started = loop.time()
        for segment in voice.timeline(text):
            if self._stopped():
                return
            part.transcript = (part.transcript or "") + segment.text
            await self._event("response.output_audio_transcript.delta", **ctx, delta=segment.text)
            position = segment.start_ms
            while position < segment.end_ms:
                end = min(segment.end_ms, position + self.pacing.chunk_ms)
                # Deliver each chunk when it would start playing, so audio arrives in real time.
                due = started + position / 1000 * self.pacing.pace
                if await cancelled_within(self._cancelled, due - loop.time()):
                    return
                chunk = audio[position * per_ms : end * per_ms]
                part.audio += chunk
                part.audio_ms = len(part.audio) / per_ms
                self.audio_started = True
                await self._event(
                    "response.output_audio.delta", **ctx, delta=base64.b64encode(chunk).decode()
                )
                position = end
                if await self._after_chunk():
                    return

    async def _function_call(self, name: str, arguments: str) -> None:
        item = Item(id=new_id("item"), type="function_call", status="in_progress",
                    call_id=new_id("call"), name=name, arguments="")
        await self._open(item)
        ctx = {"response_id": self.id, "item_id": item.id, "output_index": len(self._output) - 1,
               "call_id": item.call_id}
        cut = max(1, len(arguments) // 2)
        for delta in (arguments[:cut], arguments[cut:]):
            if not delta or self._stopped():
                continue
            item.arguments = (item.arguments or "") + delta
            await self._event("response.function_call_arguments.delta", **ctx, delta=delta)
            if await self._after_chunk():
                break
        if not self._stopped():
            await self._event(
                "response.function_call_arguments.done", **ctx, name=name, arguments=arguments
            )
        await self._close(item)

    async def _open(self, item: Item) -> None:
        self._output.append(item)
        await self._event(
            "response.output_item.added",
            response_id=self.id,
            output_index=len(self._output) - 1,
            item=render_item(self.dialect, item),
        )
        if not self.params.out_of_band:
            previous = self.conversation.add(item)
            await self._event(
                "conversation.item.added",
                previous_item_id=previous,
                item=render_item(self.dialect, item),
            )

    async def _close(self, item: Item) -> None:
        item.status = "incomplete" if self._stopped() else "completed"
        rendered = render_item(self.dialect, item)
        await self._event(
            "response.output_item.done",
            response_id=self.id,
            output_index=self._output.index(item),
            item=rendered,
        )
        if not self.params.out_of_band:
            await self._event("conversation.item.done", item=rendered)

    # --- faults, pacing, completion -----------------------------------------------------------

    def _stopped(self) -> bool:
        return self._cancelled.is_set() or self._failure is not None

    async def _after_chunk(self) -> bool:
        self._chunks += 1
        if self._chunks >= self.plan.after_chunks and not self._fault_done:
            return await self._maybe_fault()
        await asyncio.sleep(0)
        return self._stopped()

    async def _maybe_fault(self) -> bool:
        """Apply the staged stall/fail/drop once the scripted number of chunks went out."""
        if self._fault_done or self._chunks < self.plan.after_chunks:
            return self._stopped()
        self._fault_done = True
        stall = self.plan.stall_ms / 1000
        if stall and await cancelled_within(self._cancelled, stall):
            return True
        if self.plan.drop:
            self.abort()
            raise Dropped
        if self.plan.failure is not None:
            failure = self.plan.failure
            self._failure = {"type": failure.type, "code": failure.code,
                             "message": failure.message}
        return self._stopped()

    async def _finish(self) -> None:
        if not self._fault_done and not self._cancelled.is_set():
            # Fewer chunks than `after_chunks`: the fault still fires, before `response.done`.
            self._chunks = max(self._chunks, self.plan.after_chunks)
            await self._maybe_fault()
        details: JSONObject | None
        if self._cancelled.is_set():
            status, details = "cancelled", {"type": "cancelled", "reason": self.cancel_reason}
        elif self._failure is not None:
            status, details = "failed", {"type": "failed", "error": self._failure}
        else:
            status, details = "completed", None
        await self._event(
            "response.done", response=self._response(status, details, usage=self._usage())
        )

    def _response(
        self, status: str, details: JSONObject | None = None, usage: JSONObject | None = None
    ) -> JSONObject:
        return render_response(
            self.dialect,
            response_id=self.id,
            status=status,
            status_details=details,
            output=[render_item(self.dialect, item) for item in self._output],
            params=self.params,
            conversation_id=None if self.params.out_of_band else self.conversation_id,
            usage=usage,
        )

    def _usage(self) -> JSONObject:
        in_text, in_audio = self.input_tokens
        out_text = out_audio = 0
        for item in self._output:
            out_text += estimate_tokens(item.arguments or "")
            for part in item.parts:
                out_text += estimate_tokens(part.text or part.transcript or "")
                out_audio += int(part.audio_ms) // 50
        input_details: dict[str, object] = {"text_tokens": in_text, "audio_tokens": in_audio,
                                     "cached_tokens": 0}
        if self.dialect == "ga":
            input_details["image_tokens"] = 0
            input_details["cached_tokens_details"] = {
                "text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}
        return {
            "total_tokens": in_text + in_audio + out_text + out_audio,
            "input_tokens": in_text + in_audio,
            "output_tokens": out_text + out_audio,
            "input_token_details": input_details,
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
        }

    async def _rate_limits(self) -> None:
        reserved = sum(self.input_tokens) + 1000
        await self._event(
            "rate_limits.updated",
            rate_limits=[
                {"name": "requests", "limit": 10000, "remaining": 9999, "reset_seconds": 0.006},
                {"name": "tokens", "limit": 40000, "remaining": max(0, 40000 - reserved),
                 "reset_seconds": round(reserved / 40000 * 60, 3)},
            ],
        )

    async def _event(self, kind: str, **fields: object) -> None:
        await self.send({"type": kind, **fields})
