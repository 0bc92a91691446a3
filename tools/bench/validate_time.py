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


def measure(args: list[str], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=ROOT, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), min(samples)


def rows(runs: int) -> list[dict[str, Any]]:
    """Median and best whole-process seconds: the bare interpreter, the CLI import, and
    `flowspec validate` on each example spec."""
    commands = [("python -c pass (interpreter start)", ["-c", "pass"]),
                ("import flowspec.cli", ["-c", "import flowspec.cli"])]
    for spec in sorted((ROOT / "specs").glob("*.yaml")):
        commands.append((f"flowspec validate specs/{spec.name}",
                         ["-m", "flowspec.cli", "validate", str(spec)]))
    out = []
    for label, args in commands:
        median, best = measure(args, runs)
        out.append({"command": label, "median_s": median, "best_s": best})
    return out


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
