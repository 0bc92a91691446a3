"""Running scenarios: each one a call of the spec against its own in-process emulator, with the
scenario's caller as the entry transport and the model nodes' traffic recorded, then its
expectations checked turn by turn and at the end.

Scenarios run in parallel (a bounded number at a time). The emulator speaks on a fast clock
(`pace`: wall seconds per second of reply audio), so a call takes a fraction of its real-time
length. With `live`, model nodes keep their own endpoints (the configured provider) and the
scenarios' scripted model rules are skipped; what the expectations check is then the real model.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal, cast

from flowspec.audio import AudioFormat
from flowspec.conversation.clock import ManualClock
from flowspec.conversation.events import FlowTransition, FlowTransitionRefused
from flowspec.errors import Diagnostic, FlowspecError
from flowspec.events.webhook import WebhookNode
from flowspec.runtime.bus import Bus, BusEvent, FunctionCallEnded
from flowspec.scenario.caller import ScenarioCaller, ScenarioError
from flowspec.scenario.expect import Observed, check
from flowspec.scenario.load import LoadedScenario, LoadedTestFile
from flowspec.scenario.model import Expectation, Scenario
from flowspec.scenario.record import Recording
from flowspec.spec.compiled import CompiledGraph

PACE = 0.05
"""The emulator's clock when timing is compressed: 20 times faster than real time."""
PARALLEL = 8
Encoding = Literal["pcm16", "pcmu", "pcma"]


@dataclass(slots=True)
class ScenarioResult:
    file: str
    name: str
    failures: list[Diagnostic] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time the scenario took."""
    call_seconds: float = 0.0
    """How long the call would last in real time: the caller's speech and silences and the
    bot's reply audio."""
    recording: Recording | None = None
    """The call's provider traffic."""
    heard: list[Any] = field(default_factory=list)
    """What reached the caller, per turn (`flowspec.scenario.caller.Heard`)."""

    @property
    def ok(self) -> bool:
        return not self.failures


async def run_file(loaded: LoadedTestFile, *, keyword: str | None = None, pace: float = PACE,
                   live: bool = False, parallel: int = PARALLEL,
                   record: Path | None = None) -> list[ScenarioResult]:
    """Run the scenarios of a loaded test file (those whose name holds `keyword`). With
    `record`, each scenario's provider traffic is written there (`NAME-N.jsonl`)."""
    chosen = [s for s in loaded.scenarios
              if keyword is None or keyword.lower() in s.scenario.name.lower()]
    gate = asyncio.Semaphore(parallel)

    async def one(item: LoadedScenario) -> ScenarioResult:
        path = None if record is None else \
            record / f"{loaded.path.name.removesuffix('.test.yaml')}-{item.index + 1}.jsonl"
        async with gate:
            return await run_scenario(loaded, item, pace=pace, live=live, record=path)

    return list(await asyncio.gather(*(one(item) for item in chosen)))


async def run_scenario(loaded: LoadedTestFile, item: LoadedScenario, *, pace: float = PACE,
                       live: bool = False, record: Path | None = None) -> ScenarioResult:
    began = time.monotonic()
    result = ScenarioResult(str(loaded.path), item.scenario.name)
    try:
        if live:
            call = await _call(loaded, item, loaded.graph)
        else:
            call = await _emulated(loaded, item, pace)
    except (ScenarioError, FlowspecError) as exc:
        result.failures.append(_at(loaded, f"/scenarios/{item.index}", "test.failed",
                                   f"the call could not go on: {exc}"))
        result.seconds = time.monotonic() - began
        return result
    if record is not None:
        call.recording.save(record)
    result.recording = call.recording
    result.heard = call.caller.heard
    result.failures.extend(_checked(loaded, item, call))
    result.seconds = time.monotonic() - began
    result.call_seconds = call.call_seconds
    return result


async def _emulated(loaded: LoadedTestFile, item: LoadedScenario, pace: float) -> _Call:
    from flowspec.emulator import Emulator
    from flowspec.emulator.script import Script
    from flowspec.server.offline import point_at

    script = item.script if isinstance(item.script, Script) else Script()
    heard = tuple(_heard(item.scenario))
    if not script.audio_transcripts and heard:
        script = Script(rules=script.rules, audio_transcripts=heard)
    replay = str(loaded.path.parent / item.scenario.replay) if item.scenario.replay else None
    async with Emulator.start(pace=pace, script=script, keep_records=True,
                              replay=replay) as emulator:
        graph = point_at(loaded.graph, list(loaded.graph.nodes), emulator.http_base_url,
                         emulator.ws_base_url)
        return await _call(loaded, item, graph)


def _heard(scenario: Scenario) -> list[str]:
    """What the emulator hears in each spoken turn, in order."""
    words: list[str] = []
    for turn in scenario.turns:
        if turn.say is not None:
            words.append(turn.say)
        elif turn.barge_in is not None:
            words.append(turn.barge_in.say)
        elif turn.audio is not None:
            words.append(turn.heard or "(audio)")
    return words


@dataclass(slots=True)
class _Call:
    caller: ScenarioCaller
    recording: Recording
    events: list[tuple[int, BusEvent]]
    marks: list[int]
    """Per turn: how many recorded messages there were when it began."""
    ended: str
    call_seconds: float
    webhooks: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    """(turn, event) of each event the spec's webhooks would have posted."""
    initial: str | None = None
    """The flow's first state (None: the spec has no flow)."""


async def _call(loaded: LoadedTestFile, item: LoadedScenario, graph: CompiledGraph) -> _Call:
    from flowspec.runtime.session import Session

    recording = Recording(spec=graph.name)
    events: list[tuple[int, BusEvent]] = []
    marks: list[int] = []
    holder: list[ScenarioCaller] = []

    def caller_of(ctx: Any) -> ScenarioCaller:
        caller = ScenarioCaller(ctx, turns=item.scenario.turns, base=loaded.path.parent,
                                audio=_audio_of(graph), on_turn=lambda: marks.append(
                                    len(recording.entries)))
        holder.append(caller)
        return caller

    bus = Bus()
    bus.subscribe(lambda event: events.append((len(marks) - 1, event)))
    sent: list[tuple[int, dict[str, Any]]] = []

    async def keep(body: bytes, headers: dict[str, str]) -> int:
        # A scenario's webhooks post nowhere: their events are kept for `webhook:` checks.
        sent.append((len(marks) - 1, json.loads(body)))
        return 204

    registry = _registry(graph, caller_of, recording)
    registry.register("events.webhook", partial(WebhookNode, post=keep))
    session = Session(graph, registry=registry, bus=bus, clock=ManualClock(),
                      variables=item.scenario.variables)
    async with session:
        await session.wait()
    [caller] = holder
    seconds = sum(h.audio_ms for h in caller.heard) / 1000 + _spoken_seconds(item.scenario)
    flow = getattr(graph.spec, "flow", None)
    return _Call(caller, recording, events, marks, session.close_reason, seconds, sent,
                 initial=flow.initial if flow is not None else None)


def _spoken_seconds(scenario: Scenario) -> float:
    from flowspec.emulator import voice

    total = 0.0
    for turn in scenario.turns:
        words = turn.say or (turn.barge_in.say if turn.barge_in else None)
        if words:
            total += voice.duration_ms(words) / 1000
        total += turn.silence_s or 0.0
    return total


def _audio_of(graph: CompiledGraph) -> AudioFormat | None:
    """The caller's audio format: the entry transport's, or None for a text transport."""
    if graph.entry is None or not any("audio" in e.kinds for e in graph.edges_from(graph.entry)):
        return None
    spec = graph.nodes[graph.entry]
    if spec.type == "transport.twilio":
        return AudioFormat("pcmu", 8000, 1)
    audio = getattr(spec, "audio", None)
    encoding = {"pcm16": "pcm16", "pcmu": "pcmu", "pcma": "pcma"}.get(
        str(getattr(audio, "encoding", "pcm16")))
    if encoding is None:
        return None
    return AudioFormat(cast(Encoding, encoding), int(getattr(audio, "sample_rate", 24000)),
                       int(getattr(audio, "channels", 1)))


def _registry(graph: CompiledGraph, caller: Callable[[Any], ScenarioCaller],
              recording: Recording) -> Any:
    from flowspec.server.app import with_entry

    return with_entry(recording.registry(), graph, caller)


# -- checking -----------------------------------------------------------------------------------


def _checked(loaded: LoadedTestFile, item: LoadedScenario, call: _Call) -> list[Diagnostic]:
    scenario, base = item.scenario, f"/scenarios/{item.index}"
    failures: list[Diagnostic] = []
    if call.caller.failure is not None:
        where = max(0, len(call.caller.heard) - 1)
        return [_at(loaded, f"{base}/turns/{where}", "test.failed", call.caller.failure)]
    for index, turn in enumerate(scenario.turns):
        if index >= len(call.caller.heard):
            if turn.expect:
                failures.append(_at(loaded, f"{base}/turns/{index}", "test.not-reached",
                                    f"the call ended before this turn ({call.ended})"))
            break
        seen = _observed(call, index)
        failures.extend(_first(loaded, f"{base}/turns/{index}/expect", turn.expect, seen))
    failures.extend(_first(loaded, f"{base}/expect", scenario.expect, _observed(call, None)))
    return failures[:1]


def _first(loaded: LoadedTestFile, pointer: str, expectations: Sequence[Expectation],
           seen: Observed) -> list[Diagnostic]:
    for number, expectation in enumerate(expectations):
        problem = check(expectation, seen)
        if problem is not None:
            return [_at(loaded, f"{pointer}/{number}", f"expect.{expectation.kind}", problem)]
    return []


def _observed(call: _Call, turn: int | None) -> Observed:
    """What the call did in `turn` (None: in all of it)."""
    heard = call.caller.heard if turn is None else [call.caller.heard[turn]]
    seen = Observed(said=[w for h in heard for w in h.said],
                    errors=[e for h in heard for e in h.errors],
                    late_audio_ms=sum(h.late_audio_ms for h in heard),
                    interrupted=sum(len(h.interrupted_items) for h in heard))
    for index, event in call.events:
        if (turn is None or index == turn) and isinstance(event, FunctionCallEnded):
            try:
                arguments = json.loads(event.arguments) if event.arguments else {}
            except ValueError:
                arguments = event.arguments
            seen.tools.append((event.name, arguments))
    entries = call.recording.entries
    if turn is not None:
        start = call.marks[turn] if turn < len(call.marks) else len(entries)
        stop = call.marks[turn + 1] if turn + 1 < len(call.marks) else len(entries)
        entries = entries[start:stop]
    seen.updates = [e.event.get("session") or {} for e in entries
                    if e.dir == "out" and e.event.get("type") == "session.update"]
    provider, arrived = call.recording.audio_arrivals(), call.caller.audio_arrivals
    seen.latencies_ms = [(a - p) * 1000 for p, a in zip(provider, arrived, strict=False)]
    if turn is None or turn == len(call.caller.heard) - 1:
        seen.ended = call.ended
    seen.webhooks = [event for index, event in call.webhooks if turn is None or index == turn]
    if call.initial is not None:
        seen.state, seen.path = call.initial, [call.initial]
        for index, event in call.events:
            if turn is not None and index > turn:
                break
            if isinstance(event, FlowTransition | FlowTransitionRefused):
                seen.state = event.target if isinstance(event, FlowTransition) else event.source
                seen.path.append(seen.state)
    return seen


def _at(loaded: LoadedTestFile, pointer: str, code: str, message: str) -> Diagnostic:
    return loaded.document.diagnostic(code, message, pointer, key=True)


def run_paths(paths: Sequence[Path], **options: Any) -> list[ScenarioResult]:
    """Load and run every test file (for callers without an event loop)."""
    from flowspec.scenario.load import load_test_file

    async def everything() -> list[ScenarioResult]:
        results: list[ScenarioResult] = []
        for path in paths:
            results.extend(await run_file(load_test_file(path), **options))
        return results

    return asyncio.run(everything())
