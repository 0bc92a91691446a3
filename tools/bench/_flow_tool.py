"""The tool of `flow.py`'s bot: it stamps the moment its result is ready (an async handler:
no thread hop between the stamp and the node receiving the result)."""

from __future__ import annotations

import time

RETURNED: list[float] = []
"""`time.perf_counter()` as each call's result was returned, in order."""


async def turn(location: str) -> dict[str, str]:
    RETURNED.append(time.perf_counter())
    return {"location": location, "status": "ok"}
