"""Helpers shared by the benchmarks: percentiles, RSS, child processes, medians, result files."""

from __future__ import annotations

import json
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "tools" / "bench" / "RESULTS.md"


def pct(values_ns: list[int]) -> dict[str, float]:
    """Percentile summary of nanosecond values, in microseconds (same rule as the peers' script)."""
    v = sorted(values_ns)
    n = len(v)
    if n == 0:
        return {}

    def q(p: float) -> float:
        return v[min(n - 1, int(round(p * (n - 1))))] / 1e3

    return {"n": n, "p50_us": q(0.50), "p90_us": q(0.90), "p99_us": q(0.99),
            "max_us": v[-1] / 1e3, "mean_us": sum(v) / n / 1e3}


def rss_now_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def rss_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_child(cmd: list[str], label: str, timeout: float = 600) -> Any:
    """Run one measurement in a fresh process; its last stdout line is its JSON result."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise RuntimeError(f"{label} failed with exit code {proc.returncode}")
    sys.stderr.write(f"  {label:<44} {time.perf_counter() - t:5.1f}s\n")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_tree(items: list[Any]) -> Any:
    """Element-wise median over same-shaped JSON trees (booleans: majority)."""
    first = items[0]
    if isinstance(first, dict):
        return {k: median_tree([it[k] for it in items if k in it]) for k in first}
    if isinstance(first, bool):
        return sum(bool(x) for x in items) * 2 > len(items)
    if isinstance(first, int | float):
        return statistics.median(items)
    return first


def import_ms(python: str, statement: str) -> float:
    """Milliseconds `statement` takes in a fresh interpreter (the import alone, not the start)."""
    code = f"import time;t=time.perf_counter();{statement};print(time.perf_counter()-t)"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120, check=True)
    return float(out.stdout.strip().splitlines()[-1]) * 1e3


def write_section(name: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the `name` section of RESULTS.md, leaving other sections alone."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text + "\n" + block
    path.write_text(text)
