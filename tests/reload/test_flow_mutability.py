"""The schema's mutability class of every `flow:` field agrees with where `flowspec plan` says
a change to it applies: what a state offers the model (its instructions, tools, functions and
on_enter words) reaches live calls; the flow's shape (states, transitions, the initial state,
context strategies, global tools) reaches new calls only."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowspec.reload.diff import Change, classify
from flowspec.reload.flow_live import flow_where
from flowspec.spec.compile import compile_file
from flowspec.spec.models.base import Mutability
from flowspec.spec.schema import build_schema

BOOKING = Path(__file__).resolve().parents[2] / "specs" / "restaurant-booking.yaml"

POINTERS = {
    "/flow/model": "next_session",
    "/flow/initial": "next_session",
    "/flow/context": "next_session",
    "/flow/global_tools/0": "next_session",
    "/flow/states/newstate": "next_session",
    "/flow/states/collect/instructions": "live",
    "/flow/states/collect/tools/0": "live",
    "/flow/states/greet/functions/wants_booking/description": "live",
    "/flow/states/greet/functions/wants_booking/parameters": "live",
    "/flow/states/done/on_enter/0/say": "live",
    "/flow/states/done/on_enter/1/end_call": "live",
    "/flow/states/greet/transitions/wants_booking": "next_session",
    "/flow/states/collect/transitions/check_availability/on": "next_session",
    "/flow/states/collect/transitions/check_availability/cases/full": "next_session",
    "/flow/states/collect/transitions/check_availability/default": "next_session",
    "/flow/states/collect/transitions/check_availability/set/people": "next_session",
    "/flow/states/confirm/transitions/confirmed/to": "next_session",
    "/flow/states/collect/context": "next_session",
    "/flow/states/done/final": "next_session",
}


@pytest.mark.parametrize(("pointer", "mutability"), POINTERS.items(), ids=list(POINTERS))
def test_the_schema_marks_what_the_plan_does(pointer: str, mutability: str) -> None:
    parts = pointer.split("/")[1:]
    info = classify(build_schema(), parts)
    assert info.mutability.value == mutability
    graph = compile_file(BOOKING, env={}).raise_for_errors()
    applies, _ = flow_where(parts, Change(pointer, "replace", 1, 2, info.mutability), graph,
                            graph)
    assert applies == ("live" if info.mutability is Mutability.LIVE else "new_sessions")
