"""Whole-process time of `flowspec validate` on each example spec (median of fresh processes).

    python tools/bench/validate_time.py [--runs N]

Target (DESIGN §11): ≤ 0.5 s for specs/voice-assistant.yaml. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def rows(runs: int) -> list[dict[str, Any]]:
    """Whole-process seconds of each run (median and best too): the bare interpreter, the CLI
    import, and `flowspec validate` on each example spec, the commands interleaved run by run."""
    commands = [("python -c pass (interpreter start)", ["-c", "pass"]),
                ("import flowspec.cli", ["-c", "import flowspec.cli"])]
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
