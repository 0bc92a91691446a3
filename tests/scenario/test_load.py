"""Broken test files: each in the corpus states in `# expect:` lines exactly what loading it
reports (code, line, pointer), and a test file that does not load runs nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flowspec.errors import SpecInvalid
from flowspec.scenario.load import find_test_files, load_test_file

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.test.yaml"))
EXPECT = re.compile(r"^# expect: (\S+) (\d+) (.+)$", re.M)


def test_the_corpus_has_at_least_eight_broken_files() -> None:
    assert len(FILES) >= 8
    assert find_test_files([str(CORPUS)]) == FILES


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_loading_reports_exactly_the_expected_problems(path: Path) -> None:
    expected = {(code, int(line), pointer) for code, line, pointer in
                EXPECT.findall(path.read_text())}
    assert expected, f"{path.name} states no expectation"
    with pytest.raises(SpecInvalid) as refused:
        load_test_file(path)
    found = {(d.code, d.line, d.pointer or "/") for d in refused.value.diagnostics}
    assert found == expected
    for diagnostic in refused.value.diagnostics:
        assert diagnostic.source == str(path) and diagnostic.message
