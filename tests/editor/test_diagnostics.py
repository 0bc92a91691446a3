"""Diagnostics from the real yaml-language-server: the right problem on the right line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .conftest import MAPPED_GLOB, ROOT, modeline
from .lsp import LanguageServer

ERROR = 1


def diagnose(server: LanguageServer, path: Path, text: str) -> list[tuple[int, int, str]]:
    """(1-based line in `text`, severity, message) per diagnostic; the modeline is line 0."""
    found = server.diagnostics(server.open(path, modeline() + text))
    return sorted((d["range"]["start"]["line"], d.get("severity", ERROR), d["message"])
                  for d in found)


def lines(found: list[tuple[int, int, str]]) -> dict[int, str]:
    return {line: message for line, _, message in found}


def test_a_valid_spec_has_no_diagnostics(server: LanguageServer, doc_path: Path) -> None:
    text = (ROOT / "specs" / "voice-assistant.yaml").read_text()
    body = text.split("\n", 1)[1]  # its own modeline is relative to specs/
    assert diagnose(server, doc_path, body) == []


def test_the_example_specs_modelines_resolve(server: LanguageServer) -> None:
    for spec in sorted(p for p in (ROOT / "specs").glob("*.yaml")
                       if not p.name.endswith(".test.yaml")):
        text = spec.read_text()
        assert text.startswith("# yaml-language-server: $schema=../schemas/flowspec.schema.json\n")
        found: list[dict[str, Any]] = server.diagnostics(server.open(spec, text))
        assert found == [], spec.name


def test_misspelt_key_and_wrong_enum_value(server: LanguageServer, doc_path: Path) -> None:
    found = diagnose(server, doc_path, """\
flowspec: 1
name: t
nodes:
  llm:
    type: openai.realtime
    settings:
      session_properties:
        audio:
          output:
            voise: marin
          input:
            turn_detection: {type: semantic_vad, eagerness: fast}
""")
    by_line = lines(found)
    assert set(by_line) == {10, 12}
    assert "voise" in by_line[10] and "not allowed" in by_line[10]
    assert '"low", "medium", "high", "auto"' in by_line[12]


def test_wrong_voice_and_node_type(server: LanguageServer, doc_path: Path) -> None:
    found = diagnose(server, doc_path, """\
flowspec: 1
name: t
nodes:
  caller:
    type: transport.websockt
  llm:
    type: openai.realtime
    settings:
      session_properties:
        audio: {output: {voice: marine}}
""")
    assert {line for line, _, _ in found} == {5, 10}


def test_ga_only_field_in_a_beta_node_is_flagged(server: LanguageServer, doc_path: Path) -> None:
    found = diagnose(server, doc_path, """\
flowspec: 1
name: t
nodes:
  llm:
    type: openai.realtime_beta
    settings:
      session_properties:
        voice: alloy
        output_modalities: [audio]
""")
    assert [(line, severity) for line, severity, _ in found] == [(9, ERROR)]
    assert "output_modalities" in found[0][2]


def test_deprecated_field_warns_with_its_replacement(server: LanguageServer,
                                                     doc_path: Path) -> None:
    found = diagnose(server, doc_path, """\
flowspec: 1
name: t
nodes:
  llm:
    type: openai.realtime
    model: gpt-realtime-1.5
""")
    # The server reports it at error severity (1.25.0), though its validator files it as a warning.
    assert [(line, message) for line, _, message in found] == [
        (6, "Write `settings.model` instead of a top-level `model`.")]


def test_yaml_schemas_setting_maps_files_without_a_modeline(server: LanguageServer,
                                                            workspace: Path) -> None:
    # The README's VS Code set-up: `yaml.schemas` maps *.flowspec.yaml files to the schema.
    assert MAPPED_GLOB.endswith("*.flowspec.yaml")
    path = workspace / "mapped" / "bot.flowspec.yaml"
    found = server.diagnostics(server.open(path, "flowspec: 1\nname: t\nnodes: {}\ncolour: x\n"))
    assert sorted(d["range"]["start"]["line"] for d in found) == [2, 3]
