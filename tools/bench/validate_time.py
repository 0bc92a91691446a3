"""Whole-process time of `flowspec validate` on each example spec (median of fresh processes).

    python tools/bench/validate_time.py [--runs N]

Target (DESIGN §11): ≤ 0.5 s for specs/voice-assistant.yaml, and for a generated 400-node spec
(`large_spec`: a browser transport, four Realtime models and 395 Python tools with parameters).
Also times `import flowspec.runtime` (target ≤ 60 ms above the bare interpreter). Prints a
markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LARGE_NODES = 400
LARGE_LABEL = f"flowspec validate (generated, {LARGE_NODES} nodes)"


def large_spec(nodes: int = LARGE_NODES, models: int = 4) -> str:
    """A valid spec of `nodes` nodes: a browser transport feeding `models` Realtime models, the
    rest Python tools with parameters shared among them (one entry transport per spec, at most
    128 tools per model, as the compiler asks)."""
    tools = nodes - 1 - models
    lines = ["flowspec: 1", "name: many-tools", "nodes:", "  caller:",
             "    type: transport.websocket", "    audio: {encoding: pcm16, sample_rate: 24000}"]
    edges = ["edges:"]
    for m in range(models):
        names = [f"tool{m}_{t}" for t in range(m, tools, models)]
        lines += [f"  llm{m}:", "    type: openai.realtime", f"    tools: [{', '.join(names)}]",
                  "    settings:", "      model: gpt-realtime-1.5",
                  f"      system_instruction: You are assistant {m}. Keep answers short.",
                  "      session_properties:", "        audio: {output: {voice: marin}}"]
        for name in names:
            lines += [f"  {name}:", "    type: tool.python",
                      "    handler: flowspec.examples.weather:get_weather",
                      "    description: Current weather for a city.", "    parameters:",
                      "      type: object", "      properties:",
                      '        location: {type: string, description: "City name"}',
                      "        unit: {type: string, enum: [celsius, fahrenheit]}",
                      "      required: [location]"]
        edges.append(f"  - caller -> llm{m} -> caller")
    return "\n".join(lines + edges) + "\n"


def rows(runs: int) -> list[dict[str, Any]]:
    """Whole-process seconds of each run (median and best too): the bare interpreter, the CLI
    import, and `flowspec validate` on each example spec, the commands interleaved run by run."""
    large = Path(tempfile.mkdtemp()) / "many-bots.yaml"
    large.write_text(large_spec())
    commands = [("python -c pass (interpreter start)", ["-c", "pass"]),
                ("import asyncio", ["-c", "import asyncio"]),
                ("import pydantic", ["-c", "import pydantic"]),
                ("import flowspec.runtime", ["-c", "import flowspec.runtime"]),
                ("import flowspec.cli", ["-c", "import flowspec.cli"]),
                (LARGE_LABEL, ["-m", "flowspec.cli", "validate", str(large)])]
    for spec in sorted((ROOT / "specs").glob("*.yaml")):
        if spec.name.endswith(".test.yaml"):
            continue  # a scenario file for `flowspec test`, not a spec
        commands.append((f"flowspec validate specs/{spec.name}",
                         ["-m", "flowspec.cli", "validate", str(spec)]))
    samples: dict[str, list[float]] = {label: [] for label, _args in commands}
    for _ in range(runs):
        for label, args in commands:
            start = time.perf_counter()
            subprocess.run([sys.executable, *args], cwd=ROOT, check=True, capture_output=True)
            samples[label].append(time.perf_counter() - start)
    return [{"command": label, "runs_s": runs_s, "median_s": statistics.median(runs_s),
             "best_s": min(runs_s)} for label, runs_s in samples.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON line")
    args = parser.parse_args()
    result = rows(args.runs)
    if args.json:
        print(json.dumps(result))
        return 0
    print("| command | median s | best s |")
    print("| --- | --- | --- |")
    for row in result:
        print(f"| `{row['command']}` | {row['median_s']:.3f} | {row['best_s']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
