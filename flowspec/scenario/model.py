"""The test file of a bot (`NAME.test.yaml`): the spec it tests and its scenarios.

The pydantic models here are the single source of the test file's JSON Schema
(`schemas/flowspec-test.schema.json`, editor completion like the spec's). A scenario is one call:
what the model does (the emulator's script rules, embedded as they are written in a script
file), the caller's turns, and expectations after each turn and at the end.

    flowspec_test: 1
    spec: voice-assistant.yaml          # relative to this file
    scenarios:
      - name: weather in Paris
        model:
          rules:
            - when: {contains: weather}
              call: {name: get_weather, arguments: {location: Paris}}
        turns:
          - say: What is the weather in Paris?
            expect:
              - tool_called: {name: get_weather, arguments: {location: Paris}}
              - bot_said: {contains: Paris}
        expect:
          - call_ended: {reason: input done}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from flowspec.spec.models.base import StrictModel

SCHEMA_ID = "https://flowspec.dev/schemas/flowspec-test.schema.json"


def _field(default: Any = None, *, description: str, **kw: Any) -> Any:
    if "default_factory" in kw:
        return Field(description=description, **kw)
    return Field(default, description=description, **kw)


class TextMatch(StrictModel):
    """What a bot said, matched by one of `contains`, `regex` (searched) or `exact`."""

    contains: str | None = _field(description="A substring, case-insensitive.")
    regex: str | None = _field(description="A Python regular expression, searched "
                               "case-insensitively.")
    exact: str | None = _field(description="The whole text, spaces at the ends ignored.")

    @model_validator(mode="after")
    def _one(self) -> TextMatch:
        given = [k for k in ("contains", "regex", "exact") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of contains, regex or exact")
        return self


class ToolCalled(StrictModel):
    name: str = _field(..., description="The tool's function name (as the model sees it).")
    arguments: dict[str, Any] = _field(
        default_factory=dict, description="Arguments the call must carry; a partial object: "
        "other arguments may be present too.")


class Count(StrictModel):
    max: float = _field(..., description="The largest accepted value.", ge=0)


class Ended(StrictModel):
    reason: str | None = _field(description="A substring of why the call ended, "
                                "case-insensitive (`input done`, `client disconnected`, ...).")


class Expectation(StrictModel):
    """One check; give exactly one of its fields."""

    bot_said: TextMatch | None = _field(
        description="The bot's words (transcript or text) in this turn, or in the whole call "
        "for an expectation at the end.")
    bot_did_not_say: TextMatch | None = _field(description="Words the bot must not say.")
    tool_called: ToolCalled | None = _field(description="A tool call the model made.")
    no_tool_called: bool | None = _field(description="`true`: the model called no tool.")
    session_update: dict[str, Any] | None = _field(
        description="A `session.update` on the wire whose `session` holds these fields (a "
        "partial object), e.g. `{instructions: Be brief.}`.")
    no_audio_after_interrupt: bool | None = _field(
        description="`true`: no bot audio of an interrupted reply reached the caller after the "
        "interruption did.")
    call_ended: Ended | None = _field(description="The call ended (optionally: why: "
                                      "`end_call`, `idle`, `max_duration`, `refused`, ...).")
    webhook: dict[str, Any] | None = _field(
        description="An event the spec's `events.webhook` nodes would post (a partial object), "
        "e.g. `{type: call.ended, data: {reason: end_call}}`. In a scenario they post nowhere.")
    flow_state: str | None = _field(
        description="The spec's `flow:` state the call is in at the end of the turn (or of the "
        "call, for an expectation at the end).")
    error: TextMatch | None = _field(description="An error the caller was told of.")
    no_error: bool | None = _field(description="`true`: the caller was told of no error.")
    latency_added_ms: Count | None = _field(
        description="Time flowspec added between a model audio delta arriving and the caller "
        "receiving it, p99 in milliseconds, at most `max`.")

    @model_validator(mode="after")
    def _one(self) -> Expectation:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one expectation per item (found "
                             f"{', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)


class BargeIn(StrictModel):
    after_ms: int = _field(..., description="Barge in once this much of the bot's reply audio "
                           "has reached the caller.", ge=0, le=600_000)
    say: str = _field("wait, stop", description="What the caller says over the bot.")


class Turn(StrictModel):
    """One thing the caller does, then (unless it is a barge-in) waiting for the bot to answer
    and go quiet; `expect` checks what happened in that turn. Give exactly one action."""

    text: str | None = _field(description="Typed text.", max_length=10_000)
    say: str | None = _field(description="Speech: audio made by the emulator's voice, heard "
                             "by the emulator as these words.", max_length=2_000)
    audio: str | None = _field(description="A WAV file (relative to the test file) the caller "
                               "speaks.")
    heard: str | None = _field(description="With `audio`: the words the emulator hears in it "
                               "(default: a description of its length).")
    barge_in: BargeIn | None = _field(description="Speak over the bot's next reply.")
    silence_s: float | None = _field(description="Stay silent this long (audio time).", ge=0,
                                     le=3_600)
    dtmf: str | None = _field(description="Keys pressed on the phone (phone transports).",
                              pattern=r"^[0-9*#A-D]{1,32}$")
    hang_up: bool | None = _field(description="`true`: the caller hangs up.")
    expect: list[Expectation] = _field(default_factory=list, description="Checks after this "
                                       "turn.", max_length=100)

    @model_validator(mode="after")
    def _one(self) -> Turn:
        actions = [name for name in ACTIONS if getattr(self, name) is not None]
        if len(actions) != 1:
            raise ValueError(f"give exactly one action per turn: one of {', '.join(ACTIONS)} "
                             f"(found {', '.join(actions) or 'none'})")
        if self.heard is not None and self.audio is None:
            raise ValueError("`heard` goes with `audio`")
        return self

    @property
    def action(self) -> str:
        return next(name for name in ACTIONS if getattr(self, name) is not None)


ACTIONS = ("text", "say", "audio", "barge_in", "silence_s", "dtmf", "hang_up")


class Scenario(StrictModel):
    name: str = _field(..., description="What the scenario shows; `flowspec test -k` selects "
                       "by it.", min_length=1, max_length=200)
    variables: dict[str, Any] = _field(default_factory=dict, description="The call's values "
                                       "for the spec's `variables:` (as a connection gives "
                                       "them).")
    model: dict[str, Any] | None = _field(
        description="What the model does: the emulator's script (`rules:` and "
        "`audio_transcripts:`, as in a script file). Skipped with `--live`.")
    replay: str | None = _field(description="A recording (`flowspec record`) whose model side "
                                "the emulator plays instead of `model:`.")
    turns: list[Turn] = _field(..., description="What the caller does, in order.",
                               min_length=1, max_length=200)
    expect: list[Expectation] = _field(default_factory=list, description="Checks once the "
                                       "call is over.", max_length=100)

    @model_validator(mode="after")
    def _source(self) -> Scenario:
        if self.model is not None and self.replay is not None:
            raise ValueError("give `model` or `replay`, not both")
        return self


class ScenarioFile(StrictModel):
    """A bot's test file: the spec it tests and its scenarios."""

    flowspec_test: Literal[1] = _field(..., description="Test file format version.")
    spec: str = _field(..., description="The spec under test, relative to this file.",
                       min_length=1)
    scenarios: list[Scenario] = _field(..., description="Calls to run.", min_length=1,
                                       max_length=1_000)
