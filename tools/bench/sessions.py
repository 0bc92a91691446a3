"""Real voice sessions side by side: `flowspec serve`, Pipecat 1.14 and a bare relay (the floor).

    python tools/bench/sessions.py [--levels 1,25,50] [--reps 3] [--window 12]
                                   [--systems flowspec,floor,pipecat,pipecat-lean]

Three processes per trial: the server under test alone in its own (its CPU and RSS are what is
measured), one emulator process speaking the GA Realtime protocol (`_emulator_proc.py --stamp`,
audio paced at real time in 20 ms deltas, shared by every trial of the run), and this process,
whose callers are the load. The servers:

- `flowspec`: `flowspec serve` on a spec of `transport.websocket` → `openai.realtime` → back;
- `floor`: `_floor_relay.py`, no framework, the per-message work any such relay must do;
- `pipecat` / `pipecat-lean`: `_pipecat_server.py` in `.venv-peers/pipecat`, Pipecat's
  `OpenAIRealtimeLLMService` behind its WebSocket server transport with a raw-PCM serializer, its
  default worker or the lean one.

All are pointed at the same emulator with the same session settings (server VAD: threshold 0.5,
300 ms prefix, 500 ms silence). Every caller streams 20 ms PCM16 frames at 24 kHz in real time: an
utterance of speech-like audio, then silence, every `CYCLE_S` seconds, so server VAD commits a
turn, the model answers with a long spoken reply, and the next utterance barges in on it. Trials
run in turn (every system at one level, then the next level; the order of systems rotates each
rep), each in a fresh server process after a warm-up call.

Over the window (after every caller has had a whole cycle), per trial:
- server CPU (utime + stime from /proc) per relayed 20 ms of audio, both ways: audio the
  emulator received plus stamped audio that reached a caller, in 960-byte units;
- RSS per live session: the server's RSS with every caller live, minus its RSS after the
  warm-up call ended, over the number of sessions;
- per session, whether it kept real-time pace: >= 99 % of its audio reached the model, >= 99 % of
  the reply audio sent to it arrived (deltas sent in the last `BARGE_MS` before a barge-in, which
  the server rightly drops, are not counted) and its p99 delta → caller lag is under
  `LAG_LIMIT_MS`; sessions kept up per core = sessions that kept pace / server CPU;
- model audio delta → bytes on the caller's socket: the emulator stamps its send time into the
  audio, the caller reads its arrival time; one clock (CLOCK_MONOTONIC) for every process.
The last stdout line is the JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, pct  # noqa: E402
from _loadgen import (  # noqa: E402
    CYCLE_S,
    FRAME_MS,
    SILENCE,
    Talker,
    cpu_seconds,
    server_process,
    spec_file,
    speech_cycle,
    talk,
)

HERE = Path(__file__).resolve().parent
PIPECAT_PY = ROOT / ".venv-peers" / "pipecat" / "bin" / "python"
SYSTEMS = ("flowspec", "floor", "pipecat", "pipecat-lean")
MESSAGE_BYTES = len(SILENCE)  # 20 ms of PCM16 at 24 kHz
WARM_S = 4.0
SETTLE_S = CYCLE_S + 1.5
TAIL_S = 0.6
BARGE_MS = 200
LAG_LIMIT_MS = 100.0
DELIVERED_MIN = 0.99


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


# -- the processes ------------------------------------------------------------------------------


class Piped:
    """A child speaking one JSON line per command on stdin/stdout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    def line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.proc.args!r} exited with {self.proc.wait()}")
        return line

    def ask(self, command: str) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.line())

    async def ask_async(self, command: str) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self.ask, command)


def _stop(proc: subprocess.Popen[str], stdin: IO[str] | None) -> None:
    with contextlib.suppress(OSError, ValueError):
        if stdin is not None:
            stdin.write("quit\n")
            stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def piped(cmd: list[str], first: str) -> Iterator[tuple[Piped, str]]:
    """Start `cmd`; yields it and its first stdout line, which must start with `first`."""
    env = {**os.environ, "LOGURU_LEVEL": "WARNING"}  # Pipecat logs its banner at import
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)
    try:
        child = Piped(proc)
        line = child.line()
        if not line.startswith(first):
            raise RuntimeError(f"{cmd[1]} did not start: {line!r}")
        yield child, line.strip()
    finally:
        _stop(proc, proc.stdin)


@dataclass
class Server:
    """The server under test: its pid, and how callers reach `n` new sessions."""

    system: str
    pid: int
    url: str | None = None
    pipecat: Piped | None = None
    info: dict[str, Any] = field(default_factory=dict)

    async def open(self, n: int) -> list[str]:
        if self.pipecat is None:
            assert self.url is not None
            return [self.url] * n
        answer = await self.pipecat.ask_async(f"open {n}")
        self.info["audio_out_chunk_ms"] = answer.get("audio_out_chunk_ms")
        return [f"ws://127.0.0.1:{port}" for port in answer["ports"]]

    async def close(self) -> None:
        if self.pipecat is not None:
            await self.pipecat.ask_async("close")
        await asyncio.sleep(0.5)


@contextlib.contextmanager
def launch(system: str, model_url: str) -> Iterator[Server]:
    if system == "flowspec":
        with spec_file(model_url) as spec, server_process(spec) as (proc, port):
            yield Server(system, proc.pid, url=f"ws://127.0.0.1:{port}/ws")
    elif system == "floor":
        with piped([sys.executable, str(HERE / "_floor_relay.py"), f"{model_url}?model="
                    "gpt-realtime"], "PORT ") as (child, line):
            yield Server(system, child.pid, url=f"ws://127.0.0.1:{line.split()[1]}/ws")
    elif system.startswith("pipecat"):
        worker = "lean" if system.endswith("-lean") else "default"
        with piped([str(PIPECAT_PY), str(HERE / "_pipecat_server.py"), model_url, "--worker",
                    worker], "READY") as (child, _line):
            yield Server(system, child.pid, pipecat=child)
    else:
        raise ValueError(f"unknown system {system!r}")


# -- one trial ----------------------------------------------------------------------------------


async def callers(urls: list[str], cycle: list[bytes], start_at: float, stop_at: float,
                  ramp_s: float) -> list[Talker]:
    n = len(urls)
    talkers = [Talker(url, offset=i * len(cycle) // n) for i, url in enumerate(urls)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        tasks = []
        for i, talker in enumerate(talkers):
            tasks.append(asyncio.create_task(talk(
                http, talker, cycle, start_at + i / n * FRAME_MS / 1000, stop_at)))
            await asyncio.sleep(ramp_s / n)
        await asyncio.gather(*tasks)
    return talkers


async def trial(system: str, n: int, emulator: Piped, model_url: str, window_s: float,
                cycle: list[bytes]) -> dict[str, Any]:
    with launch(system, model_url) as server:
        urls = await server.open(1)
        now = time.perf_counter()
        warm = await callers(urls, cycle, now + 0.1, now + WARM_S, 0.0)
        if warm[0].error or not warm[0].stamps:
            raise RuntimeError(f"{system}: the warm-up call failed: {warm[0].error or 'no audio'}")
        await server.close()
        await emulator.ask_async("forget")
        rss_idle = rss_kib(server.pid)
        urls = await server.open(n)
        ramp_s = min(1.0, n * 0.02)
        t0 = time.perf_counter() + 0.2
        w0 = t0 + ramp_s + SETTLE_S
        stop_at = w0 + window_s + TAIL_S
        load = asyncio.create_task(callers(urls, cycle, t0, stop_at, ramp_s))
        await asyncio.sleep(max(0.0, w0 - time.perf_counter()))
        start = await emulator.ask_async("window-start")
        c0, e0, p0 = cpu_seconds(server.pid), cpu_seconds(emulator.pid), time.process_time()
        await asyncio.sleep(window_s)
        c1, e1, p1 = cpu_seconds(server.pid), cpu_seconds(emulator.pid), time.process_time()
        end = await emulator.ask_async("window-end")
        rss_live = rss_kib(server.pid)
        talkers = await load
        await server.close()
    await emulator.ask_async("forget")
    return {**evaluate(system, n, talkers, start["clock_ns"], end, c1 - c0, e1 - e0, p1 - p0,
                       rss_idle, rss_live), "server": server.info}


def evaluate(system: str, n: int, talkers: list[Talker], w0: int, end: dict[str, Any],
             server_cpu_s: float, emulator_cpu_s: float, callers_cpu_s: float, rss_idle: int,
             rss_live: int) -> dict[str, Any]:
    w1 = end["clock_ns"]
    wall = (w1 - w0) / 1e9
    at_emulator = {c["number"]: c for c in end["connections"]}
    sessions = []
    lags_all: list[int] = []
    appended = out_bytes = 0
    for talker in talkers:
        counts = Counter(connection for connection, _sent, _at in talker.stamps)
        number = counts.most_common(1)[0][0] if counts else None
        seen = {sent: at for connection, sent, at in talker.stamps if connection == number}
        emu = at_emulator.get(number or -1, {"appended_bytes": 0, "stamps": [],
                                              "speech_started": []})
        sent_in = sum(MESSAGE_BYTES for t in talker.sent if w0 <= t <= w1)
        inbound = emu["appended_bytes"] / sent_in if sent_in else 0.0
        appended += emu["appended_bytes"]
        barges = emu["speech_started"]
        expected = [(sent, size) for sent, size in emu["stamps"]
                    if sent <= w1 - TAIL_S * 1e9
                    and not any(0 <= b - sent <= BARGE_MS * 1e6 for b in barges)]
        delivered = sum(1 for sent, _size in expected if sent in seen)
        out_bytes += sum(size for sent, size in emu["stamps"] if sent in seen)
        lags = [seen[sent] - sent for sent, _size in emu["stamps"] if sent in seen]
        lags_all += lags
        lag = pct(lags)
        ratio = delivered / len(expected) if expected else 0.0
        p99_ms = lag.get("p99_us", float("inf")) / 1e3
        kept = (talker.error is None and inbound >= DELIVERED_MIN and ratio >= DELIVERED_MIN
                and p99_ms <= LAG_LIMIT_MS)
        sessions.append({"kept": kept, "inbound": inbound, "delivered": ratio,
                         "expected": len(expected), "lag_p99_ms": p99_ms,
                         "barge_ins": len(barges), "error": talker.error})
    messages = (appended + out_bytes) / MESSAGE_BYTES
    kept_up = sum(s["kept"] for s in sessions)
    cpu = server_cpu_s / wall
    lag = pct(lags_all)
    worst = min(sessions, key=lambda s: (s["kept"], s["delivered"], -s["lag_p99_ms"]))
    return {
        "system": system, "sessions": n, "window_s": wall,
        "server_cpu": cpu, "emulator_cpu": emulator_cpu_s / wall,
        "callers_cpu": callers_cpu_s / wall,
        "messages": messages, "messages_in": appended / MESSAGE_BYTES,
        "messages_out": out_bytes / MESSAGE_BYTES,
        "cpu_us_per_message": server_cpu_s * 1e6 / messages if messages else None,
        "rss_idle_kib": rss_idle, "rss_live_kib": rss_live,
        "rss_per_session_kib": (rss_live - rss_idle) / n,
        "kept_up": kept_up, "sessions_per_core": kept_up / cpu if cpu else None,
        "delta_to_caller_us": lag,
        "worst_session": worst,
        "errors": sorted({s["error"] for s in sessions if s["error"]})[:3],
        "load_1min": os.getloadavg()[0],
    }


# -- the run ------------------------------------------------------------------------------------


def available(systems: list[str]) -> tuple[list[str], dict[str, str]]:
    missing = {}
    if not PIPECAT_PY.exists():
        missing.update({s: f"not measured: {PIPECAT_PY.relative_to(ROOT)} does not exist"
                        for s in systems if s.startswith("pipecat")})
    return [s for s in systems if s not in missing], missing


async def run(systems: list[str], levels: list[int], reps: int, window_s: float) -> dict[str, Any]:
    cycle = speech_cycle()
    runnable, missing = available(systems)
    trials: dict[str, dict[str, list[dict[str, Any]]]] = {
        s: {str(n): [] for n in levels} for s in runnable}
    failures: list[str] = []
    with piped([sys.executable, str(HERE / "_emulator_proc.py"), "--stamp", "--chunk-ms",
                str(FRAME_MS)], "PORT ") as (emulator, line):
        model_url = f"ws://127.0.0.1:{line.split()[1]}/v1/realtime"
        for rep in range(reps):
            for n in levels:
                order = runnable[rep % len(runnable):] + runnable[:rep % len(runnable)]
                for system in order:
                    t = time.perf_counter()
                    try:
                        row = await trial(system, n, emulator, model_url, window_s, cycle)
                    except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                        failures.append(f"{system} at {n} (rep {rep + 1}): "
                                        f"{type(exc).__name__}: {exc}")
                        sys.stderr.write(f"  {failures[-1]}\n")
                        continue
                    trials[system][str(n)].append(row)
                    sys.stderr.write(
                        f"  rep {rep + 1} {system:<13} {n:>3} sessions: kept {row['kept_up']}, "
                        f"CPU {row['server_cpu']:.2f} ({_f(row['cpu_us_per_message'])} µs/msg), "
                        f"{row['rss_per_session_kib']:.0f} KiB/session, delta→caller p50/p99 "
                        f"{row['delta_to_caller_us'].get('p50_us', 0):.0f}/"
                        f"{row['delta_to_caller_us'].get('p99_us', 0):.0f} µs "
                        f"[{time.perf_counter() - t:.0f}s]\n")
    return {"systems": runnable, "missing": missing, "levels": levels, "reps": reps,
            "failures": failures, "trials": trials,
            "params": {"window_s": window_s, "cycle_s": CYCLE_S, "frame_ms": FRAME_MS,
                       "message_bytes": MESSAGE_BYTES, "settle_s": SETTLE_S, "warm_s": WARM_S,
                       "barge_ms": BARGE_MS, "lag_limit_ms": LAG_LIMIT_MS,
                       "delivered_min": DELIVERED_MIN, "sample_rate": 24000,
                       "pipecat_version": pipecat_version()}}


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def pipecat_version() -> str | None:
    if not PIPECAT_PY.exists():
        return None
    out = subprocess.run([str(PIPECAT_PY), "-c", "import importlib.metadata as m;"
                          "print(m.version('pipecat-ai'))"], capture_output=True, text=True)
    return out.stdout.strip() or None


def median_of(rows: list[dict[str, Any]], *path: str) -> float | None:
    values = []
    for row in rows:
        value: Any = row
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(value)
    return statistics.median(values) if values else None


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="1,25,50")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--window", type=float, default=12.0)
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    a = ap.parse_args()
    result = asyncio.run(run(a.systems.split(","), [int(x) for x in a.levels.split(",")],
                             a.reps, a.window))
    print(json.dumps(result))
