"""Hostile spec documents (`hostile.py`) through the compiler in-process and through
`flowspec validate --format json`: each is refused with a located error of the expected code,
quickly and in little memory, and never with an exception or a traceback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import flowspec
from flowspec.errors import Severity
from flowspec.spec.compile import compile_text

from .conftest import Figures
from .hostile import EXPECTED, hostile_specs

CASES = hostile_specs()
TIME_GUARD_S = 5.0
MEMORY_GUARD_MB = 100.0
PACKAGE_ROOT = Path(flowspec.__file__).resolve().parents[1]
MEASURED: dict[str, tuple[float, float]] = {}


@contextmanager
def hang_guard(seconds: int) -> Iterator[None]:
    """Fail, rather than stall the suite, when one case runs far past its time guard."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"one hostile spec took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_every_case_states_its_expected_error() -> None:
    names = [name for name, _ in CASES]
    assert len(names) == len(set(names)) == len(EXPECTED) >= 30
    assert set(names) == set(EXPECTED)


@pytest.mark.parametrize(("name", "text"), CASES, ids=[name for name, _ in CASES])
def test_compile_refuses_with_a_located_error_in_bounded_time_and_memory(
        name: str, text: str, figures: Figures) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with hang_guard(int(TIME_GUARD_S * 6)):
            report = compile_text(text, name, env={})
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    MEASURED[name] = (elapsed, peak)
    errors = report.errors
    assert not report.ok and report.graph is None
    assert errors[0].code == EXPECTED[name], report.diagnostics
    for diagnostic in errors:
        assert diagnostic.source == name and diagnostic.line is not None, diagnostic
        assert diagnostic.severity is Severity.ERROR and diagnostic.message
    # Guards, far above what these take: a case near them has lost its bound.
    assert elapsed < TIME_GUARD_S, f"{name} took {elapsed:.1f} s"
    assert peak < MEMORY_GUARD_MB, f"{name} peaked at {peak:.0f} MB"
    if len(MEASURED) == len(CASES):
        slowest = max(MEASURED, key=lambda n: MEASURED[n][0])
        hungriest = max(MEASURED, key=lambda n: MEASURED[n][1])
        figures.record(
            "hostile_specs_compile", cases=len(CASES), refused=len(MEASURED),
            slowest=slowest, slowest_ms=round(MEASURED[slowest][0] * 1000),
            peak_case=hungriest, peak_mb=round(MEASURED[hungriest][1], 1),
            total_s=round(sum(t for t, _ in MEASURED.values()), 2))


def test_validate_refuses_each_with_exit_1_and_valid_json(tmp_path: Path,
                                                          figures: Figures) -> None:
    paths = []
    for name, text in CASES:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "flowspec.cli", "validate", "--format", "json", *paths],
        capture_output=True, text=True, check=False, cwd=tmp_path, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PACKAGE_ROOT)})
    elapsed = time.perf_counter() - started
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    payload = json.loads(result.stdout)
    assert payload["ok"] is False and len(payload["files"]) == len(CASES)
    for given, report in zip(paths, payload["files"], strict=True):
        name = Path(given).name
        assert report["source"] == given and report["ok"] is False, name
        diagnostics = report["diagnostics"]
        assert diagnostics and diagnostics[0]["code"] == EXPECTED[name], (name, diagnostics)
        for diagnostic in diagnostics:
            assert diagnostic["line"] is not None or diagnostic["pointer"], (name, diagnostic)
    figures.record("hostile_specs_validate", files=len(CASES), exit_code=result.returncode,
                   seconds=round(elapsed, 2), output_kb=round(len(result.stdout) / 1000, 1))
