"""The emulator's aiohttp server and its in-process API (`Emulator`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import WSCloseCode, WSMsgType, web

from flowspec.emulator.realtime import RealtimeSession
from flowspec.emulator.realtime_response import Pacing
from flowspec.emulator.records import ConnectionRecord, Kind
from flowspec.emulator.replay import Replay, ReplaySocket
from flowspec.emulator.responses import ResponseStore
from flowspec.emulator.responses_http import handle_post
from flowspec.emulator.responses_ws import ResponsesSocket
from flowspec.emulator.script import Script, load_script, parse_script
from flowspec.emulator.speech import handle_speech
from flowspec.emulator.transcription import TranscriptionSession
from flowspec.emulator.wire import JSONObject, new_id
from flowspec.errors import UsageError

BETA_RETIRED_MESSAGE = (
    "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
)
DEFAULT_MODEL = "gpt-realtime"


@dataclass(slots=True)
class EmulatorOptions:
    """How the emulator behaves.

    `pace` is wall seconds per second of reply audio (1.0 real time, 0 as fast as possible, 0.25
    four times faster). `retired_beta` answers beta connections like OpenAI's host does since
    2026: a `beta_api_shape_disabled` error and close code 4000. `keep_records` keeps every
    message of every connection, and each connection's record after it closed, for tests to
    inspect; without it (a served emulator) a record lives as long as its connection.
    """

    pace: float = 1.0
    chunk_ms: int = 100
    retired_beta: bool = False
    script: Script | None = None
    keep_records: bool = False
    replay: Replay | None = None
    """A recording whose provider side WebSocket connections play instead of the emulator."""


@dataclass(eq=False)
class Emulator:
    """A running emulator. Start it with `async with Emulator.start(...) as emu:`.

    `connections` lists a `ConnectionRecord` per WebSocket connection and per HTTP request, in
    arrival order: every one with `keep_records`, else the open ones (without their messages).
    `script` may be replaced at any time (`emu.script = parse_script(...)`); `drop()` cuts the
    open connections at once, whatever they are doing.
    """

    options: EmulatorOptions = field(default_factory=EmulatorOptions)
    host: str = "127.0.0.1"
    port: int = 0
    connections: list[ConnectionRecord] = field(default_factory=list)
    store: ResponseStore = field(default_factory=ResponseStore)
    _runner: web.AppRunner | None = None
    _count: int = 0
    _speeches: int = 0
    # Open WebSockets, each with its kind and a way to cut its connection.
    _sockets: dict[web.WebSocketResponse, tuple[Kind, Callable[[], None]]] = field(
        default_factory=dict)
    _new_connection: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pace: float = 1.0,
        chunk_ms: int = 100,
        retired_beta: bool = False,
        script: Script | str | Path | None = None,
        keep_records: bool = False,
        replay: str | Path | None = None,
    ) -> AsyncIterator[Emulator]:
        """Serve on `host:port` (0 = a free port) until the block exits.

        `script` is a parsed `Script` or the path of a script file. Tests that inspect what
        was sent and received (`connections`, `wait_connection`, a record's `received`, `sent`
        and waits) ask for `keep_records=True`. `replay` is a recording (`flowspec record`)
        whose provider side Realtime and Responses WebSocket connections play back.
        """
        if isinstance(script, str | Path):
            script = load_script(script)
        emulator = cls(
            EmulatorOptions(pace=pace, chunk_ms=chunk_ms, retired_beta=retired_beta,
                            script=script, keep_records=keep_records,
                            replay=Replay.load(replay) if replay is not None else None),
            host=host,
            port=port,
        )
        await emulator.open()
        try:
            yield emulator
        finally:
            await emulator.stop()

    @property
    def script(self) -> Script | None:
        return self.options.script

    @script.setter
    def script(self, value: Script | None) -> None:
        self.options.script = value

    def load_script(self, source: str | Path, *, text: bool = False) -> Script:
        """Load (a path, or script text when `text=True`) and use it from now on."""
        self.options.script = parse_script(str(source)) if text else load_script(source)
        return self.options.script

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def http_base_url(self) -> str:
        """For `AsyncOpenAI(base_url=...)`: `http://127.0.0.1:PORT/v1`."""
        return f"{self.base_url}/v1"

    @property
    def ws_base_url(self) -> str:
        """For `websocket_base_url=...`: `ws://127.0.0.1:PORT/v1`."""
        return f"ws://{self.host}:{self.port}/v1"

    def of_kind(self, kind: Kind) -> list[ConnectionRecord]:
        return [record for record in self.connections if record.kind == kind]

    async def wait_connection(
        self, kind: Kind | None = None, *, index: int = 0
    ) -> ConnectionRecord:
        """The `index`-th connection of `kind` (any kind when None), waiting for it to arrive.

        No deadline of its own: wrap it in `asyncio.timeout(...)`. Needs `keep_records` (closed
        connections would leave the list and shift the indexes).
        """
        if not self.options.keep_records:
            raise UsageError("wait_connection counts every connection: start the emulator with "
                             "keep_records=True.")
        while True:
            matching = [r for r in self.connections if kind is None or r.kind == kind]
            if len(matching) > index:
                return matching[index]
            self._new_connection.clear()
            await self._new_connection.wait()

    async def open(self) -> None:
        app = web.Application()
        app.router.add_get("/v1/realtime", self._realtime)
        app.router.add_get("/v1/responses", self._responses_ws)
        app.router.add_post("/v1/responses", self._responses_post)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_get("/healthz", self._health)
        app.on_shutdown.append(self._close_sockets)
        # A client that hangs up stops its response, as on OpenAI's servers: without handler
        # cancellation a stalled SSE reply runs on (and holds up shutdown) after the client left.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1])

    async def stop(self) -> None:
        """Close every connection (code 1001) and stop serving. Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def drop(self, kind: Kind | None = None) -> int:
        """Cut every open WebSocket of `kind` (all when None) without a close frame, as a
        provider outage does; returns how many were cut."""
        cut = [abort for of, abort in self._sockets.values() if kind in (None, of)]
        for abort in cut:
            abort()
        return len(cut)

    async def _close_sockets(self, app: web.Application) -> None:
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def _record(self, request: web.Request, kind: Kind) -> ConnectionRecord:
        self._count += 1
        record = ConnectionRecord(
            id=self._count,
            kind=kind,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            keep=self.options.keep_records,
        )
        self.connections.append(record)
        self._new_connection.set()
        return record

    def _closed(self, record: ConnectionRecord) -> None:
        record.note_closed()
        if not self.options.keep_records:
            self.connections.remove(record)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _responses_post(self, request: web.Request) -> web.StreamResponse:
        record = self._record(request, "responses_http")
        try:
            return await handle_post(request, record=record, store=self.store,
                                     script=self.options.script, pace=self.options.pace)
        finally:
            self._closed(record)

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        record = self._record(request, "speech")
        self._speeches += 1
        try:
            return await handle_speech(request, record=record, script=self.options.script,
                                       pace=self.options.pace, chunk_ms=self.options.chunk_ms,
                                       number=self._speeches)
        finally:
            self._closed(record)

    async def _realtime(self, request: web.Request) -> web.StreamResponse:
        transcription = request.query.get("intent") == "transcription"
        record = self._record(request, "transcription" if transcription else "realtime")
        beta = request.headers.get("OpenAI-Beta", "").replace(" ", "") == "realtime=v1"
        record.dialect = "beta" if beta else "ga"
        ws: web.WebSocketResponse | None = None
        try:
            ws = await self._accept(request, record)
            send = self._sender(ws, record)
            if beta and self.options.retired_beta:
                await send({"type": "error", "event_id": new_id("event"), "error": {
                    "type": "invalid_request_error", "code": "beta_api_shape_disabled",
                    "message": BETA_RETIRED_MESSAGE, "param": None, "event_id": None}})
                await ws.close(code=4000, message=b"beta_api_shape_disabled")
                return ws
            if transcription:
                # Served live even when replaying: a recording holds the model's side only.
                listener = TranscriptionSession(dialect=record.dialect, send=send,
                                                script=self.options.script)
                await listener.start()
                await self._pump(ws, record, listener.handle)
                return ws
            if self.options.replay is not None:
                await self._replayed(ws, record, send, "realtime")
                return ws
            async with asyncio.TaskGroup() as tasks:
                session = RealtimeSession(
                    dialect=record.dialect,
                    model=request.query.get("model", DEFAULT_MODEL),
                    send=send,
                    abort=self._aborter(request),
                    tasks=tasks,
                    pacing=Pacing(self.options.pace, self.options.chunk_ms),
                    script=self.options.script,
                )
                await session.start()
                await self._pump(ws, record, session.handle)
                session.close()
        finally:
            if ws is not None:
                self._sockets.pop(ws, None)
            self._closed(record)
        return ws

    async def _responses_ws(self, request: web.Request) -> web.StreamResponse:
        record = self._record(request, "responses_ws")
        ws: web.WebSocketResponse | None = None
        try:
            ws = await self._accept(request, record)
            if self.options.replay is not None:
                await self._replayed(ws, record, self._sender(ws, record), "responses")
                return ws
            async with asyncio.TaskGroup() as tasks:
                socket = ResponsesSocket(
                    send=self._sender(ws, record),
                    abort=self._aborter(request),
                    tasks=tasks,
                    store=self.store,
                    script=self.options.script,
                    pace=self.options.pace,
                )
                await self._pump(ws, record, socket.handle)
                socket.close()
        finally:
            if ws is not None:
                self._sockets.pop(ws, None)
            self._closed(record)
        return ws

    async def _replayed(self, ws: web.WebSocketResponse, record: ConnectionRecord,
                        send: Callable[[JSONObject], Awaitable[None]], api: str) -> None:
        assert self.options.replay is not None
        socket = ReplaySocket(self.options.replay.next_connection(api), send,
                              pace=self.options.pace)
        await socket.start()
        await self._pump(ws, record, socket.handle)

    async def _accept(self, request: web.Request,
                      record: ConnectionRecord) -> web.WebSocketResponse:
        # Appends may carry up to 15 MiB; the SDK sends without a size limit or compression.
        ws = web.WebSocketResponse(max_msg_size=0, compress=False, autoping=True)
        await ws.prepare(request)
        self._sockets[ws] = (record.kind, self._aborter(request))
        return ws

    async def _pump(
        self,
        ws: web.WebSocketResponse,
        record: ConnectionRecord,
        handle: Callable[[str], Awaitable[None]],
    ) -> None:
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                record.note_received(message.data)
                try:
                    await handle(message.data)
                except ConnectionResetError:
                    return
            elif message.type == WSMsgType.BINARY:
                text = message.data.decode("utf-8", errors="replace")
                record.note_received(text)
                await handle(text)

    @staticmethod
    def _sender(
        ws: web.WebSocketResponse, record: ConnectionRecord
    ) -> Callable[[JSONObject], Awaitable[None]]:
        async def send(event: JSONObject) -> None:
            record.note_sent(event)
            if ws.closed:
                raise ConnectionResetError("the client went away")
            await ws.send_str(json.dumps(event, separators=(",", ":")))

        return send

    @staticmethod
    def _aborter(request: web.Request) -> Callable[[], None]:
        def abort() -> None:
            if request.transport is not None:
                request.transport.abort()

        return abort

