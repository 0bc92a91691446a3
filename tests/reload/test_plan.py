"""Plans without a server: classification by mutability, the exact wire payloads per dialect,
minimal session diffs, patches and comment-preserving edits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowspec.errors import SpecInvalid
from flowspec.nodes.openai_realtime.delta import echo_differences, merge_delta, minimal_session
from flowspec.reload import fileedit
from flowspec.reload.diff import diff
from flowspec.reload.plan import Plan, build_plan
from flowspec.reload.quick import compile_valid
from flowspec.reload.store import Conflict, SpecStore
from flowspec.spec.compile import compile_text
from flowspec.spec.load import parse

from .conftest import VOICE

SPECS = Path(__file__).resolve().parents[2] / "specs"


def plan_of(old: str, new: str, *, served: bool = True) -> Plan:
    before = compile_text(old, "old.yaml", {}).raise_for_errors()
    after = compile_text(new, "new.yaml", {}, version=2).raise_for_errors()
    return build_plan(before, after, diff(parse(old).data, parse(new).data), served=served)


def applies(plan: Plan) -> dict[str, str]:
    return {c.change.pointer: c.applies for c in plan.changes}


def test_each_change_is_classified_by_its_mutability() -> None:
    new = (VOICE.replace("You are terse.", "Be kind.")
           .replace("output: {voice: marin}", "output: {voice: cedar}")
           .replace("    settings:\n", "    settings:\n      model: gpt-realtime-2\n")
           .replace("sample_rate: 24000", "sample_rate: 16000"))
    plan = plan_of(VOICE, new)
    assert applies(plan) == {
        "/nodes/caller/audio/sample_rate": "new_sessions",
        "/nodes/llm/settings/system_instruction": "live",
        "/nodes/llm/settings/session_properties/audio/output/voice": "until_first_audio",
        "/nodes/llm/settings/model": "new_sessions",
    }
    [action] = plan.actions
    assert "model" not in action.delta  # the model is part of the connection
    assert action.wire == {"type": "session.update", "session": {
        "type": "realtime", "instructions": "Be kind.", "audio": {"output": {"voice": "cedar"}}}}
    assert action.wire_after_audio == {"type": "session.update", "session": {
        "type": "realtime", "instructions": "Be kind."}}
    assert plan.ok and plan.new_graph
    text = plan.render()
    assert "until_first_audio" in text and '"instructions": "Be kind."' in text


def test_the_beta_dialect_has_no_session_type_and_a_flat_shape() -> None:
    old = (SPECS / "legacy-beta.yaml").read_text()
    data = parse(old).data
    node = next(k for k, v in data["nodes"].items() if v["type"] == "openai.realtime_beta")
    new_data = fileedit.apply_merge_patch(data, {"nodes": {node: {"settings": {
        "system_instruction": "Beta now."}}}} if "settings" in data["nodes"][node] else
        {"nodes": {node: {"session_properties": {"instructions": "Beta now."}}}})
    plan = plan_of(old, fileedit.rewrite(old, new_data))
    [action] = plan.actions
    assert action.wire is not None
    assert action.wire["session"] == {"instructions": "Beta now."}


def test_tool_wiring_is_structural_and_entry_paths_are_rejected_when_served() -> None:
    new = VOICE.replace("tools: [get_weather]", "tools: []")
    plan = plan_of(VOICE, new)
    assert applies(plan) == {"/nodes/llm/tools": "new_sessions"} and not plan.actions
    moved = VOICE.replace("type: transport.websocket", "type: transport.websocket\n    "
                          "path: /voice")
    assert not plan_of(VOICE, moved).ok
    assert plan_of(VOICE, moved, served=False).ok


def test_minimal_session_recurses_only_through_containers_and_fills_removed_defaults() -> None:
    before = {"type": "realtime", "instructions": "a", "audio": {
        "input": {"turn_detection": {"type": "semantic_vad", "eagerness": "low"}},
        "output": {"voice": "marin", "speed": 1.2}}}
    after = {"type": "realtime", "audio": {
        "input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}},
        "output": {"voice": "marin"}}}
    assert minimal_session(before, after, beta=False) == {
        "audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}},
                  "output": {"speed": 1.0}},
        "instructions": ""}
    assert minimal_session({"transcription_x": 1, "voice": "ash"}, {}, beta=True) == {
        "transcription_x": None, "voice": "alloy"}
    assert minimal_session(before, before, beta=False) == {}


def test_echo_comparison_tolerates_server_filled_defaults() -> None:
    intended: dict[str, Any] = {"audio": {"input": {"turn_detection": {"type": "server_vad"}}}}
    echo = {"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.5}}}}
    assert echo_differences(intended, echo) == []
    assert echo_differences({"instructions": "x"}, {"instructions": "y"}) == ["/instructions"]
    assert merge_delta({"a": {"b": 1, "c": 2}}, {"a": {"b": None, "d": {"e": None}}}) == {
        "a": {"c": 2, "d": {}}}


def test_the_store_checks_if_match_and_never_changes_on_a_bad_candidate() -> None:
    store = SpecStore.from_text(VOICE, "bot.yaml", env={})
    for tag in (None, "*", '"1"', "1", 'W/"1"', '"7", "1"'):
        store.check_if_match(tag)
    with pytest.raises(Conflict):
        store.check_if_match('"2"')
    with pytest.raises(fileedit.PatchFailed):
        store.patched_data("json-patch", [{"op": "test", "path": "/name", "value": "x"}])
    with pytest.raises(fileedit.PatchFailed):
        store.patched_data("json-patch", {"op": "add"})
    assert store.text == VOICE and store.version == 1


@pytest.mark.parametrize(("text", "types", "value"), [
    # Where a string fits, the text is the string exactly as given: nothing is cut.
    ("You are #1. Be brief", {"string"}, "You are #1. Be brief"),
    ("Note: be brief", {"string"}, "Note: be brief"),
    ("123", {"string"}, "123"),
    ("auto", {"string", "object"}, "auto"),
    # Elsewhere: JSON, or a YAML flow value.
    ("false", {"boolean", "object"}, False), ("1.5", {"number"}, 1.5),
    ("{type: server_vad}", {"boolean", "object"}, {"type": "server_vad"}),
    ('{"a": [1]}', {"object"}, {"a": [1]}), ("[1, 2]", {"array"}, [1, 2]),
    # A place the schema does not know: JSON when it is JSON, else the text.
    ("null", None, None), ("a: b: c", None, "a: b: c"), ("", None, ""),
])
def test_set_values_follow_the_type_of_their_field(text: str, types: set[str] | None,
                                                   value: Any) -> None:
    assert fileedit.parse_value(text, types) == value


@pytest.mark.parametrize(("text", "types", "message"), [
    ("fast", {"number"}, "is not a number; give JSON with --set-json"),
    ("1 # one", {"number"}, "would start a comment"),
    ("[unclosed", {"array"}, "give JSON with --set-json"),
])
def test_set_values_that_do_not_fit_are_refused(text: str, types: set[str],
                                                message: str) -> None:
    with pytest.raises(fileedit.PatchFailed) as refused:
        fileedit.parse_value(text, types)
    assert message in str(refused.value)


def test_set_json_and_a_missing_parent() -> None:
    assert fileedit.parse_json_assignment('/a={"b": 1}') == ("/a", {"b": 1})
    with pytest.raises(fileedit.PatchFailed, match="is not JSON"):
        fileedit.parse_json_assignment("/a=nope")
    with pytest.raises(fileedit.PatchFailed) as refused:
        fileedit.apply_json_patch(parse(VOICE).data, [
            {"op": "add", "path": "/nodes/nope/x", "value": 1}])
    [problem] = refused.value.diagnostics
    assert problem.pointer == "/nodes/nope/x"
    assert problem.message.startswith("/nodes/nope does not exist (it has: caller, ")
    assert "transport.websocket" not in problem.message  # not the whole document


@pytest.mark.parametrize("name", sorted(p.name for p in SPECS.glob("*.yaml")
                                         if not p.name.endswith(".test.yaml")))
def test_rewriting_unchanged_data_gives_back_the_same_text(name: str) -> None:
    text = (SPECS / name).read_text()
    assert fileedit.rewrite(text, parse(text).data) == text


def test_an_edit_keeps_comments_and_layout() -> None:
    data = fileedit.apply_json_patch(parse(VOICE).data, fileedit.assignments_patch([
        fileedit.parse_assignment("/nodes/llm/settings/system_instruction=Be kind."),
        fileedit.parse_assignment("/nodes/llm/settings/session_properties/audio/input/"
                                  "turn_detection=false")]))
    out = fileedit.rewrite(VOICE, data)
    [line] = [ln for ln in out.splitlines() if "system_instruction" in ln]
    assert line.startswith("      system_instruction: Be kind. ") and line.endswith("# the persona")
    assert "# A voice bot for reload tests." in out and "# the browser protocol" in out
    assert "turn_detection: false" in out
    untouched = [ln for ln in VOICE.splitlines() if "system_instruction" not in ln
                 and "turn_detection" not in ln]
    assert [ln for ln in out.splitlines() if "system_instruction" not in ln
            and "turn_detection" not in ln] == untouched


CORPUS = Path(__file__).resolve().parents[1] / "spec" / "corpus"


@pytest.mark.parametrize("path", sorted([*CORPUS.glob("*.yaml"),
                                         *(p for p in SPECS.glob("*.yaml")
                                           if not p.name.endswith(".test.yaml"))]),
                         ids=lambda p: p.name)
def test_the_fast_validation_agrees_with_validate(path: Path) -> None:
    text = path.read_text()
    env = {"OPENAI_API_KEY": "sk-x", "TWILIO_AUTH_TOKEN": "t"}
    report = compile_text(text, path.name, env)
    try:
        data = parse(text, path.name).data
    except SpecInvalid:
        assert not report.ok
        return
    quick = compile_valid(data, path.name, env, 1)
    assert (quick is not None) == report.ok, [str(d) for d in report.errors]
    if quick is not None and report.graph is not None:
        assert quick.nodes == report.graph.nodes and quick.edges == report.graph.edges
        assert quick.content_hash == report.graph.content_hash
