"""Hot reload latency: an admin PATCH received → the `session.update` arriving at the provider.

Serves a voice spec with the admin API, points its Realtime node at the in-process emulator (pace
0), opens N live browser sessions, then sends `--patches` merge patches that change
`system_instruction` (each one a live change). For each patch it measures, on one clock:

- received → sent: from the moment the reload pipeline has the patch (after HTTP parsing) to the
  moment the emulator receives the `session.update` (the last session's, with N sessions), so it
  covers validation, diff, plan, delivery and the socket write (target ≤ 5 ms median, DESIGN §11);
- the whole PATCH round trip, which also waits for every provider's `session.updated` echo.

Run: `.venv/bin/python tools/bench/reload.py [--patches 60] [--sessions 1 10] [--json]`.
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
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON line")
    args = parser.parse_args()
    rows = [asyncio.run(measure(n, args.patches)) for n in args.sessions]
    if args.json:
        print(json.dumps(rows))
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


if __name__ == "__main__":
    main()
