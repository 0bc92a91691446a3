"""The committed schema: fresh, complete, editor-shaped, and agreeing with `flowspec validate`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from flowspec.errors import SpecInvalid
from flowspec.families.registry import builtin_families, default_families
from flowspec.spec.load import interpolate, parse
from flowspec.spec.schema import build_schema, schema_text
from flowspec.spec.validate import schema_diagnostics

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "schemas" / "flowspec.schema.json"
EXAMPLES = sorted(p for p in (ROOT / "specs").glob("*.yaml")
                  if not p.name.endswith(".test.yaml"))  # bots' tests have their own schema
CORPUS = sorted((ROOT / "tests" / "spec" / "corpus").glob("*.yaml"))
BUILTIN = builtin_families()
"""What the committed files describe: installed plugins are left out of them."""
BUILTIN_TYPES = {node_type: BUILTIN.model(node_type) for node_type in BUILTIN.types}


def _parses(path: Path) -> bool:
    try:
        parse(path.read_text(), str(path))
    except SpecInvalid:
        return False
    return True


# Syntax-error entries have no data for a schema verdict; every other spec is compared.
COMPARED = [p for p in EXAMPLES + CORPUS if _parses(p)]

# Seed fields per node type (DESIGN §1; Pipecat constructors and settings) as schema paths.
SEED_FIELDS = {
    "RealtimeNodeSpec": [
        "api_key", "base_url", "organization", "project", "default_headers", "model",
        "session_properties", "start_audio_paused", "start_video_paused", "video_frame_detail",
        "user_audio_preroll_secs", "tools", "extra", "settings",
    ],
    "RealtimeSettingsSpec": ["model", "system_instruction", "session_properties"],
    "RealtimeSessionPropertiesSpec": [
        "output_modalities", "instructions", "audio", "tools", "tool_choice", "max_output_tokens",
        "tracing", "truncation", "prompt", "include", "reasoning", "parallel_tool_calls",
    ],
    "AudioInputSpec": ["format", "transcription", "noise_reduction", "turn_detection"],
    "AudioOutputSpec": ["format", "voice", "speed"],
    "ServerVadSpec": ["threshold", "prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms",
                      "create_response", "interrupt_response"],
    "SemanticVadSpec": ["eagerness", "create_response", "interrupt_response"],
    "RealtimeBetaNodeSpec": [
        "api_key", "base_url", "model", "session_properties", "start_audio_paused",
        "send_transcription_frames", "settings",
    ],
    "BetaSessionPropertiesSpec": [
        "modalities", "instructions", "voice", "input_audio_format", "output_audio_format",
        "input_audio_transcription", "input_audio_noise_reduction", "turn_detection", "tools",
        "tool_choice", "temperature", "max_response_output_tokens",
    ],
    "ResponsesNodeSpec": [
        "api_key", "base_url", "ws_url", "organization", "project", "default_headers",
        "service_tier", "transport", "store", "retry_timeout_secs", "retry_on_timeout", "settings",
    ],
    "ResponsesSettingsSpec": [
        "model", "system_instruction", "temperature", "top_p", "frequency_penalty",
        "presence_penalty", "seed", "max_completion_tokens", "reasoning",
    ],
    "PythonToolSpec": ["handler", "description", "parameters", "timeout_s",
                       "cancel_on_interruption"],
    "HttpToolSpec": ["url", "method", "headers", "description", "parameters", "timeout_s",
                     "cancel_on_interruption"],
}


def committed() -> dict[str, Any]:
    return json.loads(COMMITTED.read_text())  # type: ignore[no-any-return]


def test_committed_schema_is_fresh() -> None:
    assert COMMITTED.read_text() == schema_text(BUILTIN)
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_schema.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_gen_schema_check_fails_on_stale_file(tmp_path: Path) -> None:
    from flowspec.cli import main

    stale = tmp_path / "schema.json"
    stale.write_text(schema_text().replace("Realtime", "Realtyme", 1))
    assert main(["schema", "--check", str(stale)]) == 1


def test_is_draft07_without_pydantic_noise() -> None:
    schema = committed()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    Draft7Validator.check_schema(schema)
    text = COMMITTED.read_text()
    assert "$defs" not in text and '"discriminator"' not in text and '"prefixItems"' not in text
    assert "title" not in schema
    # The only titles are the node kinds' own names (hover headings), never pydantic's.
    titles = [key for key in _walk_keys(schema["definitions"]) if key == "title"]
    node_titles = {d["title"] for d in schema["definitions"].values() if "title" in d}
    assert len(titles) == len(node_titles) == len(BUILTIN_TYPES) + 1
    assert node_titles == set(BUILTIN_TYPES) | {"edge object"}


def _walk_keys(node: Any) -> list[str]:
    keys: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "properties":
                keys.append(key)
            keys.extend(_walk_keys(value))
    elif isinstance(node, list):
        for item in node:
            keys.extend(_walk_keys(item))
    return keys


def test_every_node_type_is_a_described_oneof_branch_with_a_snippet() -> None:
    schema = committed()
    branches = schema["properties"]["nodes"]["additionalProperties"]["oneOf"]
    consts = set()
    for branch in branches:
        definition = schema["definitions"][branch["$ref"].rsplit("/", 1)[1]]
        const = definition["properties"]["type"]["const"]
        consts.add(const)
        assert definition["description"]
        assert definition["required"][0] == "type"
        assert definition["additionalProperties"] is False
        assert definition["defaultSnippets"][0]["body"]["type"] == const
    assert consts == set(BUILTIN_TYPES) and len(consts) == 16


@pytest.mark.parametrize("definition", sorted(SEED_FIELDS))
def test_seed_fields_are_present_and_documented(definition: str) -> None:
    properties = committed()["definitions"][definition]["properties"]
    for name in SEED_FIELDS[definition]:
        assert name in properties, f"{definition}.{name} missing"
        assert properties[name]["description"], f"{definition}.{name} undocumented"


def test_every_field_has_description_and_mutability() -> None:
    schema = committed()
    for name, definition in schema["definitions"].items():
        for field, prop in definition.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{field}"
            assert prop.get("x-flowspec-mutability") in {
                "live", "until_first_audio", "next_session", "structural"}, f"{name}.{field}"
            assert "Live" in prop["markdownDescription"] or "Structural" in \
                prop["markdownDescription"] or "session" in prop["markdownDescription"] \
                or "first audio" in prop["markdownDescription"]


def test_deprecations_and_defaults_reach_the_editor() -> None:
    props = committed()["definitions"]["RealtimeNodeSpec"]["properties"]
    assert "settings.model" in props["model"]["deprecationMessage"]
    assert props["model"]["doNotSuggest"] is True
    vad = committed()["definitions"]["ServerVadSpec"]["properties"]["silence_duration_ms"]
    assert vad["default"] == 500 and "Provider default: `500`" in vad["markdownDescription"]
    voice = committed()["definitions"]["AudioOutputSpec"]["properties"]["voice"]
    assert voice["x-flowspec-mutability"] == "until_first_audio"
    listed, custom = voice["oneOf"]
    assert {"marin", "cedar", "alloy"} <= set(listed["enum"])
    assert len(listed["enumDescriptions"]) == len(listed["enum"])
    assert custom["pattern"] == "^voice_[A-Za-z0-9_-]+$"


def test_build_schema_is_cached_and_stable() -> None:
    assert build_schema() is build_schema()


def test_most_specs_are_compared() -> None:
    # Only corpus entries refused while they are read (syntax, bounds) are left out.
    unread = [p for p in CORPUS
              if re.search(r"^# expect: (yaml\.|limit\.|spec\.empty)", p.read_text(), re.M)]
    assert len(unread) <= 8
    assert len(COMPARED) == len(EXAMPLES) + len(CORPUS) - len(unread)


@pytest.mark.parametrize("path", COMPARED, ids=[p.name for p in COMPARED])
def test_plain_jsonschema_agrees_with_flowspec(path: Path) -> None:
    doc = parse(path.read_text(), str(path))
    if interpolate(doc, {}):
        return  # environment errors come before the schema; nothing to compare
    plain_valid = not list(Draft7Validator(committed()).iter_errors(doc.data))
    assert plain_valid == (not schema_diagnostics(doc))


REFERENCE = ROOT / "schemas" / "REFERENCE.md"


def test_committed_reference_is_fresh() -> None:
    from flowspec.spec.reference import reference_markdown

    assert REFERENCE.read_text() == reference_markdown(BUILTIN)


def test_reference_check_fails_on_stale_file(tmp_path: Path) -> None:
    from flowspec.cli import main

    fresh, stale = tmp_path / "REFERENCE.md", tmp_path / "STALE.md"
    assert main(["schema", "--markdown", "-o", str(fresh)]) == 0
    stale.write_text(fresh.read_text().replace("live", "lively", 1))
    assert main(["schema", "--markdown", "--check", str(stale)]) == 1
    assert main(["schema", "--markdown", "--check", str(fresh)]) == 0


def test_reference_documents_every_node_type_and_field() -> None:
    text = REFERENCE.read_text()
    schema = committed()
    for kind, model in BUILTIN_TYPES.items():
        assert f"\n## {kind}\n" in text
        definition = schema["definitions"][model.__name__]
        for name, prop in definition["properties"].items():
            row = next(line for line in text.split(f"\n## {kind}\n", 1)[1].splitlines()
                       if line.startswith(f"| `{name}` |"))
            assert prop["x-flowspec-mutability"] in row, (kind, name)
    assert "| `settings.session_properties.audio.input.turn_detection.silence_duration_ms` | " \
        "integer | `500` (provider) |  | live | (when `type: server_vad`)" in text
    assert "`marin`: Built-in voice, GA only; recommended by OpenAI." in text


def test_every_snippet_is_a_valid_node() -> None:
    families = default_families()
    for kind in families.types:
        families.model(kind).model_validate(families.snippet(kind))


SPEC_FOR = """\
flowspec: 1
name: t
nodes:
  caller: {type: transport.websocket}
  llm: {type: openai.realtime, tools: [lookup]}
  rec: {type: audio.record}
  lookup: {type: tool.http, url: "https://example.com", description: Looks things up.}
  broken: {type: tool.python}
  odd: {type: no.such.type}
edges: [caller -> llm -> caller]
"""


def test_document_schema_narrows_endpoints_and_tools(tmp_path: Path) -> None:
    from flowspec.spec.docschema import document_schema

    doc = parse(SPEC_FOR, "bot.yaml")
    schema = document_schema(doc.data, "bot.yaml")
    Draft7Validator.check_schema(schema)
    assert "$id" not in schema and schema["x-flowspec-for"] == "bot.yaml"
    edge = schema["definitions"]["EdgeObjectSpec"]["properties"]
    assert edge["from"]["enum"] == ["caller", "caller.out", "llm", "llm.out"]
    assert edge["to"]["enum"] == ["caller", "caller.in", "llm", "llm.in", "rec.user", "rec.bot"]
    assert len(edge["from"]["enumDescriptions"]) == 4
    tools = schema["definitions"]["RealtimeNodeSpec"]["properties"]["tools"]["items"]
    assert tools["enum"] == ["lookup", "broken"]
    assert tools["enumDescriptions"][0] == "Looks things up."
    errors = list(Draft7Validator(schema).iter_errors(doc.data))
    assert {tuple(e.absolute_path)[:2] for e in errors} == {("nodes", "broken"), ("nodes", "odd")}
    chain = schema["properties"]["edges"]["items"]["anyOf"][0]
    assert "caller -> llm -> caller" in chain["examples"]
    pattern = re.compile(chain["pattern"])
    assert pattern.match("caller -> llm -> caller") and pattern.match("llm.out -> rec.bot")
    assert not pattern.match("caller -> nobody")
    assert build_schema()["definitions"]["EdgeObjectSpec"]["properties"]["from"].get("enum") \
        is None  # the base schema is untouched


def test_document_schema_of_an_unreadable_document_is_the_base() -> None:
    from flowspec.spec.docschema import document_schema

    unreadable: list[object] = [[], {"nodes": []}, {"nodes": {"a": 1}}]
    for data in unreadable:
        schema = document_schema(data, "x.yaml")
        assert schema["definitions"] == build_schema()["definitions"]


def test_schema_for_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flowspec.cli import main

    spec = tmp_path / "bot.yaml"
    spec.write_text(SPEC_FOR)
    out = tmp_path / ".flowspec" / "bot.schema.json"
    assert main(["schema", "--for", str(spec), "-o", str(out)]) == 0
    assert "$schema=./.flowspec/bot.schema.json" in capsys.readouterr().out
    assert json.loads(out.read_text())["x-flowspec-for"] == "bot.yaml"
    assert main(["schema", "--for", str(spec), "--check", str(out)]) == 0
    spec.write_text(SPEC_FOR.replace("rec:", "recorder:"))
    assert main(["schema", "--for", str(spec), "--check", str(out)]) == 1
    spec.write_text("nodes: [unclosed\n")
    assert main(["schema", "--for", str(spec), "-o", str(out)]) == 1
    assert "bot.yaml:" in capsys.readouterr().err
    assert json.loads(out.read_text())["x-flowspec-for"] == "bot.yaml"  # old one kept
    assert main(["schema", "--for", str(tmp_path / "none.yaml")]) == 2
    assert main(["schema", "--for", str(spec), "--markdown"]) == 2


def test_init_and_examples_carry_the_modeline(tmp_path: Path) -> None:
    from flowspec.cli import main

    assert main(["init", str(tmp_path / "bots" / "bot.flowspec.yaml")]) == 0
    first = (tmp_path / "bots" / "bot.flowspec.yaml").read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=./flowspec.schema.json"
    assert (tmp_path / "bots" / "flowspec.schema.json").read_text() == schema_text()
    for spec in EXAMPLES:
        assert spec.read_text().startswith(
            "# yaml-language-server: $schema=../schemas/flowspec.schema.json\n"), spec.name
