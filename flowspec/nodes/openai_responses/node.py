"""`openai.responses`: text in, text out through the OpenAI Responses API, over a persistent
WebSocket (default) or HTTP with SSE.

Frames in: `TextFrame`/final `TranscriptFrame` from the user (each starts a turn), results on
`tool_result`, `InterruptFrame` (cancels the turn), `ResetConversationFrame`. Frames out:
`ResponseStartedFrame`, `TextFrame` deltas, `ThoughtFrame` (reasoning summaries),
`ResponseEndedFrame`. Bus: `Metrics` (TTFB, processing time, tokens), `FunctionCallsStarted`,
`CompletionTimeout`; API errors end the turn as a node failure the session survives.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from flowspec.conversation.driver import Driver, Words, end_call_reason
from flowspec.conversation.events import TranscriptItem
from flowspec.conversation.flow import Flow, Move
from flowspec.conversation.template import fill_request, render
from flowspec.conversation.variables import VariableRefused
from flowspec.errors import NodeError, NodeTimeout, RemoteProtocolError, TransportError, UsageError
from flowspec.frames import (
    BotSpeechEndedFrame,
    BotSpeechStartedFrame,
    Frame,
    FunctionCallFrame,
    FunctionResultFrame,
    InterruptFrame,
    PlaybackProgressFrame,
    ResetConversationFrame,
    ResponseEndedFrame,
    ResponseStartedFrame,
    TextFrame,
    ThoughtFrame,
    TranscriptFrame,
    UpdateSettingsFrame,
)
from flowspec.nodes.openai_realtime.delta import merge_delta
from flowspec.nodes.openai_responses import protocol as p
from flowspec.nodes.openai_responses.flow_turns import FlowTurns
from flowspec.nodes.openai_responses.said import SpokenReplies
from flowspec.nodes.openai_responses.sse import open_stream, post_json
from flowspec.nodes.openai_responses.ws import (
    DEFAULT_BACKOFF,
    Backoff,
    Connector,
    Pending,
    ResponsesSocket,
    aiohttp_connector,
)
from flowspec.nodes.tool_defs import tool_definitions
from flowspec.runtime.bus import (
    CompletionTimeout,
    FunctionCallEnded,
    FunctionCallsStarted,
    Metrics,
    SettingsApplied,
    SettingsRejected,
)
from flowspec.runtime.node import TOOL_RESULT_PORT, Context
from flowspec.spec.models.flow import FlowSpec
from flowspec.spec.models.responses import ResponsesNodeSpec, ResponsesSettingsSpec

log = logging.getLogger("flowspec.nodes.openai_responses")

CANCELLED_OUTPUT = '{"error": "cancelled: the user interrupted before the tool answered"}'
NextEvent = Callable[[], Awaitable[p.ServerEvent | None]]


@dataclass(slots=True, eq=False)
class _Turn:
    """One inference (one response, possibly retried once)."""

    acc: p.ResponseAccumulator
    started: float = field(default_factory=time.monotonic)
    pending: Pending | None = None
    interrupted: bool = False
    emitted: bool = False  # something reached the user: a retry would repeat it
    items: list[str] = field(default_factory=list)  # the text items, as a speech node says them


class ResponsesNode:
    """One session's Responses conversation. `connect` replaces the WebSocket connector (tests)."""

    def __init__(self, ctx: Context, *, connect: Connector | None = None,
                 backoff: Backoff = DEFAULT_BACKOFF) -> None:
        spec = ctx.spec
        if not isinstance(spec, ResponsesNodeSpec):
            raise UsageError(f"Node {ctx.node_id!r} is not an openai.responses node.")
        self.ctx = ctx
        self.spec = spec
        self.settings = spec.settings
        self.conversation = p.Conversation()
        self._connect = connect or aiohttp_connector(ctx.node_id,
                                                     close_timeout=spec.ws_close_timeout)
        self._backoff = backoff
        call = ctx.call
        holds = call.model == ctx.node_id and (call.conversation is not None or
                                               call.flow is not None)
        self.driver = Driver(call, self) if holds else None
        """The call's conversation (`conversation:`), when this node holds it."""
        end_call = self.driver.end_call_tool() if self.driver is not None else None
        self._builtin = tool_definitions([end_call.name or ""], {end_call.name or "": end_call},
                                         "responses") if end_call is not None else []
        self._tools = tool_definitions(list(ctx.tool_specs), ctx.tool_specs,
                                       "responses") + self._builtin
        self.flow = FlowTurns(
            Flow(call.flow, ctx.tool_specs, call.tool_names, session_id=ctx.session_id,
                 node_id=ctx.node_id, bus=ctx.bus),
            {end_call.name or "": end_call} if end_call is not None else {},
        ) if holds and call.flow is not None else None
        """The call's place in the spec's `flow:`, when this node holds it."""
        self._values: Mapping[str, Any] = {}
        self._prompt: str | None = None  # the conversation's prompt for the next request
        self._headers: dict[str, str] = {}
        self._http: aiohttp.ClientSession | None = None
        self._socket: ResponsesSocket | None = None
        self._chain: tuple[int, p.Chain] | None = None  # (socket epoch, chain)
        self._inbox: list[p.JSONObject] = []  # input that arrived since the last request
        self._dirty = False  # the inbox holds something the model must answer
        self._waiting: dict[str, p.FunctionCall] = {}
        self._task: asyncio.Task[None] | None = None
        self._stale: asyncio.Task[None] | None = None  # an interrupted turn still cleaning up
        self._turn: _Turn | None = None
        self._said = SpokenReplies(call)  # the last reply given to speech, until it is heard

    @property
    def socket(self) -> ResponsesSocket | None:
        return self._socket

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.ctx.spawn(self._begin(), name=f"{self.ctx.node_id}:conversation", essential=True)
        self._headers = p.headers(self.spec, p.api_key(self.spec, self.ctx.node_id))
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        if self.spec.transport == "websocket":
            self._socket = ResponsesSocket(self.ctx.node_id, self.spec.ws_url, self._headers,
                                           self._connect, backoff=self._backoff)
            try:
                await self._socket.connect()
            except BaseException:
                # A node that fails to start is never stopped: close what it opened here.
                await self._http.close()
                raise

    async def stop(self) -> None:
        try:
            if self._socket is not None:
                await self._socket.close()
        finally:
            if self._http is not None:
                await self._http.close()

    async def _begin(self) -> None:
        """Nothing is asked of the model before the call's variables are known; then the
        conversation (if this node holds one) seeds its context and opens."""
        try:
            self._values = await self.ctx.call.ready()
        except VariableRefused:
            return  # the call is refused and ending
        if self.driver is None:
            self._kick()
            return
        conversation = self.ctx.call.conversation
        if conversation is not None:
            self.conversation.extend([p.seeded_message(item.role, self.ctx.call.fill(item.text))
                                      for item in conversation.context])
        self.driver.model_ready()
        self._kick()
        await self.driver.run()

    async def speak(self, words: Words) -> None:
        """The conversation's words (`Voice`): exact words need no model, so they are the
        bot's next text at once; a prompt is the next request's added instruction."""
        if words.say is None:
            self._prompt = words.prompt or ""
            self._dirty = True
            self._kick()
            return
        if self.driver is not None:
            self.driver.response_started()
        item_id = f"fs_say_{uuid.uuid4().hex[:12]}"
        await self.ctx.emit(ResponseStartedFrame(response_id=item_id))
        await self.ctx.emit(TextFrame(text=words.say, role="assistant", item_id=item_id))
        self._said.given(len(self.conversation), [item_id], words.say,
                         self.conversation.generation)
        self.conversation.extend([p.assistant_message(words.say)])
        self.ctx.publish(TranscriptItem(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                                        item_id=item_id, role="assistant", text=words.say))
        await self.ctx.emit(ResponseEndedFrame(response_id=item_id, status="completed"))
        if self.driver is not None:
            self.driver.response_ended()

    async def flow_changed(self, flow: FlowSpec, states: frozenset[str]) -> None:
        """A live change of the call's flow (`flowspec.reload.flow_live.FlowHolder`): each
        request reads the current state's offer, so the next one carries it."""
        if self.flow is not None:
            self.flow.flow.spec = flow

    async def handle(self, frame: Frame, port: str) -> None:
        match frame:
            case TextFrame(role="user") | TranscriptFrame(role="user", final=True):
                self._inbox.append(p.user_message(frame.text))
                self.ctx.publish(TranscriptItem(session_id=self.ctx.session_id,
                                                node_id=self.ctx.node_id, item_id="",
                                                role="user", text=frame.text))
                if self.driver is not None:
                    self.driver.user_active()
                self._dirty = True
                self._kick()
            case BotSpeechStartedFrame() if self.driver is not None:
                self.driver.playback_started()
            case BotSpeechEndedFrame():
                self.ctx.call.spoken.ended(frame.item_id)
                if self.driver is not None:
                    self.driver.playback_stopped()
            case PlaybackProgressFrame():
                self.ctx.call.spoken.played(frame.item_id, frame.played_ms)
            case FunctionResultFrame() if port == TOOL_RESULT_PORT:
                self._on_result(frame)
            case InterruptFrame():
                self._interrupt()
            case ResetConversationFrame():
                self.conversation.reset()
                self._inbox.clear()
                self._chain = None
            case UpdateSettingsFrame():
                self._update_settings(frame)

    def _update_settings(self, frame: UpdateSettingsFrame) -> None:
        """Merge a settings delta (`None` removes a setting; `tools`: new definitions). Each
        request reads the settings when it is built, so the change applies from the next one."""
        delta = dict(frame.delta)
        tools = delta.pop("tools", None)
        data = merge_delta(self.settings.model_dump(exclude_unset=True, mode="json"), delta)
        try:
            settings = ResponsesSettingsSpec.model_validate(data)
        except ValueError as exc:
            self.ctx.publish(SettingsRejected(
                session_id=self.ctx.session_id, node_id=self.ctx.node_id, version=frame.version,
                message=f"The settings are not valid: {exc}"))
            return
        self.settings = settings
        if tools is not None:
            self._tools = [dict(tool) for tool in tools] + self._builtin
        changed = tuple(sorted(set(delta) | ({"tools"} if tools is not None else set())))
        self.ctx.publish(SettingsApplied(session_id=self.ctx.session_id,
                                         node_id=self.ctx.node_id, changed=changed,
                                         version=frame.version))

    # -- turns -------------------------------------------------------------------------------

    def _kick(self) -> None:
        if self._task is not None or self._waiting or not self._dirty or \
                not self.ctx.call.began:
            return
        previous, self._stale = self._stale, None
        self._task = self.ctx.spawn(self._run(previous), name=f"{self.ctx.node_id}:turn")

    async def _run(self, previous: asyncio.Task[None] | None) -> None:
        me = asyncio.current_task()
        try:
            if previous is not None:
                # Its clean-up sends at most a `response.cancel`; no server reply is awaited.
                await asyncio.wait([previous])
            while self._dirty and not self._waiting:
                self._dirty = False
                if self.flow is not None and self.flow.summary_due:
                    await self.flow.summarize(self.conversation, self._summarize,
                                              self.ctx.node_id)
                self.conversation.extend(self._inbox)
                self._inbox.clear()
                await self._respond()
        finally:
            if self._task is me:
                self._task = None
                if me is not None and not me.cancelling():
                    self._kick()  # after a failed turn, input that arrived meanwhile is answered

    def _interrupt(self) -> None:
        task, turn = self._task, self._turn
        if task is not None:
            if turn is not None:
                turn.interrupted = True
            task.cancel()
            self._stale, self._task = task, None
        elif self._said.last is not None:
            # The reply is complete but may still be playing: keep what the caller heard of it.
            self._stale = self.ctx.spawn(self._truncate_said(self._stale),
                                         name=f"{self.ctx.node_id}:truncate")
        if self._waiting:
            # The calls are not answered in time; every call item still needs an output.
            self._inbox.extend(p.function_output(c, CANCELLED_OUTPUT) for c in self._waiting)
            self._waiting.clear()
        self._kick()

    def _on_result(self, result: FunctionResultFrame) -> None:
        if self._waiting.pop(result.call_id, None) is None:
            log.debug("%s: dropped a late result for %s", self.ctx.node_id, result.name)
            return
        self._inbox.append(p.function_output(result.call_id, result.result))
        if self.flow is not None and not result.cancelled:
            move = self.flow.result_move(result.call_id, result.name, result.result)
            if move is not None and not self._entered(move):
                self.flow.opened = True
        if not self._waiting:
            # A state that opened with its own words (on any of the round's results) needs
            # no answer from the model.
            opened = self.flow is not None and self.flow.opened
            if self.flow is not None:
                self.flow.opened = False
            self._dirty = self._dirty or not opened
            self._kick()

    def _entered(self, move: Move) -> bool:
        assert self.flow is not None
        return self.flow.enter(move, self.conversation, self._inbox, self.driver,
                               self.ctx.call.variables)

    async def _summarize(self, items: Sequence[Mapping[str, Any]], max_tokens: int,
                         instruction: str) -> str:
        return await self.run_inference([*items, p.user_message(instruction)],
                                        max_tokens=max_tokens)

    async def _respond(self) -> None:
        turn = self._turn = _Turn(p.ResponseAccumulator(store=self.spec.store))
        if self.driver is not None:
            self.driver.response_started()
        await self.ctx.emit(ResponseStartedFrame())
        finished: p.ResponseFinished | None = None
        try:
            if self._socket is not None:
                finished = await self._respond_ws(turn, self._socket)
            else:
                finished = await self._respond_http(turn)
        except asyncio.CancelledError:
            if turn.interrupted:
                await self._on_interrupted(turn)
            raise
        except NodeError:
            self._chain = None  # a failed continuation may have evicted its parent
            # Calls of a response that ended in an error never run, so they must not be replayed.
            kept = [i for i in turn.acc.output if i.get("type") != "function_call"]
            self.conversation.extend(kept or turn.acc.partial())
            await self.ctx.emit(ResponseEndedFrame(response_id=turn.acc.response_id,
                                                   status="failed"))
            raise
        finally:
            if self._turn is turn:
                self._turn = None
            self._prompt = None
            if finished is None and self.driver is not None:
                self.driver.response_ended()
        try:
            await self._finish(turn, finished)
        finally:
            if self.driver is not None:
                self.driver.response_ended()

    async def _on_interrupted(self, turn: _Turn) -> None:
        if turn.pending is not None and self._socket is not None:
            await self._socket.abandon(turn.pending)
        await self._truncate_said(None)
        # What the user already saw or heard stays in the conversation; unfinished calls never
        # run.
        heard = await self._said.heard(turn.items)
        self.conversation.extend(turn.acc.partial() if heard is None else
                                 [p.assistant_message(heard)] if heard.strip() else [])
        await self.ctx.emit(ResponseEndedFrame(response_id=turn.acc.response_id,
                                               status="cancelled"))

    async def _truncate_said(self, previous: asyncio.Task[None] | None) -> None:
        """An interruption while the last reply may still be playing: keep what was heard of
        it, and drop the chain over the old words."""
        if previous is not None:
            await asyncio.wait([previous])
        if await self._said.truncate(self.conversation):
            self._chain = None

    async def _finish(self, turn: _Turn, finished: p.ResponseFinished) -> None:
        acc = turn.acc
        output = acc.output or acc.partial()
        present = {item.get("call_id") for item in output if item.get("type") == "function_call"}
        calls = acc.calls()
        output += [{"type": "function_call", "call_id": c.call_id, "name": c.name,
                    "arguments": c.arguments} for c in calls if c.call_id not in present]
        start = len(self.conversation)
        self.conversation.extend(output)
        text = p.output_text({"output": output})
        if turn.items:
            self._said.given(start, turn.items, acc.text, self.conversation.generation)
            self._said.ends_at(len(self.conversation))
        if text:
            self.ctx.publish(TranscriptItem(session_id=self.ctx.session_id,
                                            node_id=self.ctx.node_id,
                                            item_id=acc.response_id or "", role="assistant",
                                            text=text))
        self._chain = None  # a failed continuation may have evicted its parent
        if finished.status == "completed" and self._socket is not None and acc.response_id:
            chain = p.Chain(acc.response_id, len(self.conversation), self.conversation.generation)
            self._chain = (self._socket.epoch, chain)
        values = p.usage_values(finished.response.get("usage"))
        values["processing_ms"] = (time.monotonic() - turn.started) * 1000
        self.ctx.publish(Metrics(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                                 values=values))
        await self.ctx.emit(ResponseEndedFrame(response_id=acc.response_id,
                                               status=finished.status))
        if self.driver is not None and any(self.driver.is_end_call(c.name) for c in calls):
            calls = await self._end_call(calls)
        if self.flow is not None:
            calls = self._flow_functions(calls)
        if calls:
            self._waiting = {call.call_id: call for call in calls}
            self.ctx.publish(FunctionCallsStarted(
                session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                calls=tuple((call.call_id, call.name) for call in calls)))
            for call in calls:
                await self.ctx.call_tool(FunctionCallFrame(call_id=call.call_id, name=call.name,
                                                           arguments=call.arguments))
        if finished.status != "completed":
            raise p.ResponsesApiError(self.ctx.node_id, f"LLM response error: "
                                      f"{finished.problem()}")

    def _flow_functions(self, calls: list[p.FunctionCall]) -> list[p.FunctionCall]:
        """Answer the state's transition-only functions here; the rest go to their tools."""
        assert self.flow is not None
        rest, answer = self.flow.answer_functions(calls, self._inbox, self._entered,
                                                  self._function_ended)
        self._dirty = self._dirty or answer
        return rest

    def _function_ended(self, call: p.FunctionCall) -> None:
        self.ctx.publish(FunctionCallEnded(session_id=self.ctx.session_id,
                                           node_id=self.ctx.node_id, call_id=call.call_id,
                                           name=call.name, ok=True, arguments=call.arguments))

    async def _end_call(self, calls: list[p.FunctionCall]) -> list[p.FunctionCall]:
        """Answer the built-in `end_call` here; the other calls go to their tools."""
        assert self.driver is not None
        rest: list[p.FunctionCall] = []
        for call in calls:
            if not self.driver.is_end_call(call.name):
                rest.append(call)
                continue
            respond = self.driver.end_call(end_call_reason(call.arguments))
            self.ctx.publish(FunctionCallEnded(session_id=self.ctx.session_id,
                                               node_id=self.ctx.node_id, call_id=call.call_id,
                                               name=call.name, ok=True,
                                               arguments=call.arguments))
            self.conversation.extend([p.function_output(call.call_id, '{"ok": true}')])
            if respond:
                self._dirty = True
        return rest

    # -- WebSocket ---------------------------------------------------------------------------

    async def _respond_ws(self, turn: _Turn, socket: ResponsesSocket) -> p.ResponseFinished:
        for attempt in range(2):
            chain = None
            if attempt == 0 and self._chain is not None and self._chain[0] == socket.epoch:
                chain = self._chain[1]
            items, previous = p.next_input(self.conversation, chain)
            body = self._body(items, previous)
            try:
                return await self._attempt_ws(turn, socket, body)
            except TransportError as exc:
                if exc.fatal:
                    raise
                error: NodeError = exc
                reconnect = True
            except p.ResponsesApiError as exc:
                if exc.code not in p.RETRY_FULL_CONTEXT | p.RETRY_RECONNECT:
                    raise
                error, reconnect = exc, exc.code in p.RETRY_RECONNECT
            except TimeoutError:
                error, reconnect = self._timed_out(), True
            self._chain = None
            if attempt or turn.emitted:
                raise error
            log.info("%s: retrying with the full context after: %s", self.ctx.node_id, error)
            if reconnect:
                if not self.spec.reconnect_on_error:
                    raise TransportError(self.ctx.node_id, f"{error} (reconnect_on_error is "
                                         "off)", fatal=True) from error
                await self._reconnect(socket)
        raise AssertionError("unreachable")

    async def _attempt_ws(self, turn: _Turn, socket: ResponsesSocket,
                          body: p.JSONObject) -> p.ResponseFinished:
        turn.acc = p.ResponseAccumulator(store=self.spec.store)
        turn.pending = None
        try:
            async with asyncio.timeout(self.spec.retry_timeout_secs) as scope:
                pending = turn.pending = await socket.create(body)
                return await self._consume(turn, lambda: socket.next_event(pending), scope)
        except (NodeError, TimeoutError) as exc:
            if turn.pending is not None:
                # A timed-out response still runs on the server; a failed one only has leftovers.
                await socket.abandon(turn.pending, cancel=isinstance(exc, TimeoutError))
            raise

    async def _reconnect(self, socket: ResponsesSocket) -> None:
        try:
            await socket.connect()
        except TransportError as exc:
            raise TransportError(self.ctx.node_id, f"cannot reconnect: {exc}",
                                 fatal=True) from exc

    # -- HTTP --------------------------------------------------------------------------------

    async def _respond_http(self, turn: _Turn) -> p.ResponseFinished:
        for attempt in range(2):
            turn.acc = p.ResponseAccumulator(store=self.spec.store)
            try:
                return await self._attempt_http(turn, self._body(self.conversation.items, None))
            except TimeoutError:
                error = self._timed_out()
                if attempt or turn.emitted:
                    raise error from None
        raise AssertionError("unreachable")

    async def _attempt_http(self, turn: _Turn, body: p.JSONObject) -> p.ResponseFinished:
        assert self._http is not None, "start() creates the HTTP session"
        async with asyncio.timeout(self.spec.retry_timeout_secs) as scope:
            stream = await open_stream(self._http, self._url, self._headers, body,
                                       self.ctx.node_id)
            try:
                return await self._consume(turn, stream.next_event, scope)
            finally:
                stream.close()  # after the terminal event nothing else is wanted

    # -- shared ------------------------------------------------------------------------------

    async def _consume(self, turn: _Turn, next_event: NextEvent,
                       scope: asyncio.Timeout) -> p.ResponseFinished:
        first = True
        while True:
            event = await next_event()
            if event is None:
                raise RemoteProtocolError(self.ctx.node_id, "the stream ended before the "
                                          "response did.")
            if first and isinstance(event, p.OUTPUT_EVENTS):
                first = False
                scope.reschedule(None)  # the timeout guards the start of the answer only
                self.ctx.publish(Metrics(session_id=self.ctx.session_id, node_id=self.ctx.node_id,
                                         values={"ttfb_ms": (time.monotonic() - turn.started)
                                                 * 1000}))
            turn.acc.apply(event)
            match event:
                case p.TextDelta(item_id, delta):
                    turn.emitted = True
                    if item_id and item_id not in turn.items:
                        turn.items.append(item_id)
                    await self.ctx.emit(TextFrame(text=delta, role="assistant", item_id=item_id))
                case p.ReasoningDelta(item_id, delta):
                    turn.emitted = True
                    await self.ctx.emit(ThoughtFrame(text=delta, item_id=item_id))
                case p.ApiError():
                    raise event.raise_for(self.ctx.node_id)
                case p.ResponseFinished():
                    return event

    def _timed_out(self) -> NodeError:
        timeout = self.spec.retry_timeout_secs
        self.ctx.publish(CompletionTimeout(session_id=self.ctx.session_id,
                                           node_id=self.ctx.node_id, timeout_s=timeout))
        if self.spec.retry_on_timeout:
            return TransportError(self.ctx.node_id, f"no answer within {timeout} s.")
        raise NodeTimeout(self.ctx.node_id, f"the LLM completion timed out: no answer within "
                          f"{timeout} s.")

    def _body(self, items: Sequence[p.JSONObject], previous: str | None) -> p.JSONObject:
        # Filled here, once: a caller's value is never read as a template again.
        instructions = render(self.settings.system_instruction or "", self._values)
        if self.flow is not None:
            instructions = self.flow.instructions(instructions, self._values)
        if self._prompt:
            instructions = f"{instructions}\n\n{self._prompt}" if instructions else self._prompt
        if self.flow is not None:
            tools = self.flow.tools(self._values)
        else:
            tools = fill_request({"tools": self._tools}, self._values)["tools"] \
                if self._values else self._tools
        return p.build_body(self.spec, self.settings, items, tools=tools,
                            previous_response_id=previous, system_instruction=instructions)

    @property
    def _url(self) -> str:
        return self.spec.base_url.rstrip("/") + "/responses"

    # -- one-shot ----------------------------------------------------------------------------

    async def run_inference(self, context: Sequence[Mapping[str, Any]],
                            max_tokens: int | None = None,
                            system_instruction: str | None = None) -> str:
        """One non-streaming request over HTTP with `context` (Responses input items, or plain
        `{"role", "content"}` messages); returns the output text. Independent of the session's
        turns and WebSocket: it may run while a turn streams. Raises NodeError on failure."""
        body = p.build_body(self.spec, self.settings, [dict(item) for item in context],
                            max_tokens=max_tokens, system_instruction=system_instruction)
        headers = self._headers or p.headers(self.spec, p.api_key(self.spec, self.ctx.node_id))
        if self._http is not None and not self._http.closed:
            response = await post_json(self._http, self._url, headers, body, self.ctx.node_id)
        else:
            async with aiohttp.ClientSession() as http:
                response = await post_json(http, self._url, headers, body, self.ctx.node_id)
        return p.output_text(response)
