"""The README's reliability command shows the figures it measured, even under `-q -q`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_figures_are_printed_at_the_end_of_a_quiet_run() -> None:
    test = "tests/reliability/test_parsers_fuzz.py::test_the_sse_decoder_takes_any_lines"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-q", "-p", "no:cacheprovider", test],
        cwd=ROOT, capture_output=True, text=True, timeout=170, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.split("reliability figures", 1)[1].splitlines()[1:]
    name, values = summary[0].split(": ", 1)
    assert name == "parsers/sse" and json.loads(values)["lines"] > 0
    recorded = json.loads((ROOT / "build" / "reliability.json").read_text())
    assert recorded["parsers/sse"] == json.loads(values)
