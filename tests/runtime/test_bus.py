from __future__ import annotations

import pytest

from flowspec.runtime.bus import (
    Bus,
    BusEvent,
    Metrics,
    NodeFailed,
    SessionEnded,
    SessionStarted,
)


def test_subscribers_get_events_of_their_kinds_and_subclasses() -> None:
    bus = Bus()
    everything: list[BusEvent] = []
    started: list[SessionStarted] = []
    bus.subscribe(everything.append)
    bus.subscribe(started.append, SessionStarted)
    first = SessionStarted(session_id="s1", graph="g", version=1)
    second = SessionEnded(session_id="s1", cancelled=False)
    bus.publish(first)
    bus.publish(second)
    assert everything == [first, second]
    assert started == [first]


def test_closing_a_subscription_stops_delivery() -> None:
    bus = Bus()
    got: list[BusEvent] = []
    with bus.subscribe(got.append, Metrics):
        bus.publish(Metrics(session_id="s", node_id="llm", values={"ttfb_ms": 80.0}))
    bus.publish(Metrics(session_id="s", node_id="llm", values={"ttfb_ms": 90.0}))
    assert len(got) == 1


def test_a_failing_handler_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    bus = Bus()
    got: list[BusEvent] = []

    def broken(event: BusEvent) -> None:
        raise ValueError("bad hook")

    bus.subscribe(broken)
    bus.subscribe(got.append)
    event = NodeFailed(session_id="s", node_id="n", error=ValueError("x"), fatal=False,
                       during="handle")
    bus.publish(event)
    assert got == [event]
    assert "bad hook" in caplog.text


async def test_listen_streams_events_and_drops_the_oldest_when_behind() -> None:
    bus = Bus()
    async with bus.listen(SessionStarted, maxsize=2) as queue:
        for n in range(3):
            bus.publish(SessionStarted(session_id=f"s{n}", graph="g", version=1))
        assert (await queue.get()).session_id == "s1"
        assert (await queue.get()).session_id == "s2"
    bus.publish(SessionStarted(session_id="late", graph="g", version=1))
    assert queue.empty()
