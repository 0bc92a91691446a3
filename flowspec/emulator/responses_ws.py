"""Responses WebSocket mode: `response.create` per turn, FIFO lanes, the connection cache."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from flowspec.emulator.responses import (
    Dropped,
    Request,
    ResponseStore,
    ResponseStream,
    Stored,
    failure_error,
    input_items,
    make_plan,
    not_found,
    validate,
)
from flowspec.emulator.script import Script
from flowspec.emulator.wire import (
    JSONObject,
    WireError,
    invalid_value,
    parse_json_object,
)

Send = Callable[[JSONObject], Awaitable[None]]
MAX_LANES = 32
MAX_ACTIVE = 16
_STREAM_ID = re.compile(r"^[A-Za-z0-9_.-]{1,256}$")


class ResponsesSocket:
    """One `/v1/responses` WebSocket. Bad input gets a nested `error` event, never a crash."""

    def __init__(
        self,
        *,
        send: Send,
        abort: Callable[[], None],
        tasks: asyncio.TaskGroup,
        store: ResponseStore,
        script: Script | None,
        pace: float,
    ) -> None:
        self._send = send
        self._abort = abort
        self._tasks = tasks
        self._store = store
        self._script = script
        self._pace = pace
        self._cache: dict[str, Stored] = {}
        self._lanes: dict[str | None, asyncio.Queue[JSONObject]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._active: dict[str | None, ResponseStream] = {}
        self._slots = asyncio.Semaphore(MAX_ACTIVE)

    def close(self) -> None:
        for worker in self._workers:
            worker.cancel()

    async def handle(self, text: str) -> None:
        lane: str | None = None
        try:
            message = parse_json_object(text)
            raw_lane = message.get("stream_id")
            lane = raw_lane if isinstance(raw_lane, str) else None
            kind = message.get("type")
            if kind == "response.create":
                self._enqueue(message)
            elif kind == "response.cancel":
                self._cancel(message)
            elif kind == "response.steer":
                raise WireError(
                    "Steering is not supported by this server.", code="steering_not_supported"
                )
            elif kind is None:
                raise WireError("The 'type' field is missing.", code="invalid_event", param="type")
            else:
                raise invalid_value("type", f"Invalid value: '{kind}'. Unknown client event type.")
        except WireError as err:
            await self._error(err, lane)

    def _enqueue(self, message: JSONObject) -> None:
        lane = message.get("stream_id")
        if lane is not None and (not isinstance(lane, str) or not _STREAM_ID.match(lane)):
            raise WireError(
                "Invalid 'stream_id': use 1-256 letters, digits, '_', '.' or '-'.",
                code="invalid_stream_id",
                param="stream_id",
            )
        validate(message, websocket=True)
        queue = self._lanes.get(lane)
        if queue is None:
            if lane is not None and sum(key is not None for key in self._lanes) >= MAX_LANES:
                raise WireError(
                    f"This connection already uses {MAX_LANES} stream ids.",
                    code="websocket_stream_limit_reached",
                    param="stream_id",
                )
            queue = self._lanes[lane] = asyncio.Queue()
            self._workers.append(self._tasks.create_task(self._lane(lane, queue)))
        queue.put_nowait(message)

    def _cancel(self, message: JSONObject) -> None:
        wanted = message.get("response_id")
        lane = message.get("stream_id")
        for key, stream in self._active.items():
            if (wanted is None and key == lane) or stream.id == wanted:
                stream.cancelled.set()
                return
        raise WireError(
            "Cancellation failed: no active response found", code="response_cancel_not_active"
        )

    async def _lane(self, lane: str | None, queue: asyncio.Queue[JSONObject]) -> None:
        # One worker per lane keeps same-lane creates strictly FIFO and never overlapping.
        while True:
            message = await queue.get()
            try:
                async with self._slots:
                    await self._respond(lane, message)
            except WireError as err:
                await self._error(err, lane)
            except (Dropped, ConnectionResetError):
                return

    async def _respond(self, lane: str | None, message: JSONObject) -> None:
        body = {k: v for k, v in message.items() if k not in ("type", "stream_id", "generate")}
        parent_id = body.get("previous_response_id")
        parent = None
        if parent_id is not None:
            parent = self._cache.get(parent_id) or self._store.responses.get(parent_id)
            if parent is None:
                raise not_found(str(parent_id))
        request = Request(body=body, input=input_items(body), parent=parent,
                          generate=message.get("generate", True) is not False)
        plan = make_plan(request, self._script)
        if plan.failure is not None and plan.failure.stage == "before":
            self._evict(parent_id)
            raise failure_error(plan.failure)

        async def emit(event: JSONObject) -> None:
            await self._send(event if lane is None else event | {"stream_id": lane})

        stream = ResponseStream(request=request, plan=plan, emit=emit, abort=self._abort,
                                pace=self._pace, websocket=True)
        self._active[lane] = stream
        try:
            stored = await stream.run()
        finally:
            del self._active[lane]
        if stored is None:
            if stream.failed:
                self._evict(parent_id)
            return
        self._cache[stream.id] = stored
        if body.get("store", True):
            self._store.put(stream.id, stored)

    def _evict(self, parent_id: Any) -> None:
        # A failed continuation evicts its cached parent, as the service does (reference §5.4).
        if isinstance(parent_id, str):
            self._cache.pop(parent_id, None)

    async def _error(self, err: WireError, lane: str | None) -> None:
        event: JSONObject = {"type": "error", "status": err.status, "error": err.body()}
        if lane is not None:
            event["stream_id"] = lane
        await self._send(event)
