"""Each expectation against what a call did: it holds, or it says what happened instead."""

from __future__ import annotations

import pytest

from flowspec.scenario.expect import Observed, check, percentile
from flowspec.scenario.model import Expectation


def expect(**given: object) -> Expectation:
    return Expectation.model_validate(given)


SEEN = Observed(said=["It is sunny in Paris.", "Anything else?"],
                tools=[("get_weather", {"location": "Paris", "unit": "celsius"})],
                updates=[{"type": "realtime", "instructions": "Be brief.",
                          "audio": {"output": {"voice": "marin"}}}],
                errors=["llm: The model connection was lost"], late_audio_ms=0.0,
                interrupted=1, ended="scenario done", latencies_ms=[0.1] * 98 + [0.4, 0.4],
                state="confirm", path=["greet", "collect", "confirm"])


@pytest.mark.parametrize("expectation", [
    expect(bot_said={"contains": "SUNNY"}),
    expect(bot_said={"regex": r"paris\.\s+anything"}),
    expect(bot_said={"exact": "It is sunny in Paris. Anything else?"}),
    expect(bot_did_not_say={"contains": "rain"}),
    expect(tool_called={"name": "get_weather", "arguments": {"location": "Paris"}}),
    expect(session_update={"audio": {"output": {"voice": "marin"}}}),
    expect(no_audio_after_interrupt=True),
    expect(call_ended={"reason": "DONE"}),
    expect(error={"contains": "connection was lost"}),
    expect(latency_added_ms={"max": 0.4}),
    expect(flow_state="confirm"),
])
def test_expectations_that_hold(expectation: Expectation) -> None:
    assert check(expectation, SEEN) is None


@pytest.mark.parametrize(("expectation", "message"), [
    (expect(bot_said={"contains": "rain"}), 'it said "It is sunny in Paris. Anything else?"'),
    (expect(bot_did_not_say={"contains": "sunny"}), "the bot said something containing"),
    (expect(tool_called={"name": "get_weather", "arguments": {"location": "Oslo"}}),
     'the model called get_weather({"location": "Paris", "unit": "celsius"})'),
    (expect(no_tool_called=True), "the model called get_weather"),
    (expect(session_update={"instructions": "Be verbose."}), "1 sent"),
    (expect(call_ended={"reason": "hung up"}), 'ended with "scenario done"'),
    (expect(no_error=True), "connection was lost"),
    (expect(latency_added_ms={"max": 0.2}), "p99 0.40 ms over 100 audio frames"),
    (expect(flow_state="done"), "in state 'confirm' (path: greet → collect → confirm)"),
])
def test_expectations_that_fail_say_what_happened(expectation: Expectation,
                                                  message: str) -> None:
    problem = check(expectation, SEEN)
    assert problem is not None and message in problem, problem


def test_a_flow_state_without_a_flow() -> None:
    assert check(expect(flow_state="done"), Observed()) == "the spec has no flow:"


def test_late_audio_and_no_interruption() -> None:
    late = Observed(late_audio_ms=120.0, interrupted=1)
    assert "120 ms of an interrupted reply" in (check(expect(no_audio_after_interrupt=True),
                                                      late) or "")
    assert check(expect(no_audio_after_interrupt=True), Observed()) == "nothing was interrupted"
    assert check(expect(call_ended={}), Observed()) == "the call had not ended"


def test_percentile() -> None:
    assert percentile(range(1, 101), 99) == 99
    assert percentile([5.0], 99) == 5.0
