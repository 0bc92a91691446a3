"""Test files complete in the editor like specs: keys, turn actions and expectation kinds from
the committed test-file schema, with their descriptions, and misspelt keys flagged."""

from __future__ import annotations

from pathlib import Path

from flowspec.scenario.load import scenario_schema_text

from .conftest import ROOT, modeline
from .lsp import LanguageServer, cursor

SCHEMA = ROOT / "schemas" / "flowspec-test.schema.json"
HEAD = "flowspec_test: 1\nspec: bot.yaml\nscenarios:\n  - name: a call\n    turns:\n"


def test_the_committed_test_file_schema_is_current() -> None:
    assert SCHEMA.read_text() == scenario_schema_text(), \
        "regenerate it: python tools/gen_schema.py"


def _labels(server: LanguageServer, path: Path, text: str) -> dict[str, str]:
    body, line, character = cursor(modeline(SCHEMA) + text)
    uri = server.open(path, body)
    items = server.completion(uri, line, character)
    return {str(item["label"]): str((item.get("documentation") or {}).get("value", "")
                                    if isinstance(item.get("documentation"), dict)
                                    else item.get("documentation", "")) for item in items}


def test_turn_actions_and_expectations_complete(server: LanguageServer, doc_path: Path) -> None:
    actions = _labels(server, doc_path, HEAD + "      - <|>\n")
    assert {"say", "text", "audio", "barge_in", "silence_s", "dtmf", "hang_up",
            "expect"} <= set(actions)
    assert "emulator's voice" in actions["say"]
    path = doc_path.with_name(doc_path.stem + "-b.yaml")
    kinds = _labels(server, path, HEAD + "      - say: hi\n        expect:\n          - <|>\n")
    assert {"bot_said", "tool_called", "session_update", "no_audio_after_interrupt",
            "call_ended", "latency_added_ms"} <= set(kinds)


def test_a_misspelt_key_is_flagged(server: LanguageServer, doc_path: Path) -> None:
    uri = server.open(doc_path, modeline(SCHEMA) + HEAD + "      - say: hi\n        expct: []\n")
    messages = [d["message"] for d in server.diagnostics(uri)]
    assert any("expct" in m for m in messages), messages
