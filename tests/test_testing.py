from __future__ import annotations

from flowspec.conversation.events import CallEnding, CallStarted
from flowspec.frames import TextFrame
from flowspec.runtime.bus import SessionEnded, SessionStarted
from flowspec.spec.compiled import Overflow, PortRef
from flowspec.testing import RecorderSpec, graph, run_graph


def test_graph_builds_chains_with_default_and_named_ports() -> None:
    g = graph({"a": "x", "b": "y", "c": "z"}, ["a -> b.left -> c", "a.audio -> c.sink"],
              capacity=8, overflow=Overflow.DROP_OLDEST, entry="a")
    pairs = [(e.source, e.target) for e in g.edges]
    assert pairs == [
        (PortRef("a", "out"), PortRef("b", "left")),
        (PortRef("b", "out"), PortRef("c", "in")),
        (PortRef("a", "audio"), PortRef("c", "sink")),
    ]
    assert {e.capacity for e in g.edges} == {8}
    assert g.nodes["b"].type == "y"
    assert g.entry == "a"


async def test_run_graph_collects_recorder_frames_and_bus_events() -> None:
    g = graph(
        {"src": "test.passthrough", "tap": RecorderSpec.model_construct(forward=True),
         "sink": "test.recorder"},
        ["src -> tap -> sink"],
    )
    inputs = [("src", TextFrame(text=t)) for t in ("hello", "world")]
    run = await run_graph(g, inputs)
    assert [f.text for f in run.frames("sink", TextFrame)] == ["hello", "world"]
    assert run.frames("tap") == run.frames("sink")
    assert [type(e) for e in run.events] == [SessionStarted, CallStarted, CallEnding, SessionEnded]
    assert run.events_of(SessionEnded)[0].session_id == run.session_id


async def test_run_graph_can_cancel_instead_of_draining() -> None:
    g = graph({"src": "test.passthrough", "sink": "test.recorder"}, ["src -> sink"])
    run = await run_graph(g, [("src", TextFrame(text="x"))], cancel=True)
    (ended,) = run.events_of(SessionEnded)
    assert isinstance(ended, SessionEnded) and ended.cancelled
