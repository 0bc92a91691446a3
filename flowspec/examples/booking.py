"""Table availability for the example restaurant: deterministic, no network."""

from __future__ import annotations

TABLES_FOR = 6
"""The largest party the restaurant seats."""


def check_availability(people: int, time: str) -> dict[str, object]:
    """Whether a table for `people` is free at `time`: parties up to six always are."""
    status = "available" if 0 < people <= TABLES_FOR else "full"
    return {"status": status, "people": people, "time": time}
