"""What validate says about a broken `flow:`: the state, the tool and what to do, cause first.

Where each finding is located is pinned by the corpus (`corpus/flow-*.yaml`); these tests pin
the words a reader acts on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flowspec.spec.compile import compile_file, compile_text

CORPUS = Path(__file__).parent / "corpus"
ROOT = Path(__file__).resolve().parents[2]


def messages(name: str) -> dict[str, str]:
    report = compile_file(CORPUS / name, env={})
    return {d.pointer: f"{d.message} ({d.hint})" if d.hint else d.message
            for d in report.diagnostics}


@pytest.mark.parametrize(("name", "pointer", "words"), [
    ("flow-transition-tool.yaml", "/flow/states/collect/transitions/check_availability",
     ["state 'collect'", "tool 'check_availability'",
      "add 'check_availability' to flow.states.collect.tools"]),
    ("flow-many-errors.yaml", "/flow/states/greet/transitions/wants_booking",
     ["state 'greet'", "'wants_booking'", "declare it under flow.states.greet.functions"]),
    ("flow-unknown-target.yaml", "/flow/states/greet/transitions/wants_booking",
     ["'wants_booking' in state 'greet' leads to 'colect'", "did you mean 'collect'?"]),
    ("flow-unknown-initial.yaml", "/flow/initial",
     ["starts in 'gret'", "did you mean 'greet'?"]),
    ("flow-dead-end.yaml", "/flow/states/stuck", ["state 'stuck' has no way out", "final: true"]),
    ("flow-single-branch.yaml", "/flow/states/collect/transitions/check_availability/cases",
     ["'check_availability' in state 'collect'", "write `to: done`"]),
    ("flow-unread-value.yaml",
     "/flow/states/collect/transitions/check_availability/set/status",
     ["`status` is kept by 'check_availability' in state 'collect'", "{{status}}"]),
    ("flow-unknown-template.yaml", "/flow/states/done/instructions",
     ["no variable and no flow state", "kept by `set:`: people", "did you mean {{people}}?"]),
    ("flow-tool-not-linked.yaml", "/flow/states/collect/tools/0",
     ["state 'collect'", "add it to nodes.host.tools"]),
    ("flow-unknown-tool.yaml", "/flow/states/greet/tools/0",
     ["state 'greet'", "'caller', a transport.websocket node"]),
    ("flow-function-name.yaml", "/flow/states/collect/functions/check_availability",
     ["state 'collect'", "rename the function"]),
    ("flow-bad-values.yaml", "/flow/states/greet/transitions/check_availability/on",
     ["`result.<field>`", "`arguments.<field>`"]),
    ("flow-bad-state-name.yaml", "/flow/states/2nd", ['state name "2nd"']),
    ("flow-misspelt-initial-key.yaml", "/flow/intial", ["did you mean 'initial'?"]),
    ("flow-duplicate-state.yaml", "", ["key 'greet' appears twice"]),
])
def test_a_finding_names_where_and_what_to_do(name: str, pointer: str,
                                              words: list[str]) -> None:
    message = messages(name)[pointer]
    for word in words:
        assert word in message


def test_a_misspelt_target_is_not_followed_by_the_unreachable_state_it_meant() -> None:
    codes = [d.code for d in compile_file(CORPUS / "flow-unknown-target.yaml").diagnostics]
    assert codes == ["flow.unknown-state"]


def test_a_misspelt_tool_is_not_followed_by_transitions_on_the_tool_it_meant() -> None:
    found = compile_file(CORPUS / "flow-many-errors.yaml").diagnostics
    assert [d.pointer for d in found if d.code == "flow.transition-tool"] == \
        ["/flow/states/greet/transitions/wants_booking"]


def test_a_misspelt_required_key_is_one_finding() -> None:
    found = compile_file(CORPUS / "flow-misspelt-initial-key.yaml").diagnostics
    assert [d.code for d in found] == ["schema.unknown-key"]


def test_a_missing_required_key_is_still_reported() -> None:
    text = (CORPUS / "flow-misspelt-initial-key.yaml").read_text().replace("intial", "start")
    found = compile_text(text, "t.yaml").diagnostics
    assert {d.code for d in found} == {"schema.unknown-key", "schema.missing-required"}


def test_the_example_flow_is_clean() -> None:
    report = compile_file(ROOT / "specs" / "restaurant-booking.yaml", env={})
    assert report.ok
    assert not [d for d in report.diagnostics if d.code.startswith(("flow.", "template."))]


def test_a_misspelt_flow_value_is_not_also_reported_unread() -> None:
    found = compile_file(CORPUS / "flow-unknown-template.yaml").diagnostics
    assert [d.code for d in found] == ["template.undeclared"]
    text = (CORPUS / "flow-unknown-template.yaml").read_text().replace("{{peple}}", "them")
    found = compile_text(text, "t.yaml").diagnostics
    assert [d.code for d in found] == ["flow.unread-value"]


def test_a_misspelt_transition_is_not_followed_by_the_function_it_leaves_unused() -> None:
    found = compile_file(CORPUS / "flow-misspelt-transition.yaml").diagnostics
    assert [(d.code, d.hint) for d in found] == \
        [("flow.transition-tool", "did you mean 'wants_booking'?")]
