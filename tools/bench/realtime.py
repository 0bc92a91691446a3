"""Realtime sessions through the real server, the real realtime node and the emulator.

    python tools/bench/realtime.py latency [--seconds 10]
    python tools/bench/realtime.py sessions [--levels 25,50,100] [--seconds 8]

`latency`: time flowspec adds between a model audio delta arriving and the transport sending it.
The emulator runs in another process (20 ms deltas in real time); the server runs in this process
with two bench-only seams, both public constructor arguments: the realtime node gets a `connect`
whose socket stamps each message as it comes off the model WebSocket (before JSON parsing, as the
default socket does it), and the browser transport gets a `Connection` whose socket stamps each
`send_bytes`. The k-th `response.output_audio.delta` is paired with the k-th audio send. One
browser client streams 20 ms frames of silence in and receives the reply.

`sessions`: the largest number of concurrent browser sessions that keep up. `flowspec serve` runs
alone in its own process (its CPU is flowspec's), the emulator in another, the clients in this
one. Each client streams 50 frames/s in and receives a real-time spoken reply (20 ms deltas).
A level keeps up when, over the window after a warm-up, every session received >= 99 % of the
reply audio real time allows, the emulator received >= 99 % of the audio the clients sent, and
the reply's backlog (arrival lag against the audio's own timeline) stays under 100 ms at p99.
The last stdout line is the JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import pct  # noqa: E402
from _loadgen import (  # noqa: E402
    BYTES_PER_MS,
    FRAME_MS,
    Client,
    cpu_seconds,
    emulator_process,
    free_port,
    run_client,
    server_process,
    spec_file,
)

WARMUP_S = 3.0
BACKLOG_LIMIT_MS = 100.0


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


# -- sessions per core: server, emulator and clients in three processes -------------------------


def _level(m: int, seconds: float) -> dict[str, Any]:
    with emulator_process() as emu, spec_file(emu.realtime_url) as spec, \
            server_process(spec) as (server, port):
        return asyncio.run(_drive(m, seconds, emu, server.pid, port))


async def _drive(m: int, seconds: float, emu: Any, server_pid: int, port: int) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{port}/ws"
    clients = [Client() for _ in range(m)]
    t_start = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        ramp_s = min(2.0, m * 0.004)
        stop_at = t_start + ramp_s + WARMUP_S + seconds + 0.5
        tasks = []
        for i, client in enumerate(clients):
            tasks.append(asyncio.create_task(run_client(
                http, url, stop_at, client, phase_s=(i / m) * FRAME_MS / 1000)))
            if ramp_s:
                await asyncio.sleep(ramp_s / m)
        await asyncio.sleep(max(0.0, t_start + ramp_s + WARMUP_S - time.perf_counter()))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, emu.stats)
        w0, c0, e0 = time.perf_counter(), cpu_seconds(server_pid), cpu_seconds(emu.proc.pid)
        p0 = time.process_time()
        await asyncio.sleep(seconds)
        w1, c1, e1 = time.perf_counter(), cpu_seconds(server_pid), cpu_seconds(emu.proc.pid)
        p1 = time.process_time()
        emu_stats = await loop.run_in_executor(None, emu.stats)
        await asyncio.gather(*tasks)
    w0n, w1n = int(w0 * 1e9), int(w1 * 1e9)
    window_ms = (w1 - w0) * 1e3
    out_ratio: list[float] = []
    backlog: list[int] = []
    errors = [c.error for c in clients if c.error]
    sent_bytes = 0
    for client in clients:
        in_window = [(t, b) for t, b in client.received if w0n <= t <= w1n]
        out_ratio.append(sum(b for _, b in in_window) / BYTES_PER_MS / window_ms)
        sent_bytes += sum(960 for t in client.sent if w0n <= t <= w1n)
        timeline, lags = 0.0, []
        for t, b in in_window:
            lags.append(t / 1e6 - timeline)
            timeline += b / BYTES_PER_MS
        if lags:
            floor = min(lags)
            backlog.extend(int((lag - floor) * 1e6) for lag in lags)
    appended = sum(c["appended_bytes"] for c in emu_stats["connections"])
    in_ratio = appended / sent_bytes if sent_bytes else 0.0
    bl = pct(backlog)
    kept_up = (not errors and min(out_ratio, default=0) >= 0.99 and in_ratio >= 0.99
               and bl.get("p99_us", 1e12) / 1e3 <= BACKLOG_LIMIT_MS)
    return {"M": m, "kept_up": kept_up, "errors": len(errors), "first_error": errors[:1],
            "server_cpu": (c1 - c0) / (w1 - w0), "emulator_cpu": (e1 - e0) / (w1 - w0),
            "clients_cpu": (p1 - p0) / (w1 - w0),
            "out_ratio_min": min(out_ratio, default=0),
            "out_ratio_median": statistics.median(out_ratio) if out_ratio else 0,
            "in_ratio": in_ratio,
            "backlog_p50_ms": bl.get("p50_us", 0) / 1e3, "backlog_p99_ms": bl.get("p99_us", 0)
            / 1e3}


def sessions(levels: list[int], seconds: float) -> dict[str, Any]:
    """Ramp through `levels` until one does not keep up (then one level halfway back)."""
    rows: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for m in levels:
        row = _level(m, seconds)
        sys.stderr.write(f"  sessions M={m}: kept up {row['kept_up']}, server CPU "
                         f"{row['server_cpu']:.2f}, emulator {row['emulator_cpu']:.2f}, "
                         f"clients {row['clients_cpu']:.2f}\n")
        rows.append(row)
        if not row["kept_up"]:
            low = best["M"] if best else 0
            if m - low > max(10, m // 5):
                mid = (low + m) // 2
                row = _level(mid, seconds)
                rows.append(row)
                if row["kept_up"]:
                    best = row
            break
        best = row
    return {"levels": rows, "best": best, "window_s": seconds, "warmup_s": WARMUP_S}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["latency", "sessions"])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--levels", default="25,50,100,150,200,300,400,600")
    a = ap.parse_args()
    if a.what == "latency":
        result = asyncio.run(_latency(a.seconds))
    else:
        result = sessions([int(x) for x in a.levels.split(",")], a.seconds)
    print(json.dumps(result))
