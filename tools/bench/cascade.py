"""Time flowspec adds inside a cascaded voice bot (transcribe → Responses → speech), side by side
with Pipecat 1.14's cascade on the same turns.

    .venv/bin/python tools/bench/cascade.py [--reps 3] [--turns 200] [--warmup 10] [--json]
                                            [--pipecat | --no-pipecat] [--worker lean|default]

Each rep runs flowspec's side, then Pipecat's (A B A B ...), each in a fresh process against a
fresh `flowspec emulate --pace 0` in a process of its own (so the emulator's CPU stays out of
the measured event loop), with the same script (the reply `Sure thing. The forecast is mild ...`)
and the same turns. Both sides run every rep; a side that fails is reported with its error, and
nothing is run again because it missed. Side by side is the default when Pipecat's venv
(`.venv-peers/pipecat`) exists; `--pipecat` requires it (its absence is then the reported
reason), `--no-pipecat` runs flowspec alone.

flowspec's side (`--side flowspec PORT`, this file) is one session of `openai.transcribe` →
`openai.responses` over its WebSocket → `openai.speech` in this process, with an in-process
caller in place of the transport. Pipecat's is `_pipecat_cascade.py` in Pipecat's venv
(`OpenAIRealtimeSTTService` → `OpenAIResponsesLLMService` → `OpenAITTSService`; its docstring says
how it is driven and configured). Each turn appends 300 ms of audio in 20 ms frames and commits
(manual turns on both sides, so no VAD timing enters). The first `--warmup` turns are left out.
Per turn, at the network seams of each side (`_cascade_common.py` has the stamps):

- final transcript → Responses request: from the transcription socket handing over the
  `…input_audio_transcription.completed` event to the `response.create` having been written
  to the Responses socket (and, the framework's own part, to the moment it is handed to the
  socket: the write is one `send` system call, which on a loaded or sandboxed machine alone can
  take milliseconds);
- sentence boundary → speech request: from the Responses socket handing over the text delta
  that completes the reply's first sentence (the first delta a speech stage can act on) to the
  speech request's headers being written (aiohttp's trace hook here, httpcore's `trace`
  extension in Pipecat's httpx client); the time to the request being handed to the HTTP client
  is shown too;
- the time added per turn: the two hops above together, turn by turn;
- the whole turn: the commit written to the transcription socket → the last speech audio at
  the caller (emulator included);
- CPU per turn: `time.process_time()` of the side's process over the measured turns.

Each hop reports p50 and p99 (target ≤ 0.5 ms p99 for each of flowspec's two hops, from the issue
that asked for the cascade); flowspec's added time and CPU are also given as ratios to
Pipecat's, rep by rep. A hop a side could not be made to produce is "not measured", with the
reason its run found. Stamps are `time.perf_counter()`. With `--json` the last stdout line is the
JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from _cascade_common import (  # noqa: E402
    COMPLETED,
    FRAME_BYTES,
    HOPS,
    JUDGED,
    RATE,
    SCRIPT,
    SYSTEM_INSTRUCTION,
    TARGET_MS,
    TRANSCRIBE_MODEL,
    TURN_AUDIO,
    TURN_TIMEOUT_S,
    Stamps,
    is_create,
    result,
    turn_chunks,
)

from flowspec.frames import (  # noqa: E402
    AudioFrame,
    CommitInputFrame,
    Frame,
    ResponseEndedFrame,
    StartFrame,
)
from flowspec.nodes.openai_realtime.connection import WireSocket as RealtimeSocket  # noqa: E402
from flowspec.nodes.openai_realtime.connection import aiohttp_connect  # noqa: E402
from flowspec.nodes.openai_responses.node import ResponsesNode  # noqa: E402
from flowspec.nodes.openai_responses.ws import WireSocket, aiohttp_connector  # noqa: E402
from flowspec.nodes.openai_speech.node import SpeechNode  # noqa: E402
from flowspec.nodes.openai_transcribe.node import TranscribeNode  # noqa: E402
from flowspec.runtime.executor import Executor  # noqa: E402
from flowspec.runtime.node import Context  # noqa: E402
from flowspec.runtime.registry import DEFAULT_REGISTRY, Registry  # noqa: E402
from flowspec.spec.compile import compile_text  # noqa: E402

PIPECAT_PY = ROOT / ".venv-peers" / "pipecat" / "bin" / "python"
SIDES = ("flowspec", "pipecat")
SPEC = """
flowspec: 1
name: cascade-bench
nodes:
  caller:
    type: transport.websocket
    audio: {{encoding: pcm16, sample_rate: {rate}}}
  stt:
    type: openai.transcribe
    base_url: {ws}/realtime
    api_key: bench
    settings: {{model: {model}, turn_detection: false}}
  llm:
    type: openai.responses
    api_key: bench
    base_url: {http}
    ws_url: {ws}/responses
    settings: {{system_instruction: {instruction}}}
  tts:
    type: openai.speech
    base_url: {http}
    api_key: bench
edges:
  - caller -> stt -> llm -> tts -> caller
"""


class TranscribeSocket:
    """The transcribe node's socket, stamping the commit written and the final transcript
    handed over."""

    def __init__(self, inner: RealtimeSocket, stamps: Stamps) -> None:
        self._inner = inner
        self._stamps = stamps

    async def send(self, event: Mapping[str, Any]) -> None:
        await self._inner.send(event)
        if event.get("type") == "input_audio_buffer.commit":
            self._stamps.commits.append(time.perf_counter())

    async def receive(self) -> dict[str, Any] | None:
        event = await self._inner.receive()
        if event is not None and event.get("type") == COMPLETED:
            self._stamps.finals.append(time.perf_counter())
        return event

    async def close(self) -> None:
        await self._inner.close()


class ResponsesSocket:
    """The Responses node's socket: stamps `response.create` handed over and written, and
    the reply's text deltas as they come off it."""

    def __init__(self, inner: WireSocket, stamps: Stamps) -> None:
        self._inner = inner
        self._stamps = stamps

    async def send_text(self, text: str) -> None:
        create = is_create(text)
        if create:
            self._stamps.handed.append(time.perf_counter())
        await self._inner.send_text(text)
        if create:
            self._stamps.created()

    async def receive_text(self) -> str:
        text = await self._inner.receive_text()
        self._stamps.received(text)
        return text

    async def close(self) -> None:
        await self._inner.close()


class Caller:
    """The transport: feeds each turn's audio, stamps the speech audio it is given and says
    when a reply has been spoken."""

    boundary = True

    def __init__(self, ctx: Context, stamps: Stamps) -> None:
        self.ctx = ctx
        self.stamps = stamps
        self.ended = asyncio.Event()
        self._last: float | None = None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def handle(self, frame: Frame, port: str) -> None:
        if isinstance(frame, AudioFrame):
            self._last = time.perf_counter()
        elif isinstance(frame, ResponseEndedFrame):
            if self._last is not None:
                self.stamps.last_audio.append(self._last)
                self._last = None
            self.ended.set()
        elif isinstance(frame, StartFrame):
            return

    async def turn(self) -> None:
        self.ended.clear()
        for chunk in turn_chunks():
            await self.ctx.emit(AudioFrame(audio=chunk))
        await self.ctx.emit(CommitInputFrame())
        async with asyncio.timeout(TURN_TIMEOUT_S):
            await self.ended.wait()


@contextlib.contextmanager
def emulator() -> Iterator[int]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as script:
        script.write(SCRIPT)
        script.flush()
        proc = subprocess.Popen([sys.executable, "-m", "flowspec.cli", "emulate", "--pace", "0",
                                 "--script", script.name], stdout=subprocess.PIPE, text=True,
                                cwd=ROOT)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if found is None:
                raise RuntimeError(f"the emulator did not start: {line!r}")
            yield int(found.group(1))
        finally:
            proc.terminate()
            proc.wait()


@contextlib.asynccontextmanager
async def cascade(port: int, stamps: Stamps) -> AsyncIterator[Caller]:
    base = f"127.0.0.1:{port}/v1"
    graph = compile_text(SPEC.format(ws=f"ws://{base}", http=f"http://{base}", rate=RATE,
                                     model=TRANSCRIBE_MODEL, instruction=SYSTEM_INSTRUCTION),
                         env={}).raise_for_errors()

    async def transcribe_connect(url: str, headers: Mapping[str, str],
                                 node_id: str) -> RealtimeSocket:
        return TranscribeSocket(await aiohttp_connect(url, headers, node_id), stamps)

    responses_connect = aiohttp_connector("llm")

    async def connect(url: str, headers: Mapping[str, str]) -> WireSocket:
        return ResponsesSocket(await responses_connect(url, headers), stamps)

    async def started(_session: Any, _ctx: Any, _params: Any) -> None:
        stamps.speech_starts.append(time.perf_counter())

    async def sent(_session: Any, _ctx: Any, _params: Any) -> None:
        stamps.speech_sent.append(time.perf_counter())

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(started)
    trace.on_request_headers_sent.append(sent)
    async with aiohttp.ClientSession(trace_configs=[trace]) as http:
        registry = Registry(parent=DEFAULT_REGISTRY)
        registry.register("transport.websocket", partial(Caller, stamps=stamps))
        registry.register("openai.transcribe", partial(TranscribeNode,
                                                       connect=transcribe_connect))
        registry.register("openai.responses", partial(ResponsesNode, connect=connect))
        registry.register("openai.speech", partial(SpeechNode, session=http))
        async with Executor(registry=registry).session(graph) as session:
            node = session.node("stt")
            assert isinstance(node, TranscribeNode)
            async with asyncio.timeout(TURN_TIMEOUT_S):
                await node.ready.wait()
            caller = session.node("caller")
            assert isinstance(caller, Caller)
            yield caller


async def measure(port: int, turns: int, warmup: int) -> dict[str, Any]:
    """flowspec's side against the emulator at `port`."""
    stamps = Stamps()
    async with cascade(port, stamps) as caller:
        for _ in range(warmup):
            await caller.turn()
        cpu = time.process_time()
        for _ in range(turns):
            await caller.turn()
        cpu = time.process_time() - cpu
    return result("flowspec", stamps, turns, warmup, cpu)


# -- side by side ---------------------------------------------------------------------------------


def side_command(side: str, port: int, a: argparse.Namespace) -> list[str]:
    counts = ["--turns", str(a.turns), "--warmup", str(a.warmup)]
    if side == "flowspec":
        return [sys.executable, str(Path(__file__).resolve()), "--side", "flowspec", str(port),
                *counts]
    return [str(PIPECAT_PY), str(HERE / "_pipecat_cascade.py"), str(port), *counts,
            "--worker", a.worker]


def run_side(side: str, a: argparse.Namespace) -> dict[str, Any]:
    """One run of one side in a fresh process, against a fresh emulator."""
    with emulator() as port:
        proc = subprocess.run(side_command(side, port, a), capture_output=True, text=True,
                              cwd=ROOT, timeout=max(600.0, (a.turns + a.warmup) * 3.0))
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{side} exited {proc.returncode}: {proc.stderr.strip()[-1500:]}")
    out: dict[str, Any] = json.loads(lines[-1])
    return out


def pipecat_reason(a: argparse.Namespace) -> str | None:
    """Why Pipecat's side is not run, or None when it is."""
    if a.no_pipecat:
        return "not measured (--no-pipecat)"
    if not PIPECAT_PY.exists():
        return f"not measured: {PIPECAT_PY.relative_to(ROOT)} does not exist"
    return None


def side_by_side(a: argparse.Namespace,
                 run: Callable[[str, argparse.Namespace], dict[str, Any]] = run_side,
                 ) -> dict[str, Any]:
    """Every side `a.reps` times, interleaved; a failed run is recorded, never run again."""
    skipped = pipecat_reason(a)
    sides = [s for s in SIDES if s == "flowspec" or skipped is None]
    # A failed run keeps its place (None), so that rep i of one side meets rep i of the other.
    runs: dict[str, list[dict[str, Any] | None]] = {s: [] for s in sides}
    errors: dict[str, list[str]] = {s: [] for s in sides}
    order: list[str] = []
    for rep in range(a.reps):
        for side in sides:
            order.append(side)
            t = time.perf_counter()
            try:
                runs[side].append(run(side, a))
            except Exception as exc:  # noqa: BLE001 - a failed run is reported, not retried
                runs[side].append(None)
                errors[side].append(f"rep {rep + 1}: {type(exc).__name__}: {exc}")
            sys.stderr.write(f"  cascade {side} rep {rep + 1:<32} "
                             f"{time.perf_counter() - t:5.1f}s\n")
    versions = {run_["params"].get("pipecat_version") for run_ in runs.get("pipecat", []) if run_}
    return {"reps": a.reps, "turns": a.turns, "warmup": a.warmup, "order": order,
            "runs": runs, "errors": {s: e for s, e in errors.items() if e},
            "skipped": {"pipecat": skipped} if skipped else {},
            "params": {"turn_ms": len(TURN_AUDIO) * 1000 // (RATE * 2),
                       "frame_ms": FRAME_BYTES * 1000 // (RATE * 2), "worker": a.worker,
                       "pipecat_version": next(iter(versions - {None}), None)}}


# -- the text report ------------------------------------------------------------------------------


def _cell(values: list[float]) -> str:
    if not values:
        return "–"
    mid = f"{statistics.median(values):.3f}"
    return mid if len(values) == 1 else f"{mid} ({min(values):.3f}–{max(values):.3f})"


def _at(runs: list[dict[str, Any] | None], *path: str) -> list[float | None]:
    """The value at `path` in each rep's run, None where the run failed or lacks it."""
    out: list[float | None] = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        out.append(float(value) if isinstance(value, int | float) else None)
    return out


def _present(values: list[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def ratios(out: dict[str, Any], *path: str) -> list[float]:
    """flowspec / Pipecat at `path`, rep by rep, over the reps both sides measured."""
    fs = _at(out["runs"].get("flowspec", []), *path)
    pc = _at(out["runs"].get("pipecat", []), *path)
    return [a / b for a, b in zip(fs, pc, strict=False) if a is not None and b]


def render(out: dict[str, Any]) -> str:
    runs = out["runs"]
    width = max(len(title) for _key, title in HOPS) + 2
    lines = [f"cascade: {out['reps']} reps × {out['turns']} turns per side, interleaved; "
             f"ms, median (min–max) over reps; target ≤ {TARGET_MS} ms p99 on "
             + " and ".join(dict(HOPS)[k] for k in JUDGED),
             f"{'hop':<{width}} {'side':<9} {'p50':>22} {'p99':>22}"]
    for key, title in HOPS:
        for side in SIDES:
            if side not in runs:
                continue
            finished = [r for r in runs[side] if r]
            missing = [r["not_measured"][key] for r in finished if key in r["not_measured"]]
            p50 = _present(_at(runs[side], "hops", key, "p50_ms"))
            p99 = _present(_at(runs[side], "hops", key, "p99_ms"))
            mark = ""
            if key in JUDGED and side == "flowspec" and p99:
                mark = "  ok" if statistics.median(p99) <= TARGET_MS else "  over target"
            text = f"{_cell(p50):>22} {_cell(p99):>22}{mark}"
            if missing:
                text += f"  not measured in {len(missing)} of {len(finished)} runs: {missing[0]}"
            lines.append(f"{title:<{width}} {side:<9} {text}")
            title = ""
    title = "CPU per turn, the side's whole process"
    for side in SIDES:
        if side in runs:
            cpu = _present(_at(runs[side], "cpu_ms_per_turn"))
            lines.append(f"{title:<{width}} {side:<9} {_cell(cpu):>22}")
            title = ""
    if "pipecat" in runs:
        added = {q: ratios(out, "hops", "added", f"{q}_ms") for q in ("p50", "p99")}
        lines.append("flowspec / Pipecat, time added per turn: "
                     + ", ".join(f"{q} {_cell(v)}" for q, v in added.items()))
        lines.append(f"flowspec / Pipecat, CPU per turn: {_cell(ratios(out, 'cpu_ms_per_turn'))}")
    for side, reason in out.get("skipped", {}).items():
        lines.append(f"{side}: {reason}")
    for side, errors in out["errors"].items():
        lines += [f"{side} run failed, {error}" for error in errors]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    peer = parser.add_mutually_exclusive_group()
    peer.add_argument("--pipecat", action="store_true",
                      help="require Pipecat's side (the default when its venv exists)")
    peer.add_argument("--no-pipecat", action="store_true", help="flowspec's side only")
    parser.add_argument("--worker", choices=["lean", "default"], default="lean",
                        help="Pipecat's worker configuration (_pipecat_cascade.py)")
    parser.add_argument("--side", nargs=2, metavar=("SIDE", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        if args.side[0] != "flowspec":
            parser.error("--side runs flowspec's side; Pipecat's is _pipecat_cascade.py")
        print(json.dumps(asyncio.run(measure(int(args.side[1]), args.turns, args.warmup))))
        return
    out = side_by_side(args)
    print(json.dumps(out) if args.json else render(out))


if __name__ == "__main__":
    main()
