"""A served spec with hot reload: the real server, the admin API, the emulator, and browser
WebSocket clients making live sessions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from flowspec.conversation.clock import Clock
from flowspec.emulator import Emulator
from flowspec.emulator.records import ConnectionRecord
from flowspec.emulator.script import parse_script
from flowspec.reload.source import FileSource
from flowspec.server.admin import Admin, attach
from flowspec.server.app import Server
from flowspec.server.offline import emulated_nodes, point_at
from flowspec.spec.compile import compile_text
from flowspec.spec.compiled import CompiledGraph

VOICE = """\
# A voice bot for reload tests.
flowspec: 1
name: reload-voice
nodes:
  caller:
    type: transport.websocket   # the browser protocol
    audio: {encoding: pcm16, sample_rate: 24000}
  llm:
    type: openai.realtime
    tools: [get_weather]
    settings:
      system_instruction: You are terse.   # the persona
      session_properties:
        audio:
          input:
            turn_detection: {type: server_vad}
          output: {voice: marin}
  get_weather:
    type: tool.python
    handler: flowspec.examples.weather:get_weather
    description: Current weather for a city.
    parameters:
      type: object
      properties: {location: {type: string}}
      required: [location]
edges:
  - caller -> llm -> caller
"""

SCRIPT = """\
rules:
  - when: {event: session.update, contains: forbidden}
    fail: {type: invalid_request_error, code: invalid_value, message: Not allowed here.}
  - when: {instructions: pirate}
    say: Arr, matey.
"""

STEP = 10.0
"""A guard against hangs (seconds), never a timing assertion."""


def wait(seconds: float = STEP) -> asyncio.Timeout:
    return asyncio.timeout(seconds)


@dataclass
class Served:
    server: Server
    admin: Admin
    emulator: Emulator
    http: aiohttp.ClientSession
    base: str
    path: Path
    clients: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)

    @property
    def reloader(self) -> Any:
        return next(iter(self.admin.reloaders.values()))

    async def call(self) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any],
                                  ConnectionRecord]:
        """A new live session, ready (its first `session.updated` answered): the client, its
        `session.started` message and the emulator's record of its model connection."""
        index = len(self.emulator.of_kind("realtime"))
        ws = await self.http.ws_connect(f"ws://{self.base}/ws")
        self.clients.append(ws)
        async with wait():
            hello = await ws.receive_json()
            record = await self.emulator.wait_connection("realtime", index=index)
            await record.wait_sent("session.updated")
        return ws, hello, record

    async def say(self, ws: aiohttp.ClientWebSocketResponse, record: ConnectionRecord,
                  text: str) -> str:
        """Type `text` and wait for the whole answer; returns its transcript."""
        done = len(record.sent_of("response.done"))
        await ws.send_json({"type": "text", "text": text})
        async with wait():
            await record.wait_sent("response.done", count=done + 1)
        response = record.sent_of("response.done")[-1]["response"]
        parts = [c for item in response["output"] for c in item.get("content", [])]
        return " ".join(str(p.get("transcript") or p.get("text") or "") for p in parts)

    async def patch(self, body: Any, kind: str = "merge-patch",
                    if_match: str | None = None) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": f"application/{kind}+json", **self.auth}
        if if_match is not None:
            headers["If-Match"] = if_match
        async with self.http.patch(f"http://{self.base}/admin/spec", json=body,
                                   headers=headers) as response:
            return response.status, await response.json()

    async def get(self, path: str = "/admin/spec") -> tuple[int, dict[str, Any]]:
        async with self.http.get(f"http://{self.base}{path}", headers=self.auth) as response:
            return response.status, await response.json()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin.token}"}


def settings(**values: Any) -> dict[str, Any]:
    """A merge patch of the `llm` node's settings."""
    return {"nodes": {"llm": {"settings": values}}}


def pointed(graph: CompiledGraph, emulator: Emulator) -> CompiledGraph:
    return point_at(graph, emulated_nodes(graph, {}), emulator.http_base_url,
                    emulator.ws_base_url)


@asynccontextmanager
async def serving(tmp_path: Path, text: str = VOICE, *, token: str | None = None,
                  script: str = SCRIPT, source: bool = False, spec: Path | None = None,
                  write: bool = True, clock: Clock | None = None) -> AsyncIterator[Served]:
    """A served spec. With `source`, its truth is the file `spec` (default `bot.yaml` in
    `tmp_path`, written from `text` unless `write` is false), as `flowspec serve` has it."""
    path = spec or tmp_path / "bot.yaml"
    if write and spec is None:
        path.write_text(text)
    text = path.read_text()
    graph = compile_text(text, str(path), {}).raise_for_errors()
    sources = {graph.name: FileSource(path, state=tmp_path / ".state", debounce_ms=10)} \
        if source else None
    async with Emulator.start(pace=0, script=parse_script(script),
                              keep_records=True) as emulator:
        server = Server([pointed(graph, emulator)], clock=clock)
        admin = attach(server, [(graph, text)], lambda g: pointed(g, emulator), token=token,
                       env={}, sources=sources)
        for reloader in admin.reloaders.values():
            await reloader.open()
        runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http:
            served = Served(server, admin, emulator, http, f"127.0.0.1:{port}", path)
            try:
                yield served
            finally:
                for ws in served.clients:
                    await ws.close()
                await site.stop()
                await server.drain(5)
                await runner.cleanup()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(tmp_path) as s:
        yield s


def without_id(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "event_id"}
