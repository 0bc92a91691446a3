"""run_all.py's plumbing: one command writes a report of the expected shape (numbers unchecked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    subprocess.run([sys.executable, str(ROOT / "tools" / "bench" / "run_all.py"), "--smoke",
                    "--only", "validate,reload", "--out", str(out)], check=True,
                   capture_output=True, timeout=60, cwd=ROOT)
    text = out.read_text()
    assert text.startswith("# Benchmark results\n")
    assert "**Smoke run" in text
    assert "**Machine:**" in text
    assert "## Targets" in text
    assert "| metric | target | flowspec | compared with | ratio | met | reps |" in text
    assert "| `flowspec validate specs/voice-assistant.yaml`, whole process (s) | ≤ 0.5 s |" in text
    assert ("| settings patch received → `session.update` at the provider, 1 live session, "
            "median (ms) |") in text
    assert "PATCH on replica A → `session.update` for a session on replica B" in text
    assert "## How each row is measured" in text
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["errors"] == {}
    assert {row["command"] for row in result["validate"]["rows"]} >= {
        "flowspec validate specs/voice-assistant.yaml"}
    assert len(result["reload"]["reps"]) == result["reps"] == 1


def test_smoke_run_of_the_cascade_without_pipecat(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    subprocess.run([sys.executable, str(ROOT / "tools" / "bench" / "run_all.py"), "--smoke",
                    "--no-pipecat", "--only", "cascade", "--out", str(out)], check=True,
                   capture_output=True, timeout=120, cwd=ROOT)
    text = out.read_text()
    assert ("| cascade: final transcript → Responses request written, p50 / p99 (ms) | "
            "p99 ≤ 0.5 ms |") in text
    assert "| Pipecat: not measured (--no-pipecat) | – |" in text
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["errors"] == {}
    cascade = result["cascade"]
    assert cascade["order"] == ["flowspec"] and cascade["skipped"] == {
        "pipecat": "not measured (--no-pipecat)"}
    assert cascade["runs"]["flowspec"][0]["not_measured"] == {}
