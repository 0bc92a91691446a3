"""Flow transition latency: a tool's result → the new state's `session.update` arriving at the
provider, next to a plain settings change → its `session.update`, in one run, interleaved.

Runs one live Realtime call of a two-state flow (`a` ⇄ `b`, each move made by the result of
one Python tool) against the emulator in its own process (`_emulator_proc.py`, pace 0, whose
script calls the tool whenever the caller asks). Each rep:

- transition: the caller's text makes the model call the tool; from the moment the tool's
  (async) handler returns its result (`_flow_tool.py` stamps it) to the moment the emulator
  receives the move's `session.update`: the result's way back to the node, the flow's decision,
  the smallest update for the new state's instructions, and the socket write;
- plain patch: from handing the node an `UpdateSettingsFrame` (a new `system_instruction`, the
  way a hot reload reaches it) to the emulator receiving its `session.update`.

The emulator stamps arrivals with `time.perf_counter_ns()` and this process stamps with
`time.perf_counter()`: CLOCK_MONOTONIC, one clock for both processes. Target (DESIGN §11): a
transition adds ≤ 1 ms median over what reaching the provider costs anyway, read as the
difference of the two medians.

Run: `.venv/bin/python tools/bench/flow.py [--reps 60] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import _flow_tool  # noqa: E402
from reload import EmulatorProcess  # noqa: E402

SCRIPT = """\
rules:
  - when: {contains: move}
    call: {name: turn, arguments: {location: Lisbon}}
  - say: Done.
"""
SPEC = """\
flowspec: 1
name: flow-bench
nodes:
  caller: {{type: transport.text}}
  llm:
    type: openai.realtime
    base_url: ws://127.0.0.1:{port}/v1/realtime
    api_key: bench
    tools: [turn]
    settings:
      system_instruction: You are brief.
      session_properties: {{output_modalities: [text]}}
  turn:
    type: tool.python
    handler: _flow_tool:turn
    description: Moves the call on.
    parameters:
      type: object
      properties: {{location: {{type: string}}}}
      required: [location]
edges:
  - caller -> llm -> caller
flow:
  initial: a
  states:
    a:
      instructions: You are in state A. Call the tool when asked.
      tools: [turn]
      transitions: {{turn: b}}
    b:
      instructions: You are in state B. Call the tool when asked.
      tools: [turn]
      transitions: {{turn: a}}
"""
STEP_S = 10.0  # a guard against hangs, never a measurement


async def _arrival(emulator: EmulatorProcess) -> float:
    """The next `session.update` arrival at the emulator (seconds, CLOCK_MONOTONIC)."""
    for _ in range(int(STEP_S * 1000)):  # the emulator is another process: ask it
        arrivals = (await emulator.ask_async("arrivals"))["arrivals_ns"]
        if arrivals:
            if len(arrivals) != 1:
                raise SystemExit(f"{len(arrivals)} session.update messages for one change")
            return float(arrivals[0]) / 1e9
        await asyncio.sleep(0.001)
    raise SystemExit("no session.update reached the emulator")


async def measure(reps: int) -> dict[str, Any]:
    from flowspec.conversation.events import FlowTransition
    from flowspec.frames import ResponseEndedFrame, TextFrame, UpdateSettingsFrame
    from flowspec.nodes.openai_realtime.node import RealtimeNode
    from flowspec.runtime.bus import Bus, BusEvent
    from flowspec.runtime.executor import Executor
    from flowspec.spec.compile import compile_text
    from flowspec.testing import RecorderNode, make_registry

    class Caller(RecorderNode):
        """The caller: says when the model's answer has ended."""

        def __init__(self, ctx: Any) -> None:
            super().__init__(ctx)
            self.answered = asyncio.Event()

        async def handle(self, frame: Any, port: str) -> None:
            await super().handle(frame, port)
            if isinstance(frame, ResponseEndedFrame):
                self.answered.set()

    script = Path(tempfile.mkdtemp(prefix="flowspec-bench-")) / "script.yaml"
    script.write_text(SCRIPT)
    emulator = EmulatorProcess(["--script", str(script)])
    transitions: list[float] = []
    patches: list[float] = []
    try:
        graph = compile_text(SPEC.format(port=emulator.port), env={}).raise_for_errors()
        registry = make_registry()
        registry.register("transport.text", Caller)
        bus = Bus()
        events: list[BusEvent] = []
        with bus.subscribe(events.append):
            async with Executor(registry=registry, bus=bus).session(graph) as session:
                node = session.node("llm")
                caller = session.node("caller")
                assert isinstance(node, RealtimeNode) and isinstance(caller, Caller)
                async with asyncio.timeout(STEP_S):
                    await node.wait_ready()
                await emulator.ask_async("arrivals")  # the session's own first update
                for n in range(reps):
                    moved = len(_flow_tool.RETURNED)
                    caller.answered.clear()
                    await session.send("caller", TextFrame(text=f"move on {n}", role="user"))
                    arrived = await _arrival(emulator)
                    transitions.append(arrived - _flow_tool.RETURNED[moved])
                    async with asyncio.timeout(STEP_S):
                        await caller.answered.wait()  # the answer in the new state
                    start = time.perf_counter()
                    await node.handle(UpdateSettingsFrame(
                        delta={"system_instruction": f"You are brief ({n})."},
                        version=n + 2), "in")
                    patches.append(await _arrival(emulator) - start)
                moves = sum(isinstance(e, FlowTransition) for e in events)
                if moves != reps:
                    raise SystemExit(f"{moves} flow transitions for {reps} reps")
    finally:
        emulator.stop()
    transition, patch = _summary(transitions), _summary(patches)
    return {"reps": reps, "transition_ms": transition, "plain_patch_ms": patch,
            "added_median_ms": transition["median"] - patch["median"], "target_ms": 1.0}


def _summary(seconds: list[float]) -> dict[str, float]:
    values = sorted(s * 1000 for s in seconds)
    return {"median": statistics.median(values), "p99": values[int(0.99 * (len(values) - 1))],
            "min": values[0], "max": values[-1]}


def render(result: dict[str, Any]) -> str:
    t, p = result["transition_ms"], result["plain_patch_ms"]
    added = result["added_median_ms"]
    met = "met" if added <= result["target_ms"] else "missed"
    return "\n".join([
        f"flow transition → session.update at the provider ({result['reps']} reps each, "
        "interleaved, one live Realtime call)",
        "| row | median ms | p99 ms | min–max ms |",
        "|---|---|---|---|",
        f"| tool result → the new state's session.update | {t['median']:.3f} | {t['p99']:.3f} "
        f"| {t['min']:.3f}–{t['max']:.3f} |",
        f"| plain settings change → its session.update | {p['median']:.3f} | {p['p99']:.3f} "
        f"| {p['min']:.3f}–{p['max']:.3f} |",
        f"added by the transition (difference of medians): {added:.3f} ms; target ≤ "
        f"{result['target_ms']:.1f} ms: {met}",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=60)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args.reps))
    print(json.dumps(result) if args.json else render(result))


if __name__ == "__main__":
    main()
