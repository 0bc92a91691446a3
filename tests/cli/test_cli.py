"""The command line: exit codes, output formats, and no tracebacks for user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flowspec.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(str(p) for p in (ROOT / "specs").glob("*.yaml"))
BROKEN = str(ROOT / "tests" / "spec" / "corpus" / "many-errors.yaml")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowspec.cli", *args], capture_output=True,
                          text=True, check=False, cwd=ROOT)


def test_examples_validate_in_a_real_process() -> None:
    result = run("validate", *EXAMPLES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": ok (") == len(EXAMPLES) >= 5


def test_invalid_spec_exits_1_with_located_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", BROKEN]) == 1
    out = capsys.readouterr().out
    assert "many-errors.yaml:13:" in out and "/nodes/llm/settings/session_properties" in out
    assert "invalid (4 errors, 0 warnings)" in out


def test_missing_file_exits_2_without_traceback() -> None:
    result = run("validate", "no/such/spec.yaml")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert "cannot read the file" in result.stdout


def test_usage_error_exits_2() -> None:
    result = run("validate")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert run().returncode == 2


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", BROKEN, EXAMPLES[0]]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["ok"] is False
    bad, good = payload["files"]
    assert bad["ok"] is False and good["ok"] is True
    first = bad["diagnostics"][0]
    assert set(first) == {"severity", "code", "message", "source", "line", "column", "pointer",
                          "hint"}
    assert first["line"] == 6 and first["pointer"] == "/nodes/caller/audio/sample_rate"


def test_strict_turns_warnings_into_failures(capsys: pytest.CaptureFixture[str]) -> None:
    warned = str(ROOT / "tests" / "spec" / "corpus" / "warn-deprecated-model.yaml")
    assert main(["validate", warned]) == 0
    assert main(["validate", "--strict", warned]) == 1
    assert "deprecated" in capsys.readouterr().out


def test_graph_shows_the_inserted_converter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", str(ROOT / "specs" / "phone-agent.yaml")]) == 0
    mermaid = capsys.readouterr().out
    assert mermaid.startswith("flowchart LR")
    assert "phone_to_agent_convert" in mermaid and "pcmu 8 kHz mono → pcm16 24 kHz mono" in mermaid
    assert "(inserted)" in mermaid and "-. tool .-" in mermaid
    assert main(["graph", "--format", "dot", str(ROOT / "specs" / "phone-agent.yaml")]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith('digraph "phone-agent"') and "style=dashed" in dot
    assert '"agent" -> "get_weather" [style=dotted' in dot


def test_graph_of_invalid_spec_reports_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", BROKEN]) == 1
    assert "schema.bad-enum" in capsys.readouterr().err


def test_graph_never_prints_secrets(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("flowspec: 1\nname: t\nnodes:\n  chat: {type: transport.text}\n  llm:\n"
                    "    type: openai.responses\n    api_key: sk-canary-123456\n"
                    "edges: [chat -> llm -> chat]\n")
    assert main(["graph", str(spec)]) == 0
    assert main(["validate", str(spec)]) == 0
    assert "sk-canary-123456" not in capsys.readouterr().out


@pytest.mark.parametrize("template", ["voice", "text"])
def test_init_writes_a_valid_spec_with_modeline(tmp_path: Path, template: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "bots" / "demo.flowspec.yaml"
    assert main(["init", str(target), "--template", template]) == 0
    lines = target.read_text().splitlines()
    assert lines[0] == "# yaml-language-server: $schema=./flowspec.schema.json"
    assert (target.parent / "flowspec.schema.json").exists()
    assert main(["validate", "--strict", str(target)]) == 0
    assert main(["init", str(target)]) == 2  # refuses to overwrite
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize("template", ["voice", "text"])
def test_init_of_a_json_file_writes_json_naming_its_schema(tmp_path: Path, template: str) -> None:
    target = tmp_path / "bot.json"
    assert main(["init", str(target), "--template", template]) == 0
    data = json.loads(target.read_text())
    assert list(data)[:3] == ["$schema", "flowspec", "name"]
    assert data["$schema"] == "./flowspec.schema.json" and data["name"] == "bot"
    assert main(["validate", "--strict", str(target)]) == 0


def test_schema_prints_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed)["$schema"].startswith("http://json-schema.org/draft-07")
    out = tmp_path / "s.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert out.read_text() == printed
    assert main(["schema", "--check", str(out)]) == 0
    assert main(["schema", "--check", str(tmp_path / "none.json")]) == 2


def test_validate_checks_a_test_file_as_flowspec_test_reads_it() -> None:
    corpus = ROOT / "tests" / "scenario" / "corpus"
    result = run("validate", str(corpus / "bad-dtmf.test.yaml"), str(ROOT / "specs" /
                                                                     "text-chat.test.yaml"))
    assert result.returncode == 1
    assert "bad-dtmf.test.yaml:6:15 /scenarios/0/turns/0/dtmf:" in result.stdout
    assert "text-chat.test.yaml: ok (0 errors, 0 warnings)" in result.stdout


def test_a_reader_that_stops_early_ends_validate_quietly() -> None:
    # Ten times the corpus writes well past a pipe's buffer, so the write after `head` has
    # gone always fails.
    many = [str(p) for p in sorted((ROOT / "tests" / "spec" / "corpus").glob("*.yaml"))] * 10
    shell = subprocess.run(
        f"{sys.executable} -m flowspec.cli validate {' '.join(many)} | head -1; "
        "echo \"status=${PIPESTATUS[0]}\"",
        shell=True, executable="/bin/bash", capture_output=True, text=True, cwd=ROOT,
        check=False)
    assert "Traceback" not in shell.stderr and "BrokenPipe" not in shell.stderr, shell.stderr
    assert shell.stdout.strip().endswith("status=141")
