"""`flowspec test` through its command line: the examples' test files pass, a broken expectation
fails located with exit 1, JUnit XML that CI can read, and selection by name."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"


def flowspec(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowspec.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_every_example_spec_has_a_test_file_and_they_pass(tmp_path: Path) -> None:
    specs = {p.name.removesuffix(".yaml") for p in SPECS.glob("*.yaml")
             if not p.name.endswith(".test.yaml")}
    tests = {p.name.removesuffix(".test.yaml") for p in SPECS.glob("*.test.yaml")}
    assert specs <= tests, f"example specs without a test file: {sorted(specs - tests)}"
    junit = tmp_path / "report.xml"
    done = flowspec("test", "specs", "--junit-xml", str(junit))
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    passed = int(last.split()[0])
    assert last == f"{passed} passed, 0 failed" and passed >= 8
    suites = ElementTree.parse(junit).getroot()
    assert suites.tag == "testsuites" and int(suites.get("tests", "0")) == passed
    assert int(suites.get("failures", "1")) == 0
    for suite in suites.iter("testsuite"):
        for attribute in ("name", "tests", "failures", "errors", "time"):
            assert suite.get(attribute) is not None, attribute
        for case in suite.iter("testcase"):
            assert case.get("name") and case.get("classname") and case.get("time")


def test_a_broken_expectation_fails_located_and_exits_1(tmp_path: Path) -> None:
    shutil.copy(SPECS / "voice-assistant.yaml", tmp_path / "voice-assistant.yaml")
    test = tmp_path / "bot.test.yaml"
    test.write_text("""\
flowspec_test: 1
spec: voice-assistant.yaml
scenarios:
  - name: the bot is expected to say what it does not
    turns:
      - text: Hello there.
        expect:
          - bot_said: {contains: a word it never says}
  - name: this one passes
    turns:
      - text: Hello there.
""")
    junit = tmp_path / "report.xml"
    done = flowspec("test", str(test), "--junit-xml", str(junit))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{test}:8:13 /scenarios/0/turns/0/expect/0: the bot was to say something " \
           'containing "a word it never says"; it said ' in done.stdout
    assert done.stdout.strip().endswith("1 passed, 1 failed")
    [failure] = ElementTree.parse(junit).getroot().iter("failure")
    assert failure.get("type") == "expect.bot_said" and "a word it never says" in \
        (failure.text or "")
    selected = flowspec("test", str(test), "-k", "passes", "--format", "json")
    assert selected.returncode == 0, selected.stdout + selected.stderr
    report = json.loads(selected.stdout)
    assert [s["name"] for s in report["scenarios"]] == ["this one passes"]
    assert report["ok"] is True


def test_usage_and_load_errors(tmp_path: Path) -> None:
    done = flowspec("test", str(tmp_path))
    assert done.returncode == 2 and "no test files" in done.stderr
    broken = ROOT / "tests" / "scenario" / "corpus" / "unknown-key.test.yaml"
    done = flowspec("test", str(broken))
    assert done.returncode == 1
    assert "unknown key 'expct' (did you mean 'expect'?)" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("name", ["voice-assistant", "text-chat"])
def test_the_examples_are_shown_in_json(name: str) -> None:
    done = flowspec("test", f"specs/{name}.test.yaml", "--format", "json")
    report = json.loads(done.stdout)
    assert report["ok"] and report["failed"] == 0 and report["passed"] >= 1
