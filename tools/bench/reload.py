"""Hot reload latency: an admin PATCH received → the `session.update` arriving at the provider.

Serves a voice spec with the admin API, points its Realtime node at the in-process emulator (pace
0), opens N live browser sessions, then sends `--patches` merge patches that change
`system_instruction` (each one a live change). For each patch it measures, on one clock:

- received → sent: from the moment the reload pipeline has the patch (after HTTP parsing) to the
  moment the emulator receives the `session.update` (the last session's, with N sessions), so it
  covers validation, diff, plan, delivery and the socket write (target ≤ 5 ms median, DESIGN §11);
- the whole PATCH round trip, which also waits for every provider's `session.updated` echo.

`--replicas` adds the row across machines: two `flowspec serve` processes sharing one Redis store
(a `redis-server` started on a free loopback port), a live session on replica B, and each PATCH
sent to replica A; measured on this process's clock from sending the PATCH to the emulator
receiving B's `session.update` (target ≤ 20 ms median).

Run: `.venv/bin/python tools/bench/reload.py [--patches 60] [--sessions 1 10] [--replicas]
[--json]`.
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

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

SPEC = (ROOT / "specs" / "voice-assistant.yaml").read_text()


async def measure(sessions: int, patches: int) -> dict[str, Any]:
    import aiohttp
    from aiohttp import web

    from flowspec.emulator import Emulator
    from flowspec.emulator.records import ConnectionRecord
    from flowspec.server.admin import attach
    from flowspec.server.app import Server
    from flowspec.server.offline import emulated_nodes, point_at
    from flowspec.spec.compile import compile_text
    from flowspec.spec.compiled import CompiledGraph

    graph = compile_text(SPEC, "voice-assistant.yaml", {}).raise_for_errors()
    async with Emulator.start(pace=0, keep_records=True) as emulator:
        def pointed(g: CompiledGraph) -> CompiledGraph:
            return point_at(g, emulated_nodes(g, {}), emulator.http_base_url,
                            emulator.ws_base_url)

        server = Server([pointed(graph)])
        admin = attach(server, [(graph, SPEC)], pointed, env={})
        reloader = admin.reloaders[graph.name]
        runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"127.0.0.1:{runner.addresses[0][1]}"
        arrivals: list[float] = []

        def stamp(record: ConnectionRecord) -> None:
            note = record.note_received

            def timed(text: str) -> None:
                if '"session.update"' in text:
                    arrivals.append(time.perf_counter())
                note(text)

            record.note_received = timed  # type: ignore[method-assign]

        latencies: list[float] = []
        round_trips: list[float] = []
        async with aiohttp.ClientSession() as http:
            clients = []
            for index in range(sessions):
                clients.append(await http.ws_connect(f"ws://{base}/ws"))
                record = await emulator.wait_connection("realtime", index=index)
                await record.wait_sent("session.updated")
                stamp(record)
            headers = {"Content-Type": "application/merge-patch+json",
                       "Authorization": f"Bearer {admin.token}"}
            for n in range(patches):
                arrivals.clear()
                body = {"nodes": {"llm": {"settings": {"system_instruction": f"Persona {n}."}}}}
                start = time.perf_counter()
                async with http.patch(f"http://{base}/admin/spec", json=body,
                                      headers=headers) as response:
                    result = await response.json()
                round_trips.append(time.perf_counter() - start)
                statuses = {s["status"] for s in result["sessions"]}
                if response.status != 200 or statuses != {"applied"} or \
                        len(arrivals) != sessions:
                    raise SystemExit(f"patch {n} did not apply: {response.status} {result}")
                latencies.append(max(arrivals) - reloader.received_at)
            for ws in clients:
                await ws.close()
        await site.stop()
        await server.drain(5)
        await runner.cleanup()
    return {"sessions": sessions, "patches": patches,
            "received_to_sent_ms": _summary(latencies),
            "round_trip_ms": _summary(round_trips)}


async def measure_replicas(patches: int) -> dict[str, Any]:
    """PATCH on replica A → `session.update` at the provider for a session on replica B."""
    import os
    import shutil
    import signal
    import socket
    import tempfile

    import aiohttp

    from flowspec.emulator import Emulator
    from flowspec.emulator.records import ConnectionRecord

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
        async with Emulator.start(pace=0, keep_records=True) as emulator:
            spec = work / "bot.yaml"
            spec.write_text(SPEC.replace("type: openai.realtime\n", "type: openai.realtime\n"
                                         f"    base_url: {emulator.ws_base_url}/realtime\n"
                                         "    api_key: bench\n", 1))
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
                arrivals: list[float] = []
                arrived = asyncio.Event()
                ws = await http.ws_connect(f"ws://{b}/ws")
                record: ConnectionRecord = await emulator.wait_connection("realtime")
                await record.wait_sent("session.updated")
                note = record.note_received

                def timed(text: str) -> None:
                    if '"session.update"' in text:
                        arrivals.append(time.perf_counter())
                        arrived.set()
                    note(text)

                record.note_received = timed  # type: ignore[method-assign]
                headers = {"Content-Type": "application/merge-patch+json",
                           "Authorization": f"Bearer {token}"}
                for n in range(patches):
                    arrivals.clear()
                    arrived.clear()
                    body = {"nodes": {"llm": {"settings": {
                        "system_instruction": f"Replica persona {n}."}}}}
                    start = time.perf_counter()
                    async with http.patch(f"http://{a}/admin/spec", json=body,
                                          headers=headers) as response:
                        if response.status != 200:
                            raise SystemExit(f"patch {n}: {response.status} "
                                             f"{await response.text()}")
                    async with asyncio.timeout(10):
                        await arrived.wait()
                    latencies.append(arrivals[0] - start)
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
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 10],
                        help="live sessions per row")
    parser.add_argument("--replicas", action="store_true", help="also the row across two "
                        "replicas sharing a Redis store")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON line")
    args = parser.parse_args()
    rows = [asyncio.run(measure(n, args.patches)) for n in args.sessions]
    replicas = asyncio.run(measure_replicas(args.patches)) if args.replicas else None
    if args.json:
        print(json.dumps(rows + ([replicas] if replicas else [])))
        return
    print("| live sessions | patches | received → session.update at the provider, median "
          "(p90, max) | PATCH round trip with provider confirmation, median (p90) | target |")
    print("|---|---|---|---|---|")
    for row in rows:
        sent, trip = row["received_to_sent_ms"], row["round_trip_ms"]
        verdict = "met" if sent["median"] <= 5.0 else "missed"
        print(f"| {row['sessions']} | {row['patches']} | {sent['median']:.2f} ms "
              f"({sent['p90']:.2f}, {sent['max']:.2f}) | {trip['median']:.2f} ms "
              f"({trip['p90']:.2f}) | ≤ 5 ms median: {verdict} |")
    if replicas:
        across = replicas["patch_to_other_replica_ms"]
        verdict = "met" if across["median"] <= 20.0 else "missed"
        print("\n| replicas | patches | PATCH on A → session.update for a session on B, "
              "median (p90, max) | target |\n|---|---|---|---|")
        print(f"| 2 (Redis store) | {replicas['patches']} | {across['median']:.2f} ms "
              f"({across['p90']:.2f}, {across['max']:.2f}) | ≤ 20 ms median: {verdict} |")


if __name__ == "__main__":
    main()
