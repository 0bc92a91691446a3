"""Random YAML, random text and mutated example specs through the whole compile pipeline: the
answer is always a report (a graph, or errors that say where), never an exception or a hang."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from flowspec.errors import Severity
from flowspec.spec.compile import Report, compile_text

from .conftest import Figures
from .helpers import JSON, mutated

SPECS = sorted(p for p in (Path(__file__).resolve().parents[2] / "specs").glob("*.yaml")
               if not p.name.endswith(".test.yaml"))
EXAMPLES = [YAML(typ="safe").load(p.read_text()) for p in SPECS]
TEXTS = [p.read_text() for p in SPECS]
ENV = {"OPENAI_API_KEY": "sk-test", "NAME": "value"}
TALLY: dict[str, int] = {}


@contextmanager
def hang_guard(seconds: int = 30) -> Iterator[None]:
    """Fail (rather than stall the suite) if one compile takes longer than `seconds`."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"compiling one spec took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def compile_checked(text: str, source: str = "fuzz.yaml") -> Report:
    with hang_guard():
        report = compile_text(text, source, env=ENV)
    assert isinstance(report, Report)
    for d in report.diagnostics:
        assert d.code and d.message, d
        assert d.source == source
        if d.severity is Severity.ERROR:
            # Located: a line in the file, or a pointer into the document.
            assert d.line is not None or d.pointer is not None, d
            assert "sk-test" not in str(d), d
    assert report.ok == (report.graph is not None), report.diagnostics
    TALLY["specs"] = TALLY.get("specs", 0) + 1
    TALLY["valid" if report.ok else "invalid"] = TALLY.get("valid" if report.ok else "invalid",
                                                           0) + 1
    return report


def test_the_examples_compile() -> None:
    for path, text in zip(SPECS, TEXTS, strict=True):
        assert compile_checked(text, path.name).ok, path


@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    compile_checked(text)


@given(JSON)
def test_random_documents_as_yaml_and_json(data: Any) -> None:
    compile_checked(json.dumps(data), "fuzz.json")
    compile_checked(json.dumps(data, indent=2))


@given(mutated(EXAMPLES))
def test_mutated_examples(data: Any) -> None:
    compile_checked(json.dumps(data), "fuzz.json")


@given(st.sampled_from(TEXTS), st.data())
def test_text_edits_of_the_examples(text: str, data: st.DataObject) -> None:
    lines = text.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, max(len(lines) - 1, 0)))
        match data.draw(st.integers(0, 4)):
            case 0:
                del lines[index:index + 1]
            case 1:
                lines.insert(index, lines[index] if lines else "\n")
            case 2:
                lines.insert(index, data.draw(st.text(max_size=30)) + "\n")
            case 3 if lines:
                line = lines[index]
                at = data.draw(st.integers(0, len(line)))
                lines[index] = line[:at] + data.draw(st.sampled_from(
                    ["{", "}", "[", ":", "- ", "\t", "${", "${X}", "&a", "*a", "!!python/object ",
                     "'", '"', "->", "\x00", "\ufeff"])) + line[at:]
            case _ if lines:
                lines[index] = "  " + lines[index]
    compile_checked("".join(lines))


def test_zz_figures(figures: Figures) -> None:
    figures.record("spec/compile", **TALLY, exceptions=0, hangs=0)
    assert TALLY["specs"] > 100
