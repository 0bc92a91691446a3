import asyncio

import pytest

from flowspec.events.delivery import Delivery, Outgoing, PostFailed


class Receiver:
    """Answers each POST with the next status of `script` (then 200); PostFailed for None."""

    def __init__(self, *script: int | None) -> None:
        self.script = list(script)
        self.bodies: list[bytes] = []

    async def __call__(self, body: bytes, headers: dict[str, str]) -> int:
        self.bodies.append(body)
        status = self.script.pop(0) if self.script else 200
        if status is None:
            raise PostFailed("connection refused")
        return status


def event(n: int) -> Outgoing:
    return Outgoing("transcript", f"evt_{n}", str(n).encode())


def delivery(post: Receiver, *, capacity: int = 10, max_retries: int = 3,
             pauses: list[float] | None = None, lost: list[tuple[str, str]] | None = None
             ) -> Delivery:
    async def sleep(seconds: float) -> None:
        if pauses is not None:
            pauses.append(seconds)

    def settled(event: Outgoing, how: str) -> None:
        if lost is not None and how != "delivered":
            lost.append((event.id, how))

    return Delivery(post, lambda e: {"X-Id": e.id}, capacity=capacity, max_retries=max_retries,
                    backoff_s=0.5, sleep=sleep, on_settled=settled)


async def test_events_go_out_in_order() -> None:
    post = Receiver()
    d = delivery(post)
    for n in range(3):
        assert d.offer(event(n))
    await d.flush(1.0)
    assert post.bodies == [b"0", b"1", b"2"]
    assert d.tally.delivered == 3 and d.tally.by_type == {"transcript": 3}


async def test_failures_are_retried_with_doubling_pauses_then_given_up() -> None:
    pauses: list[float] = []
    lost: list[tuple[str, str]] = []
    post = Receiver(None, 503, 429, 500, 200)
    d = delivery(post, pauses=pauses, lost=lost)
    d.offer(event(0))
    d.offer(event(1))
    await d.flush(5.0)
    assert pauses == [0.5, 1.0, 2.0]          # three retries of event 0, then it is given up
    assert lost == [("evt_0", "failed")]
    assert post.bodies == [b"0"] * 4 + [b"1"]  # and the next event still goes out
    assert d.tally.failed == 1 and d.tally.delivered == 1 and d.tally.attempts == 5


async def test_a_client_error_is_not_retried() -> None:
    pauses: list[float] = []
    d = delivery(Receiver(400), pauses=pauses)
    d.offer(event(0))
    await d.flush(1.0)
    assert pauses == [] and d.tally.failed == 1 and "not retried" in d.tally.last_error


async def test_a_full_queue_drops_and_counts_without_waiting() -> None:
    lost: list[tuple[str, str]] = []
    d = delivery(Receiver(), capacity=2, lost=lost)
    assert [d.offer(event(n)) for n in range(4)] == [True, True, False, False]
    assert d.tally.dropped == 2 and lost == [("evt_2", "dropped"), ("evt_3", "dropped")]


async def test_flush_gives_up_at_its_budget_and_counts_the_rest() -> None:
    async def hang(body: bytes, headers: dict[str, str]) -> int:
        await asyncio.sleep(3600)
        return 200

    d = Delivery(hang, lambda e: {}, capacity=10, max_retries=3, backoff_s=0.5)
    for n in range(3):
        d.offer(event(n))
    await d.flush(0.05)
    assert d.pending == 0 and d.tally.dropped == 3 and d.tally.delivered == 0


async def test_an_event_in_flight_when_the_loop_is_cancelled_is_sent_once() -> None:
    started, answer = asyncio.Event(), asyncio.Event()
    calls: list[bytes] = []

    async def slow(body: bytes, headers: dict[str, str]) -> int:
        calls.append(body)
        started.set()
        await answer.wait()
        return 200

    d = Delivery(slow, lambda e: {}, capacity=10, max_retries=0, backoff_s=0.5)
    d.offer(event(0))
    d.offer(event(1))
    runner = asyncio.create_task(d.run())
    await started.wait()
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    answer.set()
    await d.flush(1.0)
    assert calls == [b"0", b"1"] and d.tally.delivered == 2


async def test_an_event_in_flight_past_the_budget_is_dropped() -> None:
    async def hang(body: bytes, headers: dict[str, str]) -> int:
        await asyncio.sleep(3600)
        return 200

    d = Delivery(hang, lambda e: {}, capacity=10, max_retries=0, backoff_s=0.5)
    d.offer(event(0))
    runner = asyncio.create_task(d.run())
    await asyncio.sleep(0)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    await d.flush(0.05)
    assert d.tally.dropped == 1 and d.pending == 0
