"""What `flowspec test` prints: a line per scenario with its first failed expectation located in
the test file, a closing `N passed, N failed` line; or JSON; or a JUnit XML report for CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from flowspec.errors import Diagnostic
from flowspec.scenario.runner import ScenarioResult


def print_text(results: Sequence[ScenarioResult], problems: Sequence[Diagnostic],
               out: TextIO) -> None:
    for problem in problems:
        print(problem, file=out)
    for result in results:
        verdict = "ok  " if result.ok else "FAIL"
        speed = f"{result.seconds:.2f} s"
        if result.call_seconds:
            speed += f", a {result.call_seconds:.1f} s call"
        print(f"{verdict} {result.file}: {result.name} ({speed})", file=out)
        for failure in result.failures:
            print(f"     {failure}", file=out)
    print(summary(results, problems), file=out)


def summary(results: Sequence[ScenarioResult], problems: Sequence[Diagnostic]) -> str:
    passed = sum(r.ok for r in results)
    line = f"{passed} passed, {len(results) - passed} failed"
    if problems:
        line += f", {len({p.source for p in problems})} test file(s) could not be loaded"
    return line


def to_json(results: Sequence[ScenarioResult], problems: Sequence[Diagnostic]) -> dict[str, Any]:
    return {
        "ok": not problems and all(r.ok for r in results),
        "passed": sum(r.ok for r in results),
        "failed": sum(not r.ok for r in results),
        "problems": [p.to_json() for p in problems],
        "scenarios": [{"file": r.file, "name": r.name, "ok": r.ok, "seconds": round(r.seconds, 3),
                       "call_seconds": round(r.call_seconds, 3),
                       "failures": [f.to_json() for f in r.failures]} for r in results],
    }


def write_junit(path: str | Path, results: Sequence[ScenarioResult],
                problems: Sequence[Diagnostic]) -> None:
    """JUnit XML as CI systems read it: a `testsuite` per test file, a `testcase` per scenario,
    a `failure` with the located message; a file that did not load is an `error` case."""
    root = ElementTree.Element("testsuites", name="flowspec test")
    files: dict[str, list[ScenarioResult]] = {}
    for result in results:
        files.setdefault(result.file, []).append(result)
    broken: dict[str, list[Diagnostic]] = {}
    for problem in problems:
        broken.setdefault(problem.source, []).append(problem)
    total = failed = errors = 0
    for name in sorted(set(files) | set(broken)):
        cases, load_problems = files.get(name, []), broken.get(name, [])
        suite = ElementTree.SubElement(root, "testsuite", name=name)
        for result in cases:
            case = ElementTree.SubElement(suite, "testcase", name=result.name, classname=name,
                                          time=f"{result.seconds:.3f}")
            for failure in result.failures[:1]:
                element = ElementTree.SubElement(case, "failure", message=failure.message,
                                                 type=failure.code)
                element.text = str(failure)
        if load_problems:
            case = ElementTree.SubElement(suite, "testcase", name="(load)", classname=name,
                                          time="0")
            element = ElementTree.SubElement(case, "error", message=load_problems[0].message,
                                             type=load_problems[0].code)
            element.text = "\n".join(str(p) for p in load_problems)
        suite_failed = sum(not r.ok for r in cases)
        suite.set("tests", str(len(cases) + (1 if load_problems else 0)))
        suite.set("failures", str(suite_failed))
        suite.set("errors", str(1 if load_problems else 0))
        suite.set("skipped", "0")
        suite.set("time", f"{sum(r.seconds for r in cases):.3f}")
        total += len(cases) + (1 if load_problems else 0)
        failed += suite_failed
        errors += 1 if load_problems else 0
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", str(errors))
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def dump_json(results: Sequence[ScenarioResult], problems: Sequence[Diagnostic],
              out: TextIO) -> None:
    json.dump(to_json(results, problems), out, indent=2)
    print(file=out)
