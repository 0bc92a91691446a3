"""Resource safety of `flowspec serve`'s server: connect/disconnect cycles leave no tasks, file
descriptors or memory behind; oversize client messages are refused with 1009 before they are
buffered; a client that stops reading cannot make the server's memory grow without bound.

Each test prints its figures (and keeps them in build/reliability.json). Growth is compared with
small constants, never with a clock. `SOAK_CYCLES` sets the cycle count (default 1,000); the
10,000-cycle variants run with `-m slow`.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gc
import os
import struct
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from flowspec.frames import AudioFrame, Frame
from flowspec.runtime import Context, Registry
from flowspec.server.app import Server
from flowspec.spec.compiled import DEFAULT_CAPACITY, CompiledGraph
from flowspec.spec.models.transports import (
    TextTransportSpec,
    TwilioTransportSpec,
    WebsocketTransportSpec,
)
from flowspec.testing import graph, make_registry, until

from .conftest import Figures

CYCLES = int(os.environ.get("SOAK_CYCLES", "1000"))
BATCH = 50
TASK_SLACK = 3  # the loop's own bookkeeping may hold a task or two between polls
FD_SLACK = 4
OBJECT_SLACK = 300  # live Python objects: one leaked object per session would add 1,000
RSS_SLACK = 8 * 1024 * 1024  # resident memory: a leak of 8 KiB per session would fail

VOICE = graph({"caller": WebsocketTransportSpec.model_validate({"type": "transport.websocket"}),
               "llm": "test.echo"}, ["caller -> llm -> caller"], entry="caller", name="voice")
PHONE = graph({"caller": TwilioTransportSpec.model_validate({"type": "transport.twilio"}),
               "llm": "test.echo"}, ["caller -> llm -> caller"], entry="caller", name="phone")
TEXT = graph({"caller": TextTransportSpec.model_validate({"type": "transport.text"}),
              "llm": "test.echo"}, ["caller -> llm -> caller"], entry="caller", name="text")


class PlainEcho:
    """`test.echo` without a memory: plays every frame straight back (the shipped EchoNode
    records what it receives, which a flood would turn into growth of the test's own)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def handle(self, frame: Frame, port: str) -> None:
        if isinstance(frame, AudioFrame):
            await self.ctx.emit(dataclasses.replace(frame, item_id="item_1"))


@asynccontextmanager
async def serving(graphs: list[CompiledGraph], *, plain: bool = False
                  ) -> AsyncIterator[tuple[Server, str]]:
    registry = make_registry()
    if plain:
        registry = Registry(parent=registry)
        registry.register("test.echo", PlainEcho)
    server = Server(graphs, registry=registry)
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


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def snapshot(server: Server) -> dict[str, int]:
    await until(lambda: not server.sessions)
    for _ in range(5):  # let closing transports run their callbacks
        await asyncio.sleep(0)
    gc.collect()
    return {"tasks": len(asyncio.all_tasks()), "fds": open_fds(),
            "objects": len(gc.get_objects()), "rss": rss()}


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def browser_cycle(http: aiohttp.ClientSession, host: str) -> None:
    async with http.ws_connect(f"ws://{host}/ws") as ws:
        hello = await ws.receive_json()
        assert hello["type"] == "session.started"
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json())["type"] == "pong"


async def twilio_cycle(http: aiohttp.ClientSession, host: str) -> None:
    async with http.ws_connect(f"ws://{host}/twilio/stream") as ws:
        await ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await ws.send_json({"event": "start", "streamSid": "MZ1",
                            "start": {"streamSid": "MZ1", "callSid": "CA1"}})
        payload = base64.b64encode(bytes([0xFF]) * 160).decode()
        await ws.send_json({"event": "media", "streamSid": "MZ1",
                            "media": {"payload": payload}})
        media = await ws.receive_json()  # the echo, as Twilio media
        assert media["event"] == "media"


async def soak(kind: str, cycle: Callable[[aiohttp.ClientSession, str], Awaitable[None]],
               cycles: int, figures: Figures) -> None:
    async with serving([VOICE, PHONE]) as (server, host), aiohttp.ClientSession() as http:
        for _ in range(4):  # warm-up: imports, caches, the connector's first sockets
            await asyncio.gather(*(cycle(http, host) for _ in range(BATCH)))
        before = await snapshot(server)
        done = 0
        while done < cycles:
            size = min(BATCH, cycles - done)
            await asyncio.gather(*(cycle(http, host) for _ in range(size)))
            done += size
        after = await snapshot(server)
    growth = {k: after[k] - before[k] for k in before}
    text = figures.record(f"soak/{kind}/{cycles}", cycles=done, before=before, after=after,
                          growth=growth)
    assert growth["tasks"] <= TASK_SLACK, text
    assert growth["fds"] <= FD_SLACK, text
    assert growth["objects"] <= OBJECT_SLACK, text
    assert growth["rss"] <= RSS_SLACK, text


async def test_browser_connect_disconnect_cycles(figures: Figures) -> None:
    await soak("browser", browser_cycle, CYCLES, figures)


async def test_twilio_connect_disconnect_cycles(figures: Figures) -> None:
    await soak("twilio", twilio_cycle, CYCLES, figures)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["browser", "twilio"])
async def test_ten_thousand_cycles(kind: str, figures: Figures) -> None:
    await soak(kind, browser_cycle if kind == "browser" else twilio_cycle, 10_000, figures)


# -- oversize messages -----------------------------------------------------------------------


async def raw_oversize(host: str, path: str, declared: int, limit: int) -> tuple[int | None, int]:
    """Open a WebSocket by hand and start one binary message of `declared` bytes, streaming
    zeros from one small reused buffer (so the client allocates nothing of that size). Returns
    the close code the server answered with and how many payload bytes went out before it."""
    address, port = host.split(":")
    reader, writer = await asyncio.open_connection(address, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    mask = b"\x00\x00\x00\x00"
    writer.write(b"\x82\xff" + struct.pack("!Q", declared) + mask)
    chunk = bytes(65_536)
    sent = 0
    close_code: int | None = None
    try:
        # A little past the limit: more would only meet a reset once the server has closed.
        while sent < min(declared, limit + 2 * len(chunk)):
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
    except ConnectionError:
        pass
    try:
        data = await reader.read(4096)
        while data:
            # Server frames are unmasked: 0x88 = close, then the length and a 2-byte code.
            at = data.find(b"\x88")
            if at >= 0 and len(data) >= at + 4:
                close_code = struct.unpack("!H", data[at + 2:at + 4])[0]
                break
            data += await reader.read(4096)
    except ConnectionError:
        pass
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass
    return close_code, sent


@pytest.mark.parametrize(("path", "limit"), [("/ws", 1_048_576), ("/chat", 65_536),
                                             ("/twilio/stream", 65_536)])
async def test_oversize_messages_are_refused_with_1009_not_buffered(
        path: str, limit: int, figures: Figures) -> None:
    declared = 64 * 1024 * 1024
    tracemalloc.start(1)
    try:
        async with serving([VOICE, PHONE, TEXT]) as (server, host):
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            code, sent = await raw_oversize(host, path, declared, limit)
            peak = tracemalloc.get_traced_memory()[1] - base
            await until(lambda: not server.sessions)
    finally:
        tracemalloc.stop()
    text = figures.record(f"oversize{path}", declared_bytes=declared, limit_bytes=limit,
                          sent_before_close=sent, close_code=code, server_peak_bytes=peak)
    assert code == 1009, text
    assert peak < 4 * 1024 * 1024, text  # far below the 64 MiB the message announced


async def test_an_oversize_message_on_an_open_session_closes_it(figures: Figures) -> None:
    async with serving([VOICE, PHONE]) as (server, host), aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{host}/ws", max_msg_size=0) as ws:
            await ws.receive_json()
            await ws.send_bytes(bytes(1_048_577))
            message = await ws.receive()
            while message.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                message = await ws.receive()
            assert ws.close_code == 1009
        await until(lambda: not server.sessions)


# -- a client that stops reading -------------------------------------------------------------


async def test_a_client_that_never_reads_cannot_grow_server_memory(figures: Figures) -> None:
    """The client sends audio (which the echo node plays back) and never reads. The server's
    writes wait for the socket, its edges fill and block, it stops reading, and the client's
    own sends stall: memory stays bounded by queue capacities, not by what was sent."""
    total = 48 * 1024 * 1024
    message = bytes(32_000)  # 1 s of PCM16 at 16 kHz
    tracemalloc.start(1)
    sent = 0
    try:
        async with serving([VOICE], plain=True) as (server, host), \
                aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"ws://{host}/ws")
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()

            async def flood() -> None:
                nonlocal sent
                while sent < total:
                    await ws.send_bytes(message)
                    sent += len(message)

            sender = asyncio.create_task(flood())
            stalled, last = 0, -1
            while not sender.done() and stalled < 40:  # 40 polls without progress: blocked
                await asyncio.sleep(0.05)
                stalled = stalled + 1 if sent == last else 0
                last = sent
            peak = tracemalloc.get_traced_memory()[1] - base
            blocked = not sender.done()
            sender.cancel()
            try:
                await sender
            except (asyncio.CancelledError, ConnectionError):
                pass
            await ws.close()
            await until(lambda: not server.sessions, polls=20000)
    finally:
        tracemalloc.stop()
    # What may be held: both edges full (128 frames each), plus socket buffers on both ends.
    bound = 2 * DEFAULT_CAPACITY * len(message) + 6 * 1024 * 1024
    text = figures.record("slow_client", sent_bytes=sent, peak_bytes=peak, bound_bytes=bound,
                          sender_blocked=blocked)
    assert blocked, text
    assert peak < bound, text
    assert sent < total, text

