"""Executor benchmark: flowspec next to Pipecat 1.14, same shapes as ../shared/peers.

Shapes (see ../shared/peers/README.md): a source, K passthrough nodes and a counting sink; 960-byte
audio frames (20 ms of 24 kHz PCM16); hops = K + 1.
  a. throughput, K = 1, 5, 20, burst (no yield between pushes) and streamed (sleep(0) after each)
  b. latency, K = 5, frames ~1 ms apart, p50/p90/p99
  c. interruption, K = 5, 500 frames queued at the sink (which "plays" 20 ms each), at the head,
     and right after a burst; counts stale data frames delivered after the interrupt
  d. M = 100, 500, 1000 sessions x K = 5 x 50 frames/s for 5 s: kept up, CPU, lag, RSS
  e. start-up until the sink sees StartFrame; memory per idle session; import time

Every measurement runs in a fresh child process; the tables show the median over `--reps`. When
`.venv-peers/pipecat` exists, Pipecat's own benchmark script runs the same shapes in the same
invocation and each row gets a flowspec/Pipecat ratio; otherwise the ratios use the stored
baseline in ../shared/peers/pipecat_baseline.json. Writes the executor section of RESULTS.md.

    .venv/bin/python tools/bench/executor.py [--reps 3] [--pipecat-reps 1] [--no-pipecat]

Pipecat's side needs `python3 -m venv .venv-peers/pipecat && .venv-peers/pipecat/bin/pip install
pipecat-ai==1.14.0` (untracked). A full run takes about 5 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    ROOT,
    import_ms,
    median_tree,
    pct,
    rss_now_mib,
    rss_peak_mib,
    run_child,
    write_section,
)

PCM = b"\x00\x01" * 480  # 960 bytes: 20 ms of 24 kHz mono PCM16
N_THROUGHPUT = 20000
KS = (1, 5, 20)
K_FIXED = 5
LAT_FRAMES, LAT_WARMUP, LAT_GAP_S = 2000, 100, 0.001
INT_QUEUED, INT_TRIALS = 500, 8
CONC_MS = (100, 500, 1000)
CONC_SECONDS, FRAME_S = 5.0, 0.020
STARTUP_WARM = 20
if os.environ.get("PCB_SMOKE"):
    N_THROUGHPUT, LAT_FRAMES, LAT_WARMUP, INT_QUEUED, INT_TRIALS = 2000, 200, 10, 50, 2
    CONC_MS, CONC_SECONDS, STARTUP_WARM = (10, 20), 1.0, 3

PEERS = Path(os.environ.get("FLOWSPEC_PEERS", ROOT.parent / "shared" / "peers"))
PIPECAT_PY = ROOT / ".venv-peers" / "pipecat" / "bin" / "python"


# -- the flowspec side (child processes) -----------------------------------------------------


def _child(scenario: str, arg: str | None) -> Any:
    from flowspec.frames import AudioFrame, Frame, InterruptFrame, StartFrame
    from flowspec.runtime import Context, Executor
    from flowspec.runtime.session import Session
    from flowspec.testing import PassthroughNode, graph, make_registry

    class Sink:
        """Counts audio frames; optionally "plays" each for `play_s`, like an output transport."""

        def __init__(self, ctx: Context) -> None:
            self.count = 0
            self.target = 0
            self.play_s = 0.0
            self.arrivals: list[int] = []
            self.record = False
            self.done = asyncio.Event()
            self.t_started = 0
            self.t_interrupt = 0
            self.after_interrupt = 0

        async def start(self) -> None:
            return None

        async def handle(self, frame: Frame, port: str) -> None:
            if type(frame) is AudioFrame:
                self.count += 1
                if self.record:
                    self.arrivals.append(time.perf_counter_ns())
                if self.t_interrupt:
                    self.after_interrupt += 1
                if self.count == self.target:
                    self.done.set()
                if self.play_s:
                    await asyncio.sleep(self.play_s)
            elif type(frame) is InterruptFrame:
                self.t_interrupt = time.perf_counter_ns()
            elif type(frame) is StartFrame:
                self.t_started = time.perf_counter_ns()

        async def stop(self) -> None:
            return None

    class Counting(PassthroughNode):
        def __init__(self, ctx: Context) -> None:
            super().__init__(ctx)
            self.forwarded = 0

        async def handle(self, frame: Frame, port: str) -> None:
            await self.ctx.emit(frame)
            self.forwarded += 1

    class Gate(PassthroughNode):
        """A head node that can be held busy, so frames queue in front of it."""

        gate: asyncio.Event | None = None

        async def handle(self, frame: Frame, port: str) -> None:
            if self.gate is not None and type(frame) is AudioFrame:
                await self.gate.wait()
            await self.ctx.emit(frame)

    registry = make_registry()
    registry.register("bench.sink", Sink)
    registry.register("bench.counting", Counting)
    registry.register("bench.gate", Gate)
    executor = Executor(registry=registry)

    def chain(k: int, *, head: str = "test.passthrough", last: str = "test.passthrough",
              capacity: int = 128) -> Any:
        types = [head] + ["test.passthrough"] * (k - 2) + [last] if k > 1 else [last]
        nodes = {"src": "test.passthrough", **{f"p{i}": t for i, t in enumerate(types)},
                 "sink": "bench.sink"}
        return graph(nodes, [" -> ".join(nodes)], capacity=capacity, entry="src")

    def parts(session: Session) -> tuple[Any, Any]:
        src = session.node("src")
        assert isinstance(src, PassthroughNode)
        return src.ctx.emit, session.node("sink")

    async def wait_idle(interval: float = 0.02) -> float:
        c = time.process_time()
        for _ in range(200):
            c = time.process_time()
            await asyncio.sleep(interval)
            if time.process_time() - c < interval * 0.1:
                break
        return c

    async def throughput() -> dict[str, Any]:
        mode = arg
        out: dict[str, Any] = {}
        t = time.perf_counter_ns()
        frames = [AudioFrame(audio=PCM) for _ in range(N_THROUGHPUT)]
        out["frame_construct_us"] = (time.perf_counter_ns() - t) / N_THROUGHPUT / 1e3
        for k in KS:
            async with executor.session(chain(k)) as session:
                emit, sink = parts(session)
                sink.target = N_THROUGHPUT
                gc.collect()
                await wait_idle()
                c0, t0 = time.process_time(), time.perf_counter_ns()
                if mode == "burst":
                    for f in frames:
                        await emit(f)
                else:
                    for f in frames:
                        await emit(f)
                        await asyncio.sleep(0)
                await sink.done.wait()
                wall = (time.perf_counter_ns() - t0) / 1e9
                c_idle = await wait_idle()
            out[f"K{k}"] = {"hops": k + 1, "fps": N_THROUGHPUT / wall,
                            "us_per_frame": wall / N_THROUGHPUT * 1e6,
                            "us_per_frame_per_hop": wall / N_THROUGHPUT / (k + 1) * 1e6,
                            "cpu_us_per_frame": (c_idle - c0) / N_THROUGHPUT * 1e6}
        out["marginal_us_per_hop_K1_to_K20"] = (
            out["K20"]["us_per_frame"] - out["K1"]["us_per_frame"]) / 19
        return out

    async def latency() -> dict[str, Any]:
        async with executor.session(chain(K_FIXED)) as session:
            emit, sink = parts(session)
            sink.record = True
            await wait_idle()
            sent: list[int] = []
            total = LAT_WARMUP + LAT_FRAMES
            t_start = time.perf_counter()
            for _ in range(total):
                frame = AudioFrame(audio=PCM)
                sent.append(time.perf_counter_ns())
                await emit(frame)
                await asyncio.sleep(LAT_GAP_S)
            gap = (time.perf_counter() - t_start) / total
        lat = [a - s for a, s in zip(sink.arrivals, sent, strict=True)][LAT_WARMUP:]
        return {**pct(lat), "mean_gap_ms": gap * 1e3, "hops": K_FIXED + 1}

    async def interruption() -> dict[str, Any]:
        out: dict[str, Any] = {}
        # a. 500 frames queued at the sink, which plays each for 20 ms.
        g = chain(K_FIXED, last="bench.counting", capacity=1024)
        async with executor.session(g) as session:
            emit, sink = parts(session)
            last = session.node(f"p{K_FIXED - 1}")
            sink.play_s = FRAME_S
            seen, after, queued = [], [], []
            for _ in range(INT_TRIALS):
                sink.t_interrupt = sink.after_interrupt = 0
                last.forwarded = 0  # type: ignore[attr-defined]
                before = sink.count
                for _ in range(INT_QUEUED):
                    await emit(AudioFrame(audio=PCM))
                await asyncio.sleep(0.005)
                queued.append(INT_QUEUED - (sink.count - before))
                t0 = time.perf_counter_ns()
                await emit(InterruptFrame())
                seen.append(sink.t_interrupt - t0)
                await asyncio.sleep(0.06)
                after.append(sink.after_interrupt)
            session.request_cancel()
        out["queued_at_sink"] = {"observed_at_sink": pct(seen), "stale_after_max": max(after),
                                 "queued_when_interrupted_median": statistics.median(queued)}
        # b. 500 frames queued at the head: the first passthrough is busy.
        async with executor.session(chain(K_FIXED, head="bench.gate", capacity=1024)) as session:
            emit, sink = parts(session)
            head = session.node("p0")
            seen, after = [], []
            for _ in range(INT_TRIALS):
                head.gate = asyncio.Event()  # type: ignore[attr-defined]
                sink.t_interrupt = sink.after_interrupt = 0
                for _ in range(INT_QUEUED + 1):
                    await emit(AudioFrame(audio=PCM))
                t0 = time.perf_counter_ns()
                await emit(InterruptFrame())
                seen.append(sink.t_interrupt - t0)
                head.gate.set()  # type: ignore[attr-defined]
                head.gate = None  # type: ignore[attr-defined]
                await wait_idle(0.01)
                after.append(sink.after_interrupt)
        out["queued_at_head"] = {"observed_at_sink": pct(seen), "stale_after_max": max(after)}
        # c. Pipecat's burst_at_head shape: 500 frames pushed in a burst, then the interrupt.
        async with executor.session(chain(K_FIXED)) as session:
            emit, sink = parts(session)
            seen, after = [], []
            for _ in range(INT_TRIALS):
                await wait_idle(0.01)
                sink.t_interrupt = sink.after_interrupt = 0
                for _ in range(INT_QUEUED):
                    await emit(AudioFrame(audio=PCM))
                t0 = time.perf_counter_ns()
                await emit(InterruptFrame())
                seen.append(sink.t_interrupt - t0)
                await wait_idle(0.01)
                after.append(sink.after_interrupt)
        out["burst_at_head"] = {"observed_at_sink": pct(seen), "stale_after_max": max(after)}
        return out

    async def concurrency() -> dict[str, Any]:
        from contextlib import AsyncExitStack

        m = int(arg or 100)
        out: dict[str, Any] = {"M": m, "K": K_FIXED, "rss_after_import_mib": rss_now_mib()}

        async def run_senders(emitters: list[Any], seconds: float, make: Any) -> Any:
            n = len(emitters)
            t0 = time.perf_counter() + 0.05
            t_end = t0 + seconds
            dues: list[list[int]] = [[] for _ in range(n)]

            async def sender(i: int, emit: Any) -> None:
                phase, j = (i / n) * FRAME_S, 0
                while True:
                    due = t0 + phase + j * FRAME_S
                    if due >= t_end:
                        return
                    now = time.perf_counter()
                    if due > now:
                        await asyncio.sleep(due - now)
                    else:
                        await asyncio.sleep(0)
                    if time.perf_counter() >= t_end:
                        return
                    dues[i].append(int(due * 1e9))
                    await emit(make())
                    j += 1

            tasks = [asyncio.create_task(sender(i, e)) for i, e in enumerate(emitters)]
            return t0, t_end, tasks, dues

        async def noop(_frame: Any) -> None:
            return None

        t0, _t_end, tasks, _ = await run_senders([noop] * m, 1.0, lambda: None)
        await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
        c0 = time.process_time()
        await asyncio.gather(*tasks)
        out["harness_only_cpu_util"] = (time.process_time() - c0) / (time.perf_counter() - t0)
        gc.collect()

        async with AsyncExitStack() as stack:
            t = time.perf_counter()
            sessions = [await stack.enter_async_context(executor.session(chain(K_FIXED)))
                        for _ in range(m)]
            out["start_all_s"] = time.perf_counter() - t
            await wait_idle()
            out["rss_after_start_mib"] = rss_now_mib()
            out["rss_per_idle_session_kib"] = (
                (out["rss_after_start_mib"] - out["rss_after_import_mib"]) * 1024 / m)
            c0, w0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(1.0)
            out["idle_cpu_util"] = (time.process_time() - c0) / (time.perf_counter() - w0)
            pairs = [parts(s) for s in sessions]
            for _emit, sink in pairs:
                sink.record = True
            t0, t_end, tasks, dues = await run_senders(
                [emit for emit, _ in pairs], CONC_SECONDS, lambda: AudioFrame(audio=PCM))
            await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
            c0, w0 = time.process_time(), time.perf_counter()
            await asyncio.gather(*tasks)
            await asyncio.sleep(max(0.0, t_end + FRAME_S - time.perf_counter()))
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            window_end = int((t_end + FRAME_S) * 1e9)
            lags: list[int] = []
            in_window = 0
            for (_emit, sink), due in zip(pairs, dues, strict=True):
                for arrival, d in zip(sink.arrivals, due, strict=False):
                    if arrival <= window_end:
                        in_window += 1
                        lags.append(arrival - d)
            target = m * 50 * CONC_SECONDS
            out.update({"cpu_util": cpu / wall, "target_fps": m * 50,
                        "sent_fps": sum(map(len, dues)) / CONC_SECONDS,
                        "achieved_fps": in_window / CONC_SECONDS,
                        "achieved_ratio": in_window / target,
                        "kept_up": in_window / target >= 0.99,
                        "e2e_lag_vs_schedule": pct(lags), "rss_peak_mib": rss_peak_mib()})
            for s in sessions:
                s.request_cancel()
            t = time.perf_counter()
        out["cancel_all_s"] = time.perf_counter() - t
        out["tasks_left"] = len(asyncio.all_tasks()) - 1
        return out

    async def startup() -> dict[str, Any]:
        async def one() -> tuple[float, float]:
            t0 = time.perf_counter_ns()
            session = executor.session(chain(K_FIXED))
            await session.start()
            sink = session.node("sink")
            start_ms = (sink.t_started - t0) / 1e6  # type: ignore[attr-defined]
            t1 = time.perf_counter_ns()
            await session.end()
            return start_ms, (time.perf_counter_ns() - t1) / 1e6

        out: dict[str, Any] = {"K": K_FIXED}
        out["cold_start_ms"], out["cold_stop_ms"] = await one()
        runs = [await one() for _ in range(STARTUP_WARM)]
        out["warm_start_ms"] = statistics.median(r[0] for r in runs)
        out["warm_start_ms_min"] = min(r[0] for r in runs)
        out["warm_stop_ms"] = statistics.median(r[1] for r in runs)
        # Exact bytes per idle session (Python allocations), next to the RSS estimate above.
        compiled = chain(K_FIXED)
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        sessions: list[Session] = []
        for _ in range(200):
            s = executor.session(compiled)
            await s.start()
            sessions.append(s)
        out["tracemalloc_kib_per_idle_session"] = (
            (tracemalloc.get_traced_memory()[0] - base) / 200 / 1024)
        tracemalloc.stop()
        for s in sessions:
            await s.end()
        return out

    scenario_fn = {"throughput": throughput, "latency": latency, "interruption": interruption,
                   "concurrency": concurrency, "startup": startup}[scenario]
    return asyncio.run(scenario_fn())


# -- the driver -----------------------------------------------------------------------------


def flowspec_results(reps: int) -> dict[str, Any]:
    plan = [("throughput", "burst"), ("throughput", "streamed"), ("latency", None),
            ("interruption", None), ("startup", None)] + [("concurrency", str(m)) for m in CONC_MS]
    raw: dict[str, list[Any]] = {}
    for rep in range(reps):
        sys.stderr.write(f"flowspec rep {rep + 1}/{reps}\n")
        for scenario, arg in plan:
            cmd = [sys.executable, __file__, "--child", scenario] + (["--arg", arg] if arg else [])
            raw.setdefault(f"{scenario}|{arg}", []).append(
                run_child(cmd, f"flowspec {scenario} {arg or ''}"))
    med = {k: median_tree(v) for k, v in raw.items()}
    return {
        "throughput": {"burst": med["throughput|burst"], "streamed": med["throughput|streamed"]},
        "latency": med["latency|None"],
        "interruption": med["interruption|None"],
        "startup": med["startup|None"],
        "concurrency": {f"M{m}": med[f"concurrency|{m}"] for m in CONC_MS},
        "import_ms": import_ms(sys.executable, "import flowspec.runtime, flowspec.frames"),
    }


def pipecat_results(reps: int) -> dict[str, Any] | None:
    script = PEERS / "pipecat_baseline.py"
    if not (PIPECAT_PY.exists() and script.exists()):
        return None
    plan = [("throughput", cfg, mode) for cfg in ("lean", "default")
            for mode in ("output:burst", "output:streamed")]
    plan += [(s, cfg, None) for cfg in ("lean", "default")
             for s in ("latency", "interruption", "startup")]
    plan += [("concurrency", "lean", str(m)) for m in CONC_MS]
    plan += [("concurrency", "default", str(m)) for m in CONC_MS[:2]]
    raw: dict[str, list[Any]] = {}
    for rep in range(reps):
        sys.stderr.write(f"pipecat rep {rep + 1}/{reps}\n")
        for scenario, cfg, arg in plan:
            cmd = [str(PIPECAT_PY), str(script), "--child", scenario, "--cfg", cfg]
            cmd += ["--arg", arg] if arg else []
            raw.setdefault(f"{scenario}|{cfg}|{arg}", []).append(
                run_child(cmd, f"pipecat {scenario} {cfg} {arg or ''}", timeout=900))
    med = {k: median_tree(v) for k, v in raw.items()}
    out: dict[str, Any] = {"source": f"measured now ({reps} rep)", "import_ms": import_ms(
        str(PIPECAT_PY), "import pipecat.pipeline.pipeline, pipecat.pipeline.worker, "
        "pipecat.workers.runner, pipecat.frames.frames")}
    for cfg in ("lean", "default"):
        out[cfg] = {
            "throughput": {mode.split(":")[1]: med[f"throughput|{cfg}|{mode}"]
                           for mode in ("output:burst", "output:streamed")},
            "latency": med[f"latency|{cfg}|None"]["output"],
            "interruption": med[f"interruption|{cfg}|None"],
            "startup": med[f"startup|{cfg}|None"],
            "concurrency": {f"M{m}": med[k] for m in CONC_MS
                            if (k := f"concurrency|{cfg}|{m}") in med},
        }
    return out


def stored_pipecat() -> dict[str, Any] | None:
    path = PEERS / "pipecat_baseline.json"
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    out: dict[str, Any] = {"source": "stored baseline (pipecat_baseline.json, 3 reps)",
                           "import_ms": stored["import_ms"]["pipeline+worker+runner+frames"]}
    for cfg in ("lean", "default"):
        r = stored["results"][cfg]
        out[cfg] = {
            "throughput": {"burst": r["throughput"]["output_burst"],
                           "streamed": r["throughput"]["output_streamed"]},
            "latency": r["latency_K5"]["output"],
            "interruption": r["interruption_K5"],
            "startup": r["startup_K5"],
            "concurrency": r["concurrency_K5"],
        }
    return out


if __name__ == "__main__":
    from _render import render  # noqa: E402

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child")
    ap.add_argument("--arg")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pipecat-reps", type=int, default=1)
    ap.add_argument("--no-pipecat", action="store_true", help="use the stored Pipecat baseline")
    ap.add_argument("--no-write", action="store_true", help="print, do not update RESULTS.md")
    ap.add_argument("--render-json", help="re-render a saved result line (the last stdout line)")
    a = ap.parse_args()
    if a.render_json:
        saved = json.loads(Path(a.render_json).read_text().strip().splitlines()[-1])
        write_section("executor", render(saved["flowspec"], saved["pipecat"], saved["env"]))
        sys.exit(0)
    if a.child:
        print(json.dumps(_child(a.child, a.arg)))
        sys.exit(0)
    t_all = time.perf_counter()
    fs = flowspec_results(a.reps)
    pc = None if a.no_pipecat else pipecat_results(a.pipecat_reps)
    pc = pc or stored_pipecat()
    env = {"python": platform.python_version(), "cpus": os.cpu_count(),
           "load_1min": os.getloadavg()[0], "reps": a.reps,
           "date": time.strftime("%Y-%m-%d %H:%M"), "runtime_s": time.perf_counter() - t_all}
    md = render(fs, pc, env)
    print(md)
    if not a.no_write:
        write_section("executor", md)
        sys.stderr.write("wrote tools/bench/RESULTS.md (executor section)\n")
    print(json.dumps({"flowspec": fs, "pipecat": pc, "env": env}))
