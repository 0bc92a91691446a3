"""The broken-spec corpus: each file states in `# expect:` lines exactly what validate reports.

A line is `# expect: CODE LINE POINTER` or, to pin the column too, `# expect: CODE LINE:COL
POINTER`; a file that gives columns gives them for every finding.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowspec.errors import Severity
from flowspec.spec.compile import compile_file

CORPUS = Path(__file__).parent / "corpus"
SPECS = sorted(p for p in CORPUS.iterdir() if p.suffix in (".yaml", ".json"))
EXPECT = re.compile(r"^# (expect|expect-warning): (\S+) (\d+)(?::(\d+))? (.+)$", re.M)
Finding = tuple[str, str, int, int | None, str]


def expectations(path: Path) -> set[Finding]:
    sidecar = path.with_name(path.name + ".expect")
    text = sidecar.read_text() if sidecar.exists() else path.read_text()
    return {
        ("error" if kind == "expect" else "warning", code, int(line),
         int(column) if column else None, pointer)
        for kind, code, line, column, pointer in EXPECT.findall(text)
    }


def test_corpus_is_large_and_mostly_invalid() -> None:
    invalid = [p for p in SPECS if any(e[0] == "error" for e in expectations(p))]
    assert len(invalid) >= 40


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_reports_exactly_the_expected_findings(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} states no expectation"
    columns = any(column is not None for *_, column, _ in expected)
    report = compile_file(path, env={})
    found = {
        (d.severity.value, d.code, d.line, d.column if columns else None, d.pointer or "/")
        for d in report.diagnostics
        if d.severity is not Severity.INFO
    }
    assert found == expected
    assert report.ok == (not any(kind == "error" for kind, *_ in expected))
    for diagnostic in report.diagnostics:
        assert diagnostic.message and diagnostic.source == str(path)
        assert "Traceback" not in str(diagnostic)
