"""Support tickets for the example support line: kept in memory, numbered in order."""

from __future__ import annotations

import itertools

_NUMBERS = itertools.count(1001)


def open_ticket(summary: str, urgency: str = "normal") -> dict[str, object]:
    """Open a ticket; returns its number for the caller."""
    return {"ticket": f"T-{next(_NUMBERS)}", "summary": summary[:500], "urgency": urgency,
            "status": "open"}
