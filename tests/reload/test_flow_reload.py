"""Hot reload of a flow: a state's instructions reach a live call in that state as one
session.update, a call in another state gets nothing, a new state reaches new calls only, and
`flowspec plan` says which is which."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowspec.cli import main

from .conftest import SCRIPT, serving, wait

ROOT = Path(__file__).resolve().parents[2]
BOOKING = (ROOT / "specs" / "restaurant-booking.yaml").read_text()
MOVES = SCRIPT + """\
  - when: {contains: book}
    call: {name: wants_booking}
"""
NEW_COLLECT = "Ask for the party size and the time. Mention the terrace."
COLLECT_TEXT = """>
        Ask how many people are coming and at what time, then check availability. When there
        is no table, say so and offer another time or a smaller party.
"""
INSTRUCTIONS = {"flow": {"states": {"collect": {"instructions": NEW_COLLECT}}}}
NEW_STATE = {"flow": {"states": {
    "waitlist": {"instructions": "Offer the waiting list.", "final": True},
    "collect": {"transitions": {"check_availability": {
        "on": "result.status", "cases": {"available": "confirm", "full": "waitlist"},
        "set": {"people": "arguments.people", "time": "arguments.time"}}}}}}}


def test_plan_shows_per_state_where_a_flow_change_applies(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(BOOKING)
    instructions = tmp_path / "instructions.yaml"
    instructions.write_text(BOOKING.replace(COLLECT_TEXT, NEW_COLLECT + "\n"))
    assert main(["plan", str(old), str(instructions)]) == 0
    out = capsys.readouterr().out
    assert ("/flow/states/collect/instructions  [live] live: live calls now in state 'collect' "
            "get it at once, the others as they enter it") in out
    waitlist = tmp_path / "waitlist.yaml"
    waitlist.write_text(BOOKING.replace("cases: {available: confirm, full: collect}",
                                        "cases: {available: confirm, full: waitlist}")
                        .replace("    done:\n", "    waitlist:\n      instructions: Offer the "
                                 "waiting list.\n      final: true\n    done:\n"))
    assert main(["plan", str(old), str(waitlist)]) == 0
    out = capsys.readouterr().out
    later = "new_sessions: read when a call begins (live calls keep the states and " \
        "transitions they began with)"
    assert f"/flow/states/waitlist  [next_session] {later}" in out
    assert f"/flow/states/collect/transitions/check_availability/cases/full  [next_session] " \
        f"{later}" in out


async def test_a_state_change_reaches_the_live_calls_in_that_state(tmp_path: Path) -> None:
    async with serving(tmp_path, BOOKING, script=MOVES) as s:
        collecting, _hello, in_collect = await s.call()
        greeting, _hello, in_greet = await s.call()
        await s.say(collecting, in_collect, "I would like to book a table.")
        async with wait():
            await in_collect.wait_received("session.update", count=2)  # the move
        before = {id(r): len(r.received_of("session.update")) for r in (in_collect, in_greet)}
        status, body = await s.patch(INSTRUCTIONS)
        assert status == 200, body
        assert [(c["pointer"], c["applies"]) for c in body["plan"]["changes"]] == [
            ("/flow/states/collect/instructions", "live")]
        async with wait():
            await in_collect.wait_received("session.update", count=before[id(in_collect)] + 1)
        update = in_collect.received_of("session.update")[-1]["session"]
        assert set(update) <= {"type", "instructions"}
        assert str(update["instructions"]).endswith(NEW_COLLECT)
        # The call still greeting is not in `collect`: nothing reaches it until it enters.
        assert len(in_greet.received_of("session.update")) == before[id(in_greet)]
        await s.say(greeting, in_greet, "Book a table please.")
        async with wait():
            await in_greet.wait_received("session.update", count=before[id(in_greet)] + 1)
        entered = in_greet.received_of("session.update")[-1]["session"]
        assert str(entered["instructions"]).endswith(NEW_COLLECT)
        # A new state with a transition to it reaches new calls only.
        updates = len(in_collect.received_of("session.update"))
        status, body = await s.patch(NEW_STATE)
        assert status == 200, body
        assert {c["applies"] for c in body["plan"]["changes"]} == {"new_sessions"}
        assert len(in_collect.received_of("session.update")) == updates
        assert not collecting.closed and not greeting.closed  # live calls go on
