"""`flowspec test` speed: 50 scenarios on compressed time, against how long the calls would last.

Writes a test file of 50 scenarios for specs/voice-assistant.yaml (spoken questions with a tool
call, typed questions, barge-ins: a mix of what the example test files do), runs it the way
`flowspec test` does (8 scenarios at a time, the emulator 20 times faster than real time), and
reports the wall time against the calls' real-time length: the caller's speech and silences
plus the bot's reply audio. Target: under a tenth of real time.

Run: `.venv/bin/python tools/bench/scenarios.py [--scenarios 50] [--reps 3] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

KINDS = [
    """  - name: spoken question {n}
    model:
      rules:
        - when: {{contains: weather, input: audio}}
          call: {{name: get_weather, arguments: {{location: City {n}}}}}
    turns:
      - say: What is the weather in city number {n}?
        expect:
          - tool_called: {{name: get_weather}}
""",
    """  - name: typed question {n}
    turns:
      - text: Tell me something about the number {n}.
        expect:
          - bot_said: {{contains: "{n}"}}
      - text: And once more, please.
""",
    """  - name: barge-in {n}
    model:
      rules:
        - when: {{turn: 1}}
          say: >
            A long answer that goes on about the weather and the week ahead, the wind and the
            rain, for as long as nobody stops it.
    turns:
      - say: Tell me about the week.
      - barge_in: {{after_ms: 700, say: "Stop, please."}}
    expect:
      - no_audio_after_interrupt: true
""",
]


def test_file(count: int) -> str:
    body = "".join(KINDS[n % len(KINDS)].format(n=n) for n in range(count))
    return f"flowspec_test: 1\nspec: voice-assistant.yaml\nscenarios:\n{body}"


async def measure(count: int) -> dict[str, Any]:
    from flowspec.scenario.load import load_test_file
    from flowspec.scenario.runner import run_file

    folder = Path(tempfile.mkdtemp(prefix="flowspec-scenarios-"))
    try:
        shutil.copy(ROOT / "specs" / "voice-assistant.yaml", folder / "voice-assistant.yaml")
        path = folder / "bench.test.yaml"
        path.write_text(test_file(count))
        loaded = load_test_file(path)
        began = time.perf_counter()
        results = await run_file(loaded)
        wall = time.perf_counter() - began
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    call = sum(r.call_seconds for r in results)
    return {"scenarios": len(results), "passed": sum(r.ok for r in results),
            "wall_s": wall, "call_s": call, "fraction_of_real_time": wall / call if call else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = [asyncio.run(measure(args.scenarios)) for _ in range(args.reps)]
    fractions = [r["fraction_of_real_time"] for r in runs]
    row = {"runs": runs, "median_fraction": statistics.median(fractions),
           "min_fraction": min(fractions), "max_fraction": max(fractions)}
    if args.json:
        print(json.dumps(row))
        return
    median = row["median_fraction"]
    verdict = "met" if median < 0.1 else "missed"
    print("| scenarios | passed | wall (s) | calls' real-time length (s) | wall / real time, "
          "median (min–max) | target |")
    print("|---|---|---|---|---|---|")
    walls = statistics.median(r["wall_s"] for r in runs)
    calls = statistics.median(r["call_s"] for r in runs)
    print(f"| {args.scenarios} | {min(r['passed'] for r in runs)} | {walls:.1f} | {calls:.0f} | "
          f"{median:.3f} ({row['min_fraction']:.3f}–{row['max_fraction']:.3f}) | "
          f"< 0.1: {verdict} |")


if __name__ == "__main__":
    main()
