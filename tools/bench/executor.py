"""Executor benchmark: flowspec next to Pipecat 1.14, same shapes as ../shared/peers.

Shapes (see ../shared/peers/README.md): a source, K passthrough nodes and a counting sink; 960-byte
audio frames (20 ms of 24 kHz PCM16); hops = K + 1. These are idle chains of pass-through nodes:
they measure the executor's own cost per frame, not a call (`sessions.py` measures calls).
  a. throughput, K = 1, 5, 20, burst (no yield between pushes) and streamed (sleep(0) after each)
  b. latency, K = 5, frames ~1 ms apart, p50/p90/p99
  c. interruption, K = 5, 500 frames queued at the sink (which "plays" 20 ms each), at the head,
     and right after a burst; counts stale data frames delivered after the interrupt
  d. M = 100, 500, 1000 sessions x K = 5 x 50 frames/s for 5 s: kept up, CPU, lag, RSS
  e. start-up until the sink sees StartFrame; memory per idle session

Every measurement runs in a fresh child process, `--reps` times. When `.venv-peers/pipecat`
exists, Pipecat's own benchmark script (../shared/peers/pipecat_baseline.py) measures the same
shapes in the same run, interleaved: for each rep and each shape, flowspec's child and then
Pipecat's (both worker configurations), so both sides get the same number of reps under the same
conditions. Writes the executor section of RESULTS.md; the last stdout line is the JSON result
(every rep's figures).

    .venv/bin/python tools/bench/executor.py [--reps 3] [--no-pipecat] [--no-write]

Pipecat's side needs `python3 -m venv .venv-peers/pipecat && .venv-peers/pipecat/bin/pip install
pipecat-ai==1.14.0` (untracked).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    ROOT,
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

# What each flowspec measurement is compared with: Pipecat's script measures the same shape under
# its own names, for each of its two worker configurations.
PIPECAT_CFGS = ("lean", "default")


def plan() -> list[tuple[str, str | None, list[tuple[str, str, str | None]]]]:
    """(flowspec scenario, its argument, the Pipecat measurements of the same shape)."""
    out: list[tuple[str, str | None, list[tuple[str, str, str | None]]]] = []
    for mode in ("burst", "streamed"):
        out.append(("throughput", mode,
                    [("throughput", cfg, f"output:{mode}") for cfg in PIPECAT_CFGS]))
    for scenario in ("latency", "interruption", "startup"):
        out.append((scenario, None, [(scenario, cfg, None) for cfg in PIPECAT_CFGS]))
    for m in CONC_MS:
        # Pipecat's default worker falls far behind from M=100 on; at M=1000 it only adds time.
        cfgs = PIPECAT_CFGS if m != max(CONC_MS) else ("lean",)
        out.append(("concurrency", str(m), [("concurrency", cfg, str(m)) for cfg in cfgs]))
    return out


def _key(scenario: str, arg: str | None) -> str:
    if scenario == "throughput":
        return f"throughput_{(arg or '').split(':')[-1]}"
    if scenario == "concurrency":
        return f"concurrency_M{arg}"
    return scenario


def _pipecat_shape(scenario: str, result: Any) -> Any:
    # Pipecat's latency child reports its two frame classes; the output one is the same path.
    return result["output"] if scenario == "latency" else result


def measure(reps: int, with_pipecat: bool) -> dict[str, Any]:
    """Every measurement `reps` times in fresh processes, flowspec and Pipecat interleaved: for
    each rep and each shape, flowspec's child, then Pipecat's children of the same shape."""
    script = PEERS / "pipecat_baseline.py"
    pipecat = with_pipecat and PIPECAT_PY.exists() and script.exists()
    fs: dict[str, list[Any]] = {}
    pc: dict[str, dict[str, list[Any]]] = {cfg: {} for cfg in PIPECAT_CFGS}
    for rep in range(reps):
        sys.stderr.write(f"executor rep {rep + 1}/{reps}\n")
        for scenario, arg, peers in plan():
            cmd = [sys.executable, __file__, "--child", scenario] + (["--arg", arg] if arg else [])
            fs.setdefault(_key(scenario, arg), []).append(
                run_child(cmd, f"flowspec {scenario} {arg or ''}"))
            for p_scenario, cfg, p_arg in peers if pipecat else []:
                cmd = [str(PIPECAT_PY), str(script), "--child", p_scenario, "--cfg", cfg]
                cmd += ["--arg", p_arg] if p_arg else []
                result = run_child(cmd, f"pipecat {p_scenario} {cfg} {p_arg or ''}", timeout=900)
                pc[cfg].setdefault(_key(p_scenario, p_arg), []).append(
                    _pipecat_shape(p_scenario, result))
    return {"flowspec": fs, "pipecat": pc if pipecat else None,
            "pipecat_version": _pipecat_version() if pipecat else None}


def _pipecat_version() -> str | None:
    proc = subprocess.run([str(PIPECAT_PY), "-c", "import importlib.metadata as m;"
                           "print(m.version('pipecat-ai'))"], capture_output=True, text=True)
    return proc.stdout.strip() or None


def params() -> dict[str, Any]:
    return {"frame_bytes": len(PCM), "n_throughput": N_THROUGHPUT, "ks": list(KS), "k": K_FIXED,
            "latency_frames": LAT_FRAMES, "latency_gap_ms": LAT_GAP_S * 1e3,
            "queued": INT_QUEUED, "trials": INT_TRIALS, "ms": list(CONC_MS),
            "conc_seconds": CONC_SECONDS, "frame_ms": FRAME_S * 1e3, "startup_warm": STARTUP_WARM}


if __name__ == "__main__":
    from _render import render  # noqa: E402

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child")
    ap.add_argument("--arg")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-pipecat", action="store_true", help="flowspec only")
    ap.add_argument("--no-write", action="store_true", help="print, do not update RESULTS.md")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(_child(a.child, a.arg)))
        sys.exit(0)
    t_all = time.perf_counter()
    result = measure(a.reps, not a.no_pipecat)
    result.update({"reps": a.reps, "params": params(), "env": {
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "load_1min": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M"),
        "runtime_s": time.perf_counter() - t_all}})
    if not a.no_write:
        md = render(result)
        write_section("executor", md)
        sys.stderr.write("wrote tools/bench/RESULTS.md (executor section)\n")
        print(md)
    print(json.dumps(result))
