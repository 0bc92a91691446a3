"""Malformed client messages leave nothing behind: clients of `flowspec serve`'s server each send
one bad message (too deep, a number too long for a float, binary where JSON belongs, malformed
Twilio events, non-JSON) and hang up. Afterwards tasks, file descriptors, the provider sockets
the model nodes opened (counted at the emulator they talk to) and the server's sessions are back
where they were. Growth is compared with small constants, never with a clock.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from flowspec.emulator import Emulator
from flowspec.server.app import Server
from flowspec.spec.compile import compile_text
from flowspec.spec.compiled import CompiledGraph

from .conftest import Figures

CLIENTS = 200
BATCH = 50
TASK_SLACK = 3  # the loop's own bookkeeping may hold a task or two between polls
FD_SLACK = 4

VOICE = """\
flowspec: 1
name: voice
nodes:
  caller: {{type: transport.websocket}}
  llm: {{type: openai.realtime, base_url: "{ws}/realtime", api_key: test}}
edges: [caller -> llm -> caller]
"""
PHONE = """\
flowspec: 1
name: phone
nodes:
  caller: {{type: transport.twilio}}
  llm: {{type: openai.realtime, base_url: "{ws}/realtime", api_key: test}}
edges: [caller -> llm -> caller]
"""
TEXT = """\
flowspec: 1
name: text
nodes:
  caller: {{type: transport.text}}
  llm: {{type: openai.responses, base_url: "{http}", ws_url: "{ws}/responses", api_key: test}}
edges: [caller -> llm -> caller]
"""

HUGE = "9" * 400
START = {"event": "start", "streamSid": "MZ1", "start": {"streamSid": "MZ1", "callSid": "CA1"}}
Message = str | bytes
# (path, message): every client sends one of these, then hangs up.
MALFORMED: list[tuple[str, Message]] = [
    ("/ws", '{"type": "playback", "item_id": "item_1", "played_ms": ' + HUGE + "}"),
    ("/ws", "[" * 30000),
    ("/ws", "not json {"),
    ("/ws", '{"type": "playback", "item_id": "item_1", "played_ms": 1e999}'),
    ("/chat", "[" * 30000),
    ("/chat", b"\x00\x01binary"),
    ("/chat", '{"type": "text", "text": ' + HUGE + "}"),
    ("/twilio/stream", '{"event": "start"}'),
    ("/twilio/stream", '{"event": "media", "media": {"payload": "!!not base64"}}'),
    ("/twilio/stream", '{"event": "mark", "mark": {"name": ' + HUGE + "}}"),
    ("/twilio/stream", "[" * 30000),
]


def graphs(emulator: Emulator) -> list[CompiledGraph]:
    urls = {"ws": emulator.ws_base_url, "http": emulator.http_base_url}
    return [compile_text(text.format(**urls), env={}).raise_for_errors()
            for text in (VOICE, PHONE, TEXT)]


@asynccontextmanager
async def serving(emulator: Emulator) -> AsyncIterator[tuple[Server, str]]:
    server = Server(graphs(emulator))
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield server, f"127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await site.stop()
        await server.drain(5)
        await runner.cleanup()


async def send_and_hang_up(http: aiohttp.ClientSession, host: str, path: str,
                           message: Message) -> bool:
    """One client: connect, send `message`, hang up. False when the server turned it away (a
    server full of sessions that never ended)."""
    async with http.ws_connect(f"ws://{host}{path}", max_msg_size=0) as ws:
        if path != "/twilio/stream":
            hello = await ws.receive_json()
            if hello["type"] != "session.started":
                return False
        if isinstance(message, bytes):
            await ws.send_bytes(message)
        else:
            await ws.send_str(message)
        return True


async def good_cycle(http: aiohttp.ClientSession, host: str, index: int) -> bool:
    """A well-behaved client of each kind in turn: the warm-up before the baseline."""
    payload = base64.b64encode(bytes([0xFF]) * 160).decode()
    cases: list[tuple[str, Message]] = [
        ("/ws", '{"type": "ping"}'), ("/chat", '{"type": "ping"}'),
        ("/twilio/stream", str(START).replace("'", '"')),
        ("/twilio/stream", '{"event": "media", "media": {"payload": "' + payload + '"}}')]
    path, message = cases[index % len(cases)]
    return await send_and_hang_up(http, host, path, message)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def provider_sockets(emulator: Emulator) -> int:
    """Connections open at the emulator: the model nodes' provider sockets."""
    return sum(not record.closed for record in emulator.connections)


async def settled(server: Server, emulator: Emulator, polls: int = 10_000) -> bool:
    """Whether every session ended and every provider socket closed, within `polls` 1 ms polls
    (a guard against a hang, not a timing assertion)."""
    for _ in range(polls):
        if not server.sessions and not provider_sockets(emulator):
            break
        await asyncio.sleep(0.001)
    for _ in range(5):  # let closing transports run their callbacks
        await asyncio.sleep(0)
    return not server.sessions and not provider_sockets(emulator)


async def snapshot(server: Server, emulator: Emulator) -> dict[str, int]:
    await settled(server, emulator)
    gc.collect()
    return {"tasks": len(asyncio.all_tasks()), "fds": open_fds(),
            "provider_sockets": provider_sockets(emulator), "sessions": len(server.sessions)}


async def in_batches(count: int, cycle: Callable[[int], Awaitable[bool]]) -> int:
    """Run `count` client cycles, `BATCH` at a time; returns how many the server refused."""
    refused = 0
    for start in range(0, count, BATCH):
        served = await asyncio.gather(*(cycle(i) for i in range(start, min(count, start + BATCH))))
        refused += served.count(False)
    return refused


async def test_malformed_messages_then_hang_ups_leave_nothing_behind(figures: Figures) -> None:
    async with Emulator.start(pace=0) as emulator, serving(emulator) as (server, host), \
            aiohttp.ClientSession() as http:
        await in_batches(BATCH, lambda i: good_cycle(http, host, i))  # imports, caches
        before = await snapshot(server, emulator)

        async def bad_cycle(index: int) -> bool:
            path, message = MALFORMED[index % len(MALFORMED)]
            return await send_and_hang_up(http, host, path, message)

        refused = await in_batches(CLIENTS, bad_cycle)
        after = await snapshot(server, emulator)
    growth = {key: after[key] - before[key] for key in before}
    text = figures.record("leaks/malformed", clients=CLIENTS, kinds=len(MALFORMED),
                          refused=refused, before=before, after=after, growth=growth)
    assert refused == 0, text
    assert after["sessions"] == 0, text
    assert after["provider_sockets"] == before["provider_sockets"] == 0, text
    assert growth["tasks"] <= TASK_SLACK, text
    assert growth["fds"] <= FD_SLACK, text
