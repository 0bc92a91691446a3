"""Hot reload of the conversation: a new opening reaches new calls, a new `idle` reaches live
calls from their next silence, and `flowspec plan` says which is which."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from flowspec.conversation.clock import ManualClock, settle
from flowspec.reload.diff import diff
from flowspec.reload.plan import build_plan
from flowspec.spec.compile import compile_text
from flowspec.spec.load import parse

from .conftest import VOICE, serving, wait

CONVERSATION = VOICE + """\
conversation:
  opening: {say: Hello.}
  idle: {after_s: 8, say: Still there?, max_prompts: 9}
"""
CHANGE = {"conversation": {"opening": {"say": "Welcome back."},
                           "idle": {"after_s": 3, "say": "Hello again?"}}}


async def said(ws: aiohttp.ClientWebSocketResponse, count: int,
               seen: list[str]) -> list[str]:
    """The bot's final transcripts, read until there are `count` of them."""
    async with wait():
        while len(seen) < count:
            raw = await ws.receive()
            if raw.type is not aiohttp.WSMsgType.TEXT:
                continue  # the reply's audio
            message: dict[str, Any] = json.loads(raw.data)
            if message.get("type") == "transcript" and message.get("role") == "assistant" \
                    and message.get("final"):
                seen.append(str(message["text"]))
    return seen


def test_plan_shows_where_each_conversation_change_applies() -> None:
    changed = CONVERSATION.replace("Hello.", "Welcome back.").replace("after_s: 8", "after_s: 3")
    old = compile_text(CONVERSATION, env={}).raise_for_errors()
    new = compile_text(changed, env={}).raise_for_errors()
    plan = build_plan(old, new, diff(parse(CONVERSATION).data, parse(changed).data))
    where = {c.change.pointer: (c.applies, c.reason) for c in plan.changes}
    assert where == {
        "/conversation/opening/say": ("new_sessions", "read when a call begins"),
        "/conversation/idle/after_s": ("live", "from each live call's next silence"),
    }
    assert plan.conversation is not None and plan.conversation.idle is not None
    # A spec that had no conversation gains one for new calls only: live calls have no driver.
    plain = compile_text(VOICE, env={}).raise_for_errors()
    added = build_plan(plain, old, diff(parse(VOICE).data, parse(CONVERSATION).data))
    assert {c.applies for c in added.changes} == {"new_sessions"} and added.conversation is None


async def test_idle_reaches_a_live_call_and_the_opening_new_ones(tmp_path: Path) -> None:
    clock = ManualClock()
    async with serving(tmp_path, CONVERSATION, clock=clock) as s:
        first, _hello, _record = await s.call()
        heard: list[str] = []
        assert await said(first, 1, heard) == ["Hello."]
        await settle()
        status, body = await s.patch(CHANGE)
        assert status == 200, body
        applies = {c["pointer"]: c["applies"] for c in body["plan"]["changes"]}
        assert applies == {"/conversation/opening/say": "new_sessions",
                           "/conversation/idle/after_s": "live",
                           "/conversation/idle/say": "live"}
        # The silence counting when the change came keeps its length (and the page's replies
        # count as heard once their audio's length has passed).
        await clock.advance(7)
        await settle()
        assert heard == ["Hello."]
        await clock.advance(2)
        assert await said(first, 2, heard) == ["Hello.", "Hello again?"]
        await settle()
        await clock.advance(2 + 3)  # heard, then the new, shorter silence
        assert await said(first, 3, heard) == ["Hello.", "Hello again?", "Hello again?"]
        second, _hello, _record = await s.call()
        assert await said(second, 1, []) == ["Welcome back."]
