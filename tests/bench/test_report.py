"""RESULTS.md states only what the run measured: no peer figure, no canned number, and every
comparison made the same number of times on both sides.

The report modules may hold no figures of their own (the targets live in `_targets.py`), and a
report rendered from results whose every measured number was changed must change with them:
whatever number stays put is a literal in the report code.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import json
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tools" / "bench"
REPORT_MODULES = ("_report.py", "_reasons.py", "_render.py")
# Numbers the report code may hold: units and scales (ms, µs, KiB, minutes, percent).
ALLOWED_CONSTANTS = {0, 1, 2, 10, 60, 100, 1024, 1e3, 1e6, 1e9}
# A digit that is not part of a name (p50, PCM16, K1, _M1000) or of a format spec ({:.2f}).
FIGURE = re.compile(r"(?<![A-Za-z_\d.])\d+(?:,\d{3})*(?:\.\d+)?")


def bench(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Literal text of the module: plain strings and the fixed parts of f-strings, without
    docstrings and format specs."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    specs = {id(v.format_spec) for v in ast.walk(tree)
             if isinstance(v, ast.FormattedValue) and v.format_spec is not None}
    skip: set[int] = set()
    for node in ast.walk(tree):
        if id(node) in specs:
            skip |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings and id(node) not in skip):
            yield node.lineno, re.sub(r"\{[^{}]*\}|`[^`]*`", "", node.value)


@pytest.mark.parametrize("module", REPORT_MODULES)
def test_report_code_holds_no_figures(module: str) -> None:
    tree = ast.parse((BENCH / module).read_text())
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, int | float)
                and not isinstance(node.value, bool) and node.value not in ALLOWED_CONSTANTS):
            found.append(f"{module}:{node.lineno}: {node.value!r}")
    for line, text in _strings(tree):
        for match in FIGURE.finditer(text):
            found.append(f"{module}:{line}: {match.group()!r} in {text!r}")
    assert not found, "figures written into the report code (measure them, or move a target " \
        "to _targets.py):\n" + "\n".join(found)


def _perturbed(tree: Any, rng: random.Random) -> Any:
    """Every measured number changed by a factor of its own, spread over three decades, so that
    ratios and medians change too: ints to other ints, floats to other floats."""
    if isinstance(tree, dict):
        return {k: _perturbed(v, rng) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_perturbed(v, rng) for v in tree]
    if isinstance(tree, bool) or not isinstance(tree, int | float):
        return tree
    factor = 10 ** rng.uniform(0, 3)
    if isinstance(tree, int):
        return int(tree * factor) + rng.randint(1, 1000)
    return tree * factor + rng.uniform(0, 1)


def _text_numbers(tree: Any) -> set[str]:
    """Numbers the perturbation leaves alone: those written in the results' strings and keys
    (versions, dates, command lines) and how many reps each list holds."""
    found: set[str] = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            found |= set(FIGURE.findall(str(key))) | _text_numbers(value)
    elif isinstance(tree, list):
        found.add(str(len(tree)))
        for value in tree:
            found |= _text_numbers(value)
    elif isinstance(tree, str):
        found |= set(FIGURE.findall(tree))
    return found


def _prose(line: str) -> str:
    return re.sub(r"`[^`]*`", "", line)  # code spans: commands, paths, statements


def _same_places(first: str, second: str) -> set[tuple[int, int, str]]:
    """(line of `first`, index in it, number) of the numbers at the same place in `second`:
    lines that read the same once their numbers are masked are paired, then their numbers
    compared one by one."""
    a, b = first.splitlines(), second.splitlines()
    sm = difflib.SequenceMatcher(None, [FIGURE.sub("#", _prose(x)) for x in a],
                                 [FIGURE.sub("#", _prose(x)) for x in b], autojunk=False)
    found = set()
    for i, j, size in sm.get_matching_blocks():
        for k, (la, lb) in enumerate(zip(a[i:i + size], b[j:j + size], strict=True)):
            pairs = zip(FIGURE.findall(_prose(la)), FIGURE.findall(_prose(lb)), strict=True)
            found |= {(i + k, n, x) for n, (x, y) in enumerate(pairs) if x == y}
    return found


def fixed_numbers(first: str, *others: str) -> set[tuple[str, str]]:
    """Numbers of `first` that every other rendering has at the same place."""
    places = set.intersection(*(_same_places(first, other) for other in others))
    lines = first.splitlines()
    return {(x, lines[line]) for line, _n, x in places}


def _results() -> dict[str, Any]:
    path = BENCH / "RESULTS.json"
    results: dict[str, Any] = json.loads(path.read_text())
    if "sessions" not in results or "trials" not in (results.get("sessions") or {}):
        pytest.skip("RESULTS.json predates the current harness")
    return results


def allowed_numbers(results: dict[str, Any]) -> set[str]:
    """What the report may write that the perturbation leaves alone: the results' own strings
    and keys, the targets, and the section number of DESIGN."""
    targets = bench("_targets")
    allowed = _text_numbers(results) | set(FIGURE.findall(targets.DESIGN))
    for value in vars(targets).values():
        if isinstance(value, targets.Target):
            allowed |= set(FIGURE.findall(value.text))
        elif isinstance(value, int) and not isinstance(value, bool):
            allowed |= {f"{value:,}", str(value)}
    return allowed


def test_every_number_in_the_report_comes_from_the_results() -> None:
    compose = bench("run_all").compose
    results = _results()
    first, *others = (compose(_perturbed(results, random.Random(seed))) for seed in (1, 2, 3))
    allowed = allowed_numbers(results)
    fixed = sorted((x, line) for x, line in fixed_numbers(first, *others) if x not in allowed)
    assert not fixed, "numbers that do not follow the results:\n" + "\n".join(
        f"{x!r} in {line!r}" for x, line in fixed)


def test_both_sides_are_measured_the_same_number_of_times() -> None:
    results = _results()
    ex = results.get("executor") or {}
    for cfg, measured in (ex.get("pipecat") or {}).items():
        for key, reps in measured.items():
            assert len(reps) == len(ex["flowspec"][key]), (cfg, key)
    trials = results["sessions"]["trials"]
    counts = {(system, level): len(reps) for system, levels in trials.items()
              for level, reps in levels.items()}
    failures = results["sessions"].get("failures") or []
    assert len(set(counts.values())) == 1 or failures, counts
    runs = (results.get("imports") or {}).get("runs_ms") or {}
    assert len({len(v) for v in runs.values()}) <= 1, runs
    # A failed cascade run keeps its place (None), so every side lists every rep.
    cascade = results.get("cascade") or {}
    assert {len(v) for v in (cascade.get("runs") or {}).values()} <= {cascade.get("reps")}, \
        cascade


def test_the_runtime_import_row_is_measured_above_the_interpreter_start() -> None:
    report = bench("_report")
    results = {"validate": {"rows": [
        {"command": "python -c pass (interpreter start)", "runs_s": [0.020, 0.030]},
        {"command": "import flowspec.runtime", "runs_s": [0.090, 0.120]}]}}
    assert [round(x) for x in report.runtime_import_ms(results)] == [70, 90]
    row = next(r for r in report.other_rows(results) if "flowspec.runtime" in r[0])
    assert row[5] is False and row[6] == "2"  # 80 ms median against ≤ 60 ms
