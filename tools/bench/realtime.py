"""Inside the server: the time flowspec adds between a model audio delta arriving and the
transport sending it.

    python tools/bench/realtime.py latency [--seconds 10]

`sessions.py` measures the same delta from outside (emulator send → bytes on the caller's socket)
with many sessions; this is the span inside one session, split in two.

The emulator runs in another process (20 ms deltas in real time); the server runs in this process
with two bench-only seams, both public constructor arguments: the realtime node gets a `connect`
whose socket stamps each message as it comes off the model WebSocket (before JSON parsing, as the
default socket does it), and the browser transport gets a `Connection` whose socket stamps each
`send_bytes`. The k-th `response.output_audio.delta` is paired with the k-th audio send. One
browser client streams 20 ms frames of silence in and receives the reply.

The last stdout line is the JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import pct  # noqa: E402
from _loadgen import (  # noqa: E402
    emulator_process,
    free_port,
    spec_file,
)

WARMUP_S = 3.0


# -- latency: in-process server with stamping seams ---------------------------------------------


class StampedModelSocket:
    """A `WireSocket` over aiohttp that notes when each audio delta came off the socket."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse,
                 arrivals: list[int]) -> None:
        self._http, self._ws, self._arrivals = http, ws, arrivals

    async def send(self, event: Any) -> None:
        await self._ws.send_str(json.dumps(event, separators=(",", ":")))

    async def receive(self) -> dict[str, Any] | None:
        while True:
            message = await self._ws.receive()
            t = time.perf_counter_ns()
            if message.type != aiohttp.WSMsgType.TEXT:
                return None
            value = json.loads(message.data)
            if value.get("type") == "response.output_audio.delta":
                self._arrivals.append(t)
            if isinstance(value, dict):
                return value

    async def close(self) -> None:
        await self._ws.close()
        await self._http.close()


class StampedClientSocket:
    """Wraps the server's client socket; notes when each binary (audio) send is made."""

    def __init__(self, inner: Any, sends: list[int]) -> None:
        self._inner, self._sends = inner, sends

    @property
    def closed(self) -> bool:
        return bool(self._inner.closed)

    async def receive(self) -> Any:
        return await self._inner.receive()

    async def send_text(self, text: str) -> None:
        await self._inner.send_text(text)

    async def send_bytes(self, data: bytes) -> None:
        self._sends.append(time.perf_counter_ns())
        await self._inner.send_bytes(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.close(code, reason)


async def _latency(seconds: float) -> dict[str, Any]:
    import dataclasses

    from aiohttp import web

    from flowspec.frames import AudioFrame
    from flowspec.nodes.openai_realtime.node import RealtimeNode
    from flowspec.runtime.registry import DEFAULT_REGISTRY, Registry
    from flowspec.server.app import Server
    from flowspec.server.commands import load_graphs
    from flowspec.transports.websocket import WebsocketTransport

    arrivals: list[int] = []
    handled: list[int] = []
    sends: list[int] = []

    class StampedTransport(WebsocketTransport):
        async def handle(self, frame: Any, port: str) -> None:
            if isinstance(frame, AudioFrame):
                handled.append(time.perf_counter_ns())
            await super().handle(frame, port)

    async def connect(url: str, headers: Any, node_id: str) -> StampedModelSocket:
        http = aiohttp.ClientSession()
        ws = await http.ws_connect(url, headers=dict(headers), max_msg_size=0, autoping=True,
                                   heartbeat=20.0)
        return StampedModelSocket(http, ws, arrivals)

    def transport(ctx: Any, connection: Any = None) -> WebsocketTransport:
        if connection is not None:
            connection = dataclasses.replace(
                connection, socket=StampedClientSocket(connection.socket, sends))
        return StampedTransport(ctx, connection)

    registry = Registry(parent=DEFAULT_REGISTRY)
    registry.register("openai.realtime", lambda ctx: RealtimeNode(ctx, connect=connect))
    registry.register("transport.websocket", transport)
    with emulator_process() as emu, spec_file(emu.realtime_url) as spec:
        graphs = load_graphs([str(spec)], sys.stderr)
        assert graphs is not None
        server = Server(graphs, registry=registry)
        runner = web.AppRunner(server.app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(Path(__file__).with_name("_loadgen.py")),
                f"ws://127.0.0.1:{port}/ws", str(WARMUP_S + seconds),
                stdout=asyncio.subprocess.PIPE)
            out, _ = await proc.communicate()
        finally:
            await runner.cleanup()
    client = json.loads(out.decode().strip().splitlines()[-1])
    if client["error"]:
        raise RuntimeError(client["error"])
    n = min(len(arrivals), len(sends))
    skip = 5  # the first deltas overlap the session's own start-up
    added = [s - a for a, s in zip(arrivals[skip:n], sends[skip:n], strict=True)]
    to_transport = [h - a for a, h in zip(arrivals[skip:n], handled[skip:n], strict=True)]
    return {"deltas_received": len(arrivals), "audio_sends": len(sends),
            "paired": len(added), "added": pct(added), "to_transport": pct(to_transport)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["latency"])
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    print(json.dumps(asyncio.run(_latency(a.seconds))))
