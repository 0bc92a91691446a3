"""The cascade benchmark's harness: both sides run the same number of times, interleaved, a run
that fails is reported and never run again, a hop a side cannot produce is "not measured" with
the reason its run found, and every number of the cascade rows comes from the results.

No side is really run here: `side_by_side` is given a stand-in for running one, which builds
that side's result from made-up stamps through the same `result` the real sides use.
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path
from typing import Any

import pytest

from tests.bench.test_report import _perturbed, allowed_numbers, bench, fixed_numbers

TURNS, WARMUP = 12, 2


def stamps(rng: random.Random, scale: float, *, speech: bool = True) -> Any:
    """One run's stamps: every turn's seams a little apart, `scale` ms per hop on average."""
    common = bench("_cascade_common")
    s = common.Stamps()
    t = 100.0
    for _ in range(WARMUP + TURNS):
        def hop() -> float:
            return scale * rng.uniform(0.5, 1.5) / 1000

        s.commits.append(t)
        s.finals.append(t := t + 0.002)
        s.handed.append(t := t + hop())
        s.creates.append(t := t + hop())
        s.boundaries.append(t := t + 0.001)
        if speech:
            s.speech_starts.append(t := t + hop())
            s.speech_sent.append(t := t + hop())
        s.last_audio.append(t := t + 0.02)
        t += 1.0
    return s


def args(reps: int = 3, no_pipecat: bool = False) -> argparse.Namespace:
    return argparse.Namespace(reps=reps, turns=TURNS, warmup=WARMUP, no_pipecat=no_pipecat,
                              worker="lean")


class Sides:
    """Stands in for running one side: records the calls, fails where told to."""

    def __init__(self, seed: int = 0, fail: set[tuple[str, int]] | None = None,
                 no_speech: set[str] | None = None) -> None:
        self.rng = random.Random(seed)
        self.calls: list[str] = []
        self.fail = fail or set()
        self.no_speech = no_speech or set()

    def __call__(self, side: str, a: argparse.Namespace) -> dict[str, Any]:
        self.calls.append(side)
        if (side, self.calls.count(side)) in self.fail:
            raise RuntimeError(f"{side} exited 1: it broke")
        scale = 0.2 if side == "flowspec" else 1.5
        params = {"pipecat_version": "1.14.0"} if side == "pipecat" else {}
        result: dict[str, Any] = bench("_cascade_common").result(
            side, stamps(self.rng, scale, speech=side not in self.no_speech), a.turns,
            a.warmup, self.rng.uniform(1, 10) * a.turns / 1000, **params)
        return result


@pytest.fixture
def peer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Pipecat's interpreter, present (a file is enough: nothing runs it)."""
    python = tmp_path / "python"
    python.touch()
    monkeypatch.setattr(bench("cascade"), "PIPECAT_PY", python)
    return python


def results(cascade: dict[str, Any]) -> dict[str, Any]:
    """What run_all.py records for a run of the cascade part alone."""
    return {"reps": cascade["reps"], "smoke": False, "parts": ["cascade"], "errors": {},
            "part_s": {"cascade": 12.5}, "part_load": {"cascade": {"start": 0.5, "end": 0.75}},
            "load": {"start": 0.5, "max": 0.75, "end": 0.75}, "runtime_s": 14.5,
            "machine": {"cpu": "test", "cpus": 2, "mem_gib": 4.0, "python": "3.11",
                        "kernel": "test", "date": "today"},
            "cascade": cascade}


def report(cascade: dict[str, Any]) -> str:
    text: str = bench("run_all").compose(results(cascade))
    return text


def cascade_lines(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| cascade")]


def test_each_hop_is_paired_turn_by_turn_after_the_warmup() -> None:
    common = bench("_cascade_common")
    s = common.Stamps()
    for turn in range(WARMUP + TURNS):
        t = turn * 10.0
        s.commits.append(t)
        s.finals.append(t + 0.001)
        s.handed.append(t + 0.0011)
        s.creates.append(t + 0.0013 + (0.05 if turn < WARMUP else 0.0))  # a slow warm-up
        s.boundaries.append(t + 0.002)
        s.speech_starts.append(t + 0.0021)
        s.speech_sent.append(t + 0.0024)
        s.last_audio.append(t + 0.03)
    out = common.result("flowspec", s, TURNS, WARMUP, 0.024)
    assert out["not_measured"] == {}
    hops = out["hops"]
    assert hops["transcript_to_request"]["p99_ms"] == pytest.approx(0.3)
    assert hops["transcript_to_request_handed"]["p50_ms"] == pytest.approx(0.1)
    assert hops["boundary_to_speech_request"]["p50_ms"] == pytest.approx(0.4)
    assert hops["added"]["p50_ms"] == pytest.approx(0.7)
    assert hops["turn"]["p50_ms"] == pytest.approx(30)
    assert {h["n"] for h in hops.values()} == {TURNS}
    assert out["cpu_ms_per_turn"] == pytest.approx(2)


def test_sides_run_interleaved_the_same_number_of_times(peer: Path) -> None:
    sides = Sides()
    out = bench("cascade").side_by_side(args(), run=sides)
    assert sides.calls == ["flowspec", "pipecat"] * 3 == out["order"]
    assert len(out["runs"]["flowspec"]) == len(out["runs"]["pipecat"]) == out["reps"] == 3
    assert out["errors"] == {} and out["skipped"] == {}
    assert out["params"]["pipecat_version"] == "1.14.0"
    rows = cascade_lines(report(out))
    assert len(rows) == len(bench("_cascade_common").HOPS) + 1
    assert {row[-1] for row in rows} == {"3 / 3"}
    assert all(row[3].startswith("Pipecat: ") and row[4] != "–" for row in rows)


def test_a_failed_run_is_reported_and_not_run_again(peer: Path) -> None:
    sides = Sides(fail={("pipecat", 2)})
    out = bench("cascade").side_by_side(args(), run=sides)
    assert sides.calls == ["flowspec", "pipecat"] * 3
    assert out["runs"]["pipecat"][1] is None and len(out["runs"]["pipecat"]) == 3
    assert out["errors"] == {"pipecat": ["rep 2: RuntimeError: pipecat exited 1: it broke"]}
    r = {"cascade": out}
    # Ratios pair rep with rep: the second rep has no Pipecat run, so no ratio.
    assert len(bench("_report").rep_ratios(r, "cpu_ms_per_turn")) == 2
    text = report(out)
    assert {row[-1] for row in cascade_lines(text)} == {"3 / 2"}
    assert ("**cascade: a Pipecat run failed and is left out (nothing was run again):** "
            "rep 2: RuntimeError: pipecat exited 1: it broke") in text


def test_without_pipecat_every_row_says_why(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    cascade = bench("cascade")
    monkeypatch.setattr(cascade, "PIPECAT_PY", tmp_path / "missing" / "python")
    monkeypatch.setattr(cascade, "ROOT", tmp_path)
    sides = Sides()
    out = cascade.side_by_side(args(), run=sides)
    assert sides.calls == ["flowspec"] * 3
    assert out["skipped"] == {"pipecat": "not measured: missing/python does not exist"}
    for row in cascade_lines(report(out)):
        assert row[3] == "Pipecat: not measured: missing/python does not exist", row
        assert row[4] == "–" and row[-1] == "3 / 0"


def test_a_hop_the_peer_cannot_produce_is_not_measured_with_its_reason(peer: Path) -> None:
    out = bench("cascade").side_by_side(args(), run=Sides(no_speech={"pipecat"}))
    run = out["runs"]["pipecat"][0]
    assert run["not_measured"]["boundary_to_speech_request"] == (
        f"0 of {TURNS} measured turns paired: {TURNS} sentence boundaries, 0 speech request "
        "headers written in all")
    assert "boundary_to_speech_request" in run["not_measured"]["added"]
    assert "transcript_to_request" in run["hops"]
    rows = {row[0]: row for row in cascade_lines(report(out))}
    speech = rows["cascade: sentence boundary → speech request headers written, p50 / p99 (ms)"]
    reason = run["not_measured"]["boundary_to_speech_request"]
    assert speech[3] == f"Pipecat: not measured: {reason}"
    assert speech[4] == "–"
    assert speech[2] != "–" and speech[5] in ("yes", "**no**")
    written = rows["cascade: final transcript → Responses request written, p50 / p99 (ms)"]
    assert re.fullmatch(r"Pipecat: [\d.]+ \(.*\) / [\d.]+ \(.*\)", written[3])


def test_every_cascade_number_comes_from_the_results(peer: Path) -> None:
    r = results(bench("cascade").side_by_side(args(), run=Sides(seed=7)))
    compose = bench("run_all").compose
    first, *others = (compose(_perturbed(r, random.Random(seed))) for seed in (1, 2, 3))
    assert len(cascade_lines(first)) == len(bench("_cascade_common").HOPS) + 1
    allowed = allowed_numbers(r)
    fixed = sorted((x, line) for x, line in fixed_numbers(first, *others) if x not in allowed)
    assert not fixed, "numbers that do not follow the results:\n" + "\n".join(
        f"{x!r} in {line!r}" for x, line in fixed)
