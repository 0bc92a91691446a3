"""Whole-process time of `flowspec validate` on each example spec (median of fresh processes).

    python tools/bench/validate_time.py [--runs N]

Target (DESIGN §11): ≤ 0.5 s for specs/voice-assistant.yaml. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def measure(args: list[str], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=ROOT, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), min(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=11)
    runs = parser.parse_args().runs
    print("| command | median s | best s |")
    print("| --- | --- | --- |")
    rows = [("python -c pass (interpreter start)", ["-c", "pass"])]
    rows.append(("import flowspec.cli", ["-c", "import flowspec.cli"]))
    for spec in sorted((ROOT / "specs").glob("*.yaml")):
        rows.append((f"flowspec validate specs/{spec.name}",
                     ["-m", "flowspec.cli", "validate", str(spec)]))
    for label, args in rows:
        median, best = measure(args, runs)
        print(f"| `{label}` | {median:.3f} | {best:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
