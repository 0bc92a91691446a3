"""The conversation driver on a manual clock, with a voice that records what it is asked."""

from __future__ import annotations

from typing import Any

import pytest

from flowspec.conversation.call import Call
from flowspec.conversation.clock import ManualClock, settle
from flowspec.conversation.driver import PLAYBACK_GRACE_S, Driver, Words
from flowspec.runtime.bus import Bus
from flowspec.spec.compile import compile_text

BASE = """
flowspec: 1
name: driven
variables:
  customer_name: {default: there}
nodes:
  caller: {type: transport.websocket}
  llm: {type: openai.realtime}
edges: ["caller -> llm -> caller"]
conversation:
"""


class Voice:
    def __init__(self) -> None:
        self.said: list[Words] = []

    async def speak(self, words: Words) -> None:
        self.said.append(words)


class Harness:
    def __init__(self, conversation: str, *, playback_reported: bool = False) -> None:
        report = compile_text(BASE + conversation)
        assert report.graph is not None, report.diagnostics
        self.ended: list[str] = []
        self.clock = ManualClock()
        self.call = Call("s1", report.graph.spec, Bus(), request_end=self.ended.append,
                         clock=self.clock)
        self.call.begin({"customer_name": "Ann"}, transport="test")
        self.voice = Voice()
        self.call.playback_reported = playback_reported
        self.driver = Driver(self.call, self.voice)

    def reply(self, audio_ms: float = 0.0) -> None:
        """The model answers whatever was asked last."""
        self.driver.response_started()
        if audio_ms:
            self.driver.audio(audio_ms)
        self.driver.response_ended()

    @property
    def said(self) -> list[tuple[str, str | None]]:
        return [(w.purpose, w.say or w.prompt) for w in self.voice.said]


@pytest.fixture
async def run_driver() -> Any:
    import asyncio

    tasks: list[asyncio.Task[None]] = []

    def start(h: Harness) -> Harness:
        tasks.append(asyncio.ensure_future(h.driver.run()))
        return h

    yield start
    for task in tasks:
        task.cancel()


async def test_speak_first_says_the_opening_with_variables_after_its_delay(run_driver: Any
                                                                           ) -> None:
    h = run_driver(Harness("  opening: {say: 'Hi {{customer_name}}!', delay_ms: 500}"))
    h.driver.model_ready()
    await h.clock.advance(0.4)
    assert h.said == []
    await h.clock.advance(0.1)
    assert h.said == [("opening", "Hi Ann!")]
    h.driver.model_ready()  # a reconnect is not a new call
    await h.clock.advance(10)
    assert h.said == [("opening", "Hi Ann!")]


async def test_idle_prompts_then_hangs_up_with_a_goodbye(run_driver: Any) -> None:
    h = run_driver(Harness("  idle: {after_s: 8, say: Still there?, max_prompts: 2, "
                           "goodbye: 'Bye {{customer_name}}.'}"))
    h.driver.model_ready()  # wait_for_user: silence counts from the start
    await h.clock.advance(7.9)
    assert h.said == []
    await h.clock.advance(0.1)
    assert h.said == [("idle", "Still there?")]
    h.reply()
    await h.clock.advance(8)
    assert h.said[-1] == ("idle", "Still there?") and len(h.said) == 2
    h.reply()
    await h.clock.advance(8)
    assert h.said[-1] == ("goodbye", "Bye Ann.") and h.ended == []
    h.reply()
    await settle()
    assert h.ended == ["idle"] and h.call.end_reason == "idle"


async def test_the_caller_speaking_starts_the_silence_and_the_count_over(run_driver: Any
                                                                         ) -> None:
    h = run_driver(Harness("  idle: {after_s: 5, say: Hello?, max_prompts: 1}"))
    h.driver.model_ready()
    await h.clock.advance(5)
    h.reply()
    await h.clock.advance(4)
    h.driver.user_active()
    h.reply()
    await h.clock.advance(4.9)
    assert len(h.said) == 1
    await h.clock.advance(0.1)
    assert len(h.said) == 2 and h.ended == []  # the count started over: a prompt, not the end
    h.reply()
    await h.clock.advance(5)
    assert h.ended == ["idle"]  # no goodbye line: hang up at once


async def test_a_reply_counts_as_heard_when_the_transport_reports_it_played(run_driver: Any
                                                                            ) -> None:
    h = run_driver(Harness("  idle: {after_s: 3, say: Hello?}", playback_reported=True))
    h.driver.model_ready()
    h.driver.user_active()
    h.driver.response_started()
    h.driver.playback_started()
    h.driver.audio(4000)
    h.driver.response_ended()
    await h.clock.advance(3.5)
    assert h.said == []  # still playing: no silence yet
    h.driver.playback_stopped()
    await h.clock.advance(3)
    assert h.said == [("idle", "Hello?")]


async def test_a_transport_that_stops_reporting_is_not_waited_for_forever(run_driver: Any
                                                                          ) -> None:
    h = run_driver(Harness("  idle: {after_s: 1, say: Hello?}", playback_reported=True))
    h.driver.model_ready()
    h.driver.user_active()
    h.reply(audio_ms=2000)
    await h.clock.advance(2 + PLAYBACK_GRACE_S - 0.01)
    await h.clock.advance(0.99)
    assert h.said == []
    await h.clock.advance(0.02)
    assert h.said == [("idle", "Hello?")]


async def test_end_call_with_a_goodbye_says_it_then_hangs_up(run_driver: Any) -> None:
    h = run_driver(Harness("  end_call: {goodbye: 'Goodbye, {{customer_name}}.'}"))
    tool = h.driver.end_call_tool()
    assert tool is not None and tool.name == "end_call" and h.driver.is_end_call("end_call")
    h.driver.model_ready()
    h.driver.response_started()          # the response that calls end_call
    assert h.driver.end_call("the caller said bye") is False
    h.driver.response_ended()            # ... ends: the goodbye is not said yet
    await settle()
    assert h.ended == [] and h.said == [("goodbye", "Goodbye, Ann.")]
    assert h.driver.muted
    h.reply()
    assert h.ended == ["end_call"] and not h.driver.muted


async def test_end_call_without_a_goodbye_lets_the_model_say_it(run_driver: Any) -> None:
    h = run_driver(Harness("  end_call: {}"))
    h.driver.model_ready()
    h.driver.response_started()
    assert h.driver.end_call() is True
    h.driver.response_ended()
    assert h.ended == []
    h.reply()  # the model's answer to the tool's result is its goodbye
    assert h.ended == ["end_call"]


async def test_max_duration_says_the_closing_line_and_ends(run_driver: Any) -> None:
    h = run_driver(Harness("  max_duration_s: 60\n  closing: {say: Time is up.}"))
    h.driver.model_ready()
    await h.clock.advance(59.9)
    assert h.said == []
    await h.clock.advance(0.1)
    assert h.said == [("closing", "Time is up.")] and h.ended == []
    h.reply()
    assert h.ended == ["max_duration"]


async def test_an_ending_whose_words_never_play_still_hangs_up(run_driver: Any) -> None:
    h = run_driver(Harness("  max_duration_s: 10\n  closing: {say: Bye.}"))
    h.driver.model_ready()
    await h.clock.advance(10)
    assert h.ended == []
    await h.clock.advance(30)  # the model never answered
    assert h.ended == ["max_duration"]


async def test_a_live_change_to_idle_applies_from_the_next_silence(run_driver: Any) -> None:
    h = run_driver(Harness("  idle: {after_s: 5, say: One?}"))
    h.driver.model_ready()
    changed = compile_text(BASE + "  idle: {after_s: 2, say: Two?}").graph
    assert changed is not None
    h.call.conversation = changed.spec.conversation
    await h.clock.advance(4.9)
    assert h.said == []  # the silence counting keeps its length ...
    await h.clock.advance(0.1)
    assert h.said == [("idle", "Two?")]  # ... and says what the spec says now
    h.reply()
    await h.clock.advance(2)
    assert h.said[-1] == ("idle", "Two?")


async def test_an_earlier_replys_playback_bound_never_cuts_the_goodbye(run_driver: Any) -> None:
    h = run_driver(Harness("  end_call: {goodbye: Goodbye.}", playback_reported=True))
    h.driver.model_ready()
    h.reply(audio_ms=600)                # a reply still playing when the caller asks to end
    h.driver.playback_started()
    h.driver.response_started()          # the response that calls end_call
    h.driver.end_call()
    h.driver.response_ended()            # its bound: the greeting may still be playing
    await settle()
    h.driver.response_started()          # the goodbye is being said ...
    h.driver.audio(2000)
    await h.clock.advance(PLAYBACK_GRACE_S + 1)
    assert h.ended == []                 # ... and the earlier bound does not end the call
    h.driver.response_ended()
    await settle()
    assert h.ended == []                 # said, not yet reported played
    h.driver.playback_stopped()
    assert h.ended == ["end_call"]
