"""Hot reload latency: an admin PATCH received → the `session.update` arriving at the provider.

Serves a voice spec with the admin API in this process, points its Realtime node at the emulator
in its own process (`_emulator_proc.py`, pace 0), opens N live browser sessions, then sends
`--patches` merge patches that change `system_instruction` (each one a live change). For each
patch it measures:

- received → sent: from the moment the reload pipeline has the patch (after HTTP parsing) to the
  moment the emulator receives the `session.update` (the last session's, with N sessions), so it
  covers validation, diff, plan, delivery and the socket write (target ≤ 5 ms median at 100
  sessions, DESIGN §11). The emulator stamps arrivals with `time.perf_counter_ns()`, this process
  stamps the patch with `time.perf_counter()`: CLOCK_MONOTONIC, one clock for both processes;
- received → written: the same start, to the moment flowspec has written the last session's
  update to its socket (flowspec's own part; the rest of the row above is the kernel and the
  emulator, one process reading what a hundred providers would read each on their own);
- the whole PATCH round trip, which also waits for every provider's `session.updated` echo.

`--replicas` adds the row across machines: two `flowspec serve` processes sharing one Redis store
(a `redis-server` started on a free loopback port), a live session on replica B, and each PATCH
sent to replica A; measured from sending the PATCH to the emulator receiving B's `session.update`
(target ≤ 20 ms median).

Run: `.venv/bin/python tools/bench/reload.py [--patches 60] [--sessions 1 10 100 500]
[--replicas] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

SPEC = (ROOT / "specs" / "voice-assistant.yaml").read_text()
READY_S = 120.0  # how long N sessions may take to reach the model


class EmulatorProcess:
    """`_emulator_proc.py` at pace 0: its port, and its commands (one JSON line each)."""

    def __init__(self, extra: list[str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "_emulator_proc.py"),
                                      "--pace", "0", *(extra or [])], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the emulator did not start: {line!r}")
        self.port = int(line.split()[1])

    def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    async def ask_async(self, command: str) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self.ask, command)

    async def wait_ready(self, count: int) -> None:
        deadline = time.perf_counter() + READY_S
        while (await self.ask_async("ready"))["ready"] < count:
            if time.perf_counter() > deadline:
                raise SystemExit(f"fewer than {count} model sessions became ready")
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def emulator_process() -> Iterator[EmulatorProcess]:
    emulator = EmulatorProcess(["--stamp-reads"])
    try:
        yield emulator
    finally:
        emulator.stop()


async def measure(sessions: int, patches: int) -> dict[str, Any]:
    import aiohttp
    from aiohttp import web

    from flowspec.server.admin import attach
    from flowspec.server.app import Server
    from flowspec.server.offline import emulated_nodes, point_at
    from flowspec.spec.compile import compile_text
    from flowspec.spec.compiled import CompiledGraph

    graph = compile_text(SPEC, "voice-assistant.yaml", {}).raise_for_errors()
    with emulator_process() as emulator:
        base_http = f"http://127.0.0.1:{emulator.port}/v1"
        base_ws = f"ws://127.0.0.1:{emulator.port}/v1"

        def pointed(g: CompiledGraph) -> CompiledGraph:
            return point_at(g, emulated_nodes(g, {}), base_http, base_ws)

        server = Server([pointed(graph)], max_sessions=sessions + 10)
        admin = attach(server, [(graph, SPEC)], pointed, env={})
        reloader = admin.reloaders[graph.name]
        runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"127.0.0.1:{runner.addresses[0][1]}"
        latencies: list[float] = []
        written: list[float] = []
        round_trips: list[float] = []
        # No client-side cap on connections: N live sessions are N open WebSockets.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            clients = []
            for start in range(0, sessions, 50):
                batch = range(start, min(sessions, start + 50))
                clients += await asyncio.gather(*(http.ws_connect(f"ws://{base}/ws")
                                                  for _ in batch))
                await emulator.wait_ready(len(clients))
            await emulator.ask_async("arrivals")
            headers = {"Content-Type": "application/merge-patch+json",
                       "Authorization": f"Bearer {admin.token}"}
            for n in range(patches):
                body = {"nodes": {"llm": {"settings": {"system_instruction": f"Persona {n}."}}}}
                start_s = time.perf_counter()
                async with http.patch(f"http://{base}/admin/spec", json=body,
                                      headers=headers) as response:
                    result = await response.json()
                round_trips.append(time.perf_counter() - start_s)
                arrivals = (await emulator.ask_async("arrivals"))["arrivals_ns"]
                statuses = {s["status"] for s in result["sessions"]}
                if response.status != 200 or statuses != {"applied"} or \
                        len(arrivals) != sessions:
                    raise SystemExit(f"patch {n} did not apply: {response.status} "
                                     f"{len(arrivals)} of {sessions} updates {statuses}")
                latencies.append(max(arrivals) / 1e9 - reloader.received_at)
                written.append(reloader.applier.written_at - reloader.received_at)
            await asyncio.gather(*(ws.close() for ws in clients))
        await site.stop()
        await server.drain(10)
        await runner.cleanup()
    return {"sessions": sessions, "patches": patches,
            "received_to_sent_ms": _summary(latencies),
            "received_to_written_ms": _summary(written),
            "round_trip_ms": _summary(round_trips)}


async def measure_replicas(patches: int) -> dict[str, Any]:
    """PATCH on replica A → `session.update` at the provider for a session on replica B."""
    import os
    import shutil
    import signal
    import socket
    import tempfile

    import aiohttp

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        raise SystemExit("the replicas row needs redis-server (apt-get install redis-server)")
    work = Path(tempfile.mkdtemp(prefix="flowspec-bench-"))
    redis_port = free_port()
    redis = await asyncio.create_subprocess_exec(
        redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(work), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    token = "bench-replicas-token"
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"} | {
        "FLOWSPEC_ADMIN_TOKEN": token}
    replicas: list[asyncio.subprocess.Process] = []
    latencies: list[float] = []
    try:
        with emulator_process() as emulator:
            spec = work / "bot.yaml"
            spec.write_text(SPEC.replace("type: openai.realtime\n", "type: openai.realtime\n"
                                         f"    base_url: ws://127.0.0.1:{emulator.port}/v1/"
                                         "realtime\n    api_key: bench\n", 1))
            ports = [free_port(), free_port()]
            for n, port in enumerate(ports):
                replicas.append(await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "flowspec.cli", "serve", str(spec), "--port",
                    str(port), "--store", f"redis://127.0.0.1:{redis_port}/0", "--no-watch",
                    cwd=ROOT, env=env | {"FLOWSPEC_STATE_DIR": str(work / f"state{n}")},
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))
            a, b = (f"127.0.0.1:{port}" for port in ports)
            async with aiohttp.ClientSession() as http:
                for base in (a, b):
                    for _ in range(600):
                        try:
                            async with http.get(f"http://{base}/healthz") as response:
                                if response.status == 200:
                                    break
                        except aiohttp.ClientConnectionError:
                            await asyncio.sleep(0.05)
                ws = await http.ws_connect(f"ws://{b}/ws")
                await emulator.wait_ready(1)
                await emulator.ask_async("arrivals")
                headers = {"Content-Type": "application/merge-patch+json",
                           "Authorization": f"Bearer {token}"}
                for n in range(patches):
                    body = {"nodes": {"llm": {"settings": {
                        "system_instruction": f"Replica persona {n}."}}}}
                    start = time.perf_counter()
                    async with http.patch(f"http://{a}/admin/spec", json=body,
                                          headers=headers) as response:
                        if response.status != 200:
                            raise SystemExit(f"patch {n}: {response.status} "
                                             f"{await response.text()}")
                    arrivals: list[int] = []
                    deadline = start + 10
                    while not arrivals:
                        if time.perf_counter() > deadline:
                            raise SystemExit(f"patch {n} never reached replica B's session")
                        arrivals = (await emulator.ask_async("arrivals"))["arrivals_ns"]
                        if not arrivals:
                            await asyncio.sleep(0.002)
                    latencies.append(arrivals[0] / 1e9 - start)
                await ws.close()
    finally:
        for process in replicas:
            process.send_signal(signal.SIGINT)
        for process in replicas:
            await asyncio.wait_for(process.wait(), 30)
        redis.terminate()
        await asyncio.wait_for(redis.wait(), 30)
        shutil.rmtree(work, ignore_errors=True)
    return {"replicas": 2, "patches": patches, "patch_to_other_replica_ms": _summary(latencies)}


def _summary(seconds: list[float]) -> dict[str, float]:
    values = sorted(s * 1000 for s in seconds)
    return {"median": statistics.median(values), "p90": values[int(0.9 * (len(values) - 1))],
            "min": values[0], "max": values[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patches", type=int, default=60, help="patches per row (≥ 50)")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 10, 100, 500],
                        help="live sessions per row")
    parser.add_argument("--replicas", action="store_true", help="also the row across two "
                        "replicas sharing a Redis store")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON line")
    args = parser.parse_args()
    rows = [asyncio.run(measure(n, args.patches)) for n in args.sessions]
    replicas = asyncio.run(measure_replicas(args.patches)) if args.replicas else None
    if args.json:
        print(json.dumps({"rows": rows, "replicas": replicas}))
        return
    print("| live sessions | patches | received → session.update at the provider, median "
          "(p90, max) | received → every update written by flowspec, median (p90) | PATCH "
          "round trip with provider confirmation, median (p90) |")
    print("|---|---|---|---|---|")
    for row in rows:
        sent, trip = row["received_to_sent_ms"], row["round_trip_ms"]
        wrote = row["received_to_written_ms"]
        print(f"| {row['sessions']} | {row['patches']} | {sent['median']:.2f} ms "
              f"({sent['p90']:.2f}, {sent['max']:.2f}) | {wrote['median']:.2f} ms "
              f"({wrote['p90']:.2f}) | {trip['median']:.2f} ms ({trip['p90']:.2f}) |")
    if replicas:
        across = replicas["patch_to_other_replica_ms"]
        print("\n| replicas | patches | PATCH on A → session.update for a session on B, "
              "median (p90, max) |\n|---|---|---|")
        print(f"| 2 (Redis store) | {replicas['patches']} | {across['median']:.2f} ms "
              f"({across['p90']:.2f}, {across['max']:.2f}) |")


if __name__ == "__main__":
    main()
