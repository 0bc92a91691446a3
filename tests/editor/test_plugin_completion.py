"""A node type from an installed package (examples/plugin/, `text.redact`) in the editor: the
schema `flowspec schema` writes on a machine that has it completes and checks it like a built-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowspec.cli import main

from .conftest import ROOT
from .lsp import LanguageServer, cursor

HEAD = "flowspec: 1\nname: t\nnodes:\n  redact:\n"


@pytest.fixture(scope="module")
def installed_schema(workspace: Path) -> Path:
    """What a user with the plugin installed writes with `flowspec schema -o`."""
    schema = workspace / "installed" / "flowspec.schema.json"
    assert main(["schema", "-o", str(schema)]) == 0
    return schema


def complete(server: LanguageServer, path: Path, schema: Path,
             text: str) -> dict[str, dict[str, Any]]:
    body, line, character = cursor(f"# yaml-language-server: $schema={schema}\n" + text)
    uri = server.open(path, body)
    return {str(item["label"]): item for item in server.completion(uri, line, character)}


def test_the_plugin_type_completes_beside_the_builtins(server: LanguageServer, doc_path: Path,
                                                      installed_schema: Path) -> None:
    items = complete(server, doc_path, installed_schema, HEAD + "    type: <|>\n")
    assert {"text.redact", "openai.realtime", "transport.text"} <= set(items)
    doc = items["text.redact"].get("documentation", "")
    assert "Digit masker" in str(doc["value"] if isinstance(doc, dict) else doc)


def test_a_new_node_offers_the_plugins_snippet(server: LanguageServer, doc_path: Path,
                                               installed_schema: Path) -> None:
    items = complete(server, doc_path, installed_schema, HEAD + "    <|>\n")
    body = items["text.redact node"]["insertText"]
    assert body.startswith("type: text.redact") and "mask:" in body and "keep_last:" in body


def test_the_plugin_nodes_fields_come_with_defaults_and_mutability(
        server: LanguageServer, doc_path: Path, installed_schema: Path) -> None:
    items = complete(server, doc_path, installed_schema, HEAD + "    type: text.redact\n    <|>\n")
    assert {"mask", "keep_last"} <= set(items)
    assert "base_url" not in items  # other node kinds' fields
    assert items["keep_last"]["insertText"] == "keep_last: ${1:0}"
    doc = items["mask"]["documentation"]
    assert "**Next session**" in str(doc["value"] if isinstance(doc, dict) else doc)


def test_a_wrong_plugin_field_is_flagged_on_its_line(server: LanguageServer, doc_path: Path,
                                                     installed_schema: Path) -> None:
    text = (f"# yaml-language-server: $schema={installed_schema}\n" + HEAD +
            "    type: text.redact\n    keep_last: -1\n    masc: '*'\n")
    found = server.diagnostics(server.open(doc_path, text))
    assert {d["range"]["start"]["line"] for d in found} == {6, 7}


def test_the_example_spec_is_clean_against_the_installed_schema(
        server: LanguageServer, workspace: Path, installed_schema: Path) -> None:
    source = ROOT / "examples" / "plugin" / "redact-chat.yaml"
    spec = workspace / "redact-chat.yaml"
    text = f"# yaml-language-server: $schema={installed_schema}\n" + source.read_text()
    assert server.diagnostics(server.open(spec, text)) == []
