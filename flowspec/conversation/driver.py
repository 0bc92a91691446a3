"""The conversation driver: one call's opening, silences, longest duration and ending, run for
the model node the spec's `conversation:` belongs to.

The model node tells the driver what happens (the model is ready, a response started, produced
audio and ended, the transport started and stopped playing it, the caller spoke or typed, the
model called `end_call`), and the driver asks the node, through its `Voice`, to say something.
Everything timed runs on the call's `Clock`, so a test drives an eight-second silence by moving
a manual clock.

When the bot has finished speaking is what the caller heard, not what the model sent: after a
response with audio, a transport that reports playback (`reports_playback`) is waited for,
bounded by the audio's own length plus `PLAYBACK_GRACE_S` in case its reports stop. In a
cascade the model's text is spoken after the model is done: the speech node is waited for too
(`SpokenText.speaking`), and then what it sent, as the transport plays it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from flowspec import limits
from flowspec.conversation.clock import Clock
from flowspec.conversation.template import render
from flowspec.spec.models.conversation import ConversationSpec, Utterance
from flowspec.spec.models.flow import ActionSpec
from flowspec.spec.models.tools import ToolNodeSpec

if TYPE_CHECKING:
    from flowspec.conversation.call import Call

log = logging.getLogger("flowspec.conversation")

PLAYBACK_GRACE_S = 1.5
"""How long past its audio's length a reply may take to be reported played."""
SPEECH_BOUND_S = 60.0
"""The longest a cascade's speech node may take to say a reply (it reports when it is done)."""
HANGUP_BOUND_S = 30.0
"""The longest a call asked to end waits for its last words to be said and played."""

Purpose = Literal["opening", "idle", "closing", "goodbye", "flow"]


@dataclass(frozen=True, slots=True)
class Words:
    """What the bot is asked to say: `say` exactly, or answer `prompt`, or (neither) whatever
    its instructions make it say."""

    purpose: Purpose
    say: str | None = None
    prompt: str | None = None
    interruptible: bool = True


def end_call_reason(arguments: str) -> str:
    """The `reason` a model gave `end_call` (its arguments are model-written: bounded)."""
    try:
        value = limits.loads(arguments, max_digits=limits.PROVIDER_MAX_NUMBER_DIGITS) \
            if arguments.strip() else {}
    except ValueError:
        return ""
    return str(value.get("reason") or "")[:200] if isinstance(value, dict) else ""


SAY_PREFIX = "Say exactly the following words, and nothing else, then stop: "
"""How a Realtime model is asked for exact words: the words follow as a JSON string, so the
emulator (and a reader of a recording) can take them back out unambiguously."""


def say_instruction(text: str) -> str:
    return SAY_PREFIX + json.dumps(text, ensure_ascii=False)


def said_words(instructions: str) -> str | None:
    """The exact words `instructions` asks for, or None when it asks for none."""
    if not instructions.startswith(SAY_PREFIX):
        return None
    try:
        words = json.loads(instructions[len(SAY_PREFIX):])
    except ValueError:
        return None
    return words if isinstance(words, str) else None


class Voice(Protocol):
    """What a model node does for its conversation."""

    async def speak(self, words: Words) -> None:
        """Start a response saying `words` (after the response in progress, if any)."""
        ...


class EndCallTool(ToolNodeSpec):
    """The built-in `end_call` as a tool definition (never a node of a spec)."""

    type: Literal["conversation.end_call"] = "conversation.end_call"


class Driver:
    """One call's conversation. `conversation` is read again at each decision, so a live
    change to `idle` or `closing` applies from the next silence on."""

    def __init__(self, call: Call, voice: Voice) -> None:
        self._call = call
        self._voice = voice
        self._clock: Clock = call.clock
        self._wake = asyncio.Event()
        self._opening_at: float | None = None
        self._idle_at: float | None = None
        self._end_at: float | None = None
        self._heard_at: float | None = None  # the latest a reply may be reported played
        self._hangup_at: float | None = None
        self._prompts = 0
        self._responding = False
        self._playing = False
        self._awaiting_playback = False
        self._audio_ms = 0.0
        self._responses = 0
        self._ending: str | None = None
        self._ending_after = 0  # responses started before the ending was asked
        self._muted = False
        self._ready = False
        self._queue: list[Words] = []
        call.spoken.on_quiet = self.speech_stopped

    @property
    def spec(self) -> ConversationSpec:
        conversation = self._call.conversation
        return conversation if conversation is not None else ConversationSpec()

    @property
    def muted(self) -> bool:
        """True while words that may not be interrupted play: the caller's audio is dropped."""
        return self._muted

    # -- what the tools list gains -----------------------------------------------------------

    def end_call_tool(self) -> EndCallTool | None:
        end_call = self.spec.end_call
        if end_call is None or not end_call.enabled:
            return None
        return EndCallTool(name=end_call.name, description=end_call.description,
                           parameters={"type": "object", "properties": {
                               "reason": {"type": "string",
                                          "description": "Why the call ends, in a few words."}}})

    def is_end_call(self, name: str) -> bool:
        tool = self.end_call_tool()
        return tool is not None and name == tool.name

    # -- events from the model node ----------------------------------------------------------

    def model_ready(self) -> None:
        """The model's session is configured (the first time only: a reconnect is not a new
        call). Starts the clock on the call's longest duration and the opening."""
        if self._ready:
            return
        self._ready = True
        now = self._clock.now()
        spec = self.spec
        if spec.max_duration_s is not None:
            self._end_at = now + spec.max_duration_s
        opening = spec.opening
        if opening is not None and opening.mode == "speak_first":
            self._opening_at = now + opening.delay_ms / 1000.0
        else:
            self._arm_idle()
        self._wake.set()

    def user_active(self) -> None:
        """The caller spoke or typed: a silence starts over, and so does the prompt count."""
        self._idle_at = None
        self._prompts = 0
        self._wake.set()

    def response_started(self) -> None:
        self._responding = True
        self._responses += 1
        self._audio_ms = 0.0
        self._idle_at = None
        # The bound on an earlier reply's playback is this one's to set when it ends: left
        # running, it would take this reply as heard while it is still being said.
        self._heard_at = None

    def audio(self, duration_ms: float) -> None:
        self._audio_ms += duration_ms

    def response_ended(self) -> None:
        if not self._responding:
            return
        self._responding = False
        speaking = self._call.spoken.speaking
        if self._playing or speaking or (self._call.playback_reported and self._audio_ms > 0):
            self._awaiting_playback = True
            wait_s = SPEECH_BOUND_S if speaking else self._audio_ms / 1000.0
            self._heard_at = self._clock.now() + wait_s + PLAYBACK_GRACE_S
            self._wake.set()
        else:
            self._finished()

    def playback_started(self) -> None:
        self._playing = True

    def playback_stopped(self) -> None:
        self._playing = False
        self._maybe_heard()

    def speech_stopped(self) -> None:
        """A cascade's speech node said all it had; a reporting transport may still play it,
        for as long as what was sent lasts (bounded)."""
        if self._awaiting_playback and not self._responding:
            wait_s = self._call.spoken.unplayed_ms() / 1000.0
            self._heard_at = self._clock.now() + wait_s + PLAYBACK_GRACE_S
            self._wake.set()
        self._maybe_heard()

    def _maybe_heard(self) -> None:
        spoken = self._call.spoken
        if not self._awaiting_playback or self._responding or self._playing or spoken.speaking:
            return
        if self._call.playback_reported and spoken.unplayed_ms() > 0:
            return  # sent, and not yet reported played
        self._finished()

    def end_call(self, reason: str = "") -> bool:
        """The model called `end_call`. Returns whether the model should answer the tool's
        result (then its answer is the goodbye); with a `goodbye:` line the driver says that
        instead. Either way the call ends once those words have been heard."""
        goodbye = self.spec.end_call.goodbye if self.spec.end_call is not None else None
        log.info("session %s: the model ended the call%s", self._call.session_id,
                 f" ({reason})" if reason else "")
        self._end_after_words("end_call")
        if goodbye:
            self._say(Words("goodbye", say=self._call.fill(goodbye), interruptible=False))
            return False
        return True

    def enter_state(self, actions: Sequence[ActionSpec], values: Mapping[str, Any]) -> None:
        """A flow state's `on_enter`: its words are said in order; with `end_call` the call
        ends once they have been heard (at once, after the reply in progress, without any)."""
        ends = any(action.end_call for action in actions)
        words = [action for action in actions if action.say or action.prompt]
        if ends:
            self._end_after_words("end_call")
            if not words:
                self._ending_after -= 1  # the reply in progress is the last one
        for action in words:
            self._say(Words("flow", say=render(action.say, values) if action.say else None,
                            prompt=render(action.prompt, values) if action.prompt else None,
                            interruptible=not ends))
        if ends and not words and not self._responding and not self._awaiting_playback:
            self._hang_up()

    # -- the timers --------------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for the next deadline and act on it, for the life of the call."""
        while True:
            while self._queue:
                await self._speak(self._queue.pop(0))
            deadline = min((t for t in (self._opening_at, self._idle_at, self._end_at,
                                        self._heard_at, self._hangup_at) if t is not None),
                           default=None)
            self._wake.clear()
            if deadline is None:
                await self._wake.wait()
                continue
            sleeper = asyncio.ensure_future(self._clock.sleep_until(deadline))
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((sleeper, woken), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (sleeper, woken):
                    waiter.cancel()
            if sleeper.done() and not sleeper.cancelled():
                await self._due(self._clock.now())

    async def _due(self, now: float) -> None:
        if self._hangup_at is not None and now >= self._hangup_at:
            self._hangup_at = None
            self._hang_up()
            return
        if self._heard_at is not None and now >= self._heard_at:
            self._heard_at = None
            if self._awaiting_playback and not self._responding:
                log.debug("session %s: no playback report; taking the reply as heard",
                          self._call.session_id)
                self._playing = False
                self._finished()
        if self._opening_at is not None and now >= self._opening_at:
            self._opening_at = None
            opening = self.spec.opening
            if opening is not None:
                await self._speak(self._words("opening", opening,
                                                    interruptible=opening.interruptible))
        if self._end_at is not None and now >= self._end_at:
            self._end_at = None
            closing = self.spec.closing
            if closing is not None and (closing.say or closing.prompt):
                self._end_after_words("max_duration")
                await self._speak(self._words("closing", closing, interruptible=False))
            else:
                self._ending = "max_duration"
                self._hang_up()
            return
        if self._idle_at is not None and now >= self._idle_at:
            self._idle_at = None
            await self._silence()

    async def _silence(self) -> None:
        idle = self.spec.idle
        if idle is None or self._ending is not None:
            return
        self._prompts += 1
        if self._prompts <= idle.max_prompts:
            log.info("session %s: silent caller, prompt %d of %d", self._call.session_id,
                     self._prompts, idle.max_prompts)
            await self._speak(self._words("idle", idle))
            return
        if idle.then == "wait":
            return
        if idle.goodbye:
            self._end_after_words("idle")
            await self._speak(Words("goodbye", say=self._call.fill(idle.goodbye),
                                          interruptible=False))
        else:
            self._ending = "idle"
            self._hang_up()

    # -- helpers -----------------------------------------------------------------------------

    def _words(self, purpose: Purpose, said: Utterance, *, interruptible: bool = True) -> Words:
        return Words(purpose, say=self._call.fill(said.say) if said.say else None,
                     prompt=self._call.fill(said.prompt) if said.prompt else None,
                     interruptible=interruptible)

    def _say(self, words: Words) -> None:
        # end_call arrives while the node handles a model event: the words are said from the
        # driver's own task, after that handling.
        self._queue.append(words)
        self._wake.set()

    def _end_after_words(self, reason: str) -> None:
        if self._ending is None:
            self._ending = reason
            self._ending_after = self._responses
            self._hangup_at = self._clock.now() + HANGUP_BOUND_S
            self._idle_at = None
            self._wake.set()

    def _arm_idle(self) -> None:
        idle = self.spec.idle
        if idle is not None and self._ending is None:
            self._idle_at = self._clock.now() + idle.after_s
            self._wake.set()

    def _finished(self) -> None:
        """The bot's words have been heard."""
        self._awaiting_playback = False
        self._heard_at = None
        self._muted = False
        if self._ending is not None:
            if self._responses > self._ending_after:
                self._hang_up()
            return
        self._arm_idle()

    async def _speak(self, words: Words) -> None:
        self._muted = not words.interruptible
        self._idle_at = None
        await self._voice.speak(words)

    def _hang_up(self) -> None:
        reason = self._ending or "ended"
        self._hangup_at = None
        self._call.end(reason, _DETAILS.get(reason, ""))


_DETAILS = {
    "end_call": "The bot ended the call.",
    "idle": "The call ended after a long silence.",
    "max_duration": "The call reached its longest allowed duration.",
}
