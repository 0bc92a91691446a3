"""The bounds on everything that comes from outside the process, in one place.

Every input has a bound: a spec document (its size, nesting, alias expansion, number length, node,
edge and tool counts), a client message (size, nesting, number length), the sessions a server
holds, and the time a request may take to arrive. Hitting one gives a clear error, never a crash,
a stall of live calls or a leaked session. README's Reliability section lists each with its
default; tests read them from here.

Also the bounded JSON reader every client message, admin body and patch goes through: Python's
`json` module recurses once per nesting level (30,000 `[` end in RecursionError) and turns a
400-digit number into an int that overflows `float()` later.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

# -- spec documents (files, admin API bodies) ---------------------------------------------------

MAX_DOCUMENT_BYTES = 1 << 20
"""Largest spec document read from a file or taken through the admin API."""
MAX_DEPTH = 100
"""Deepest nesting of mappings and sequences in a spec document."""
MAX_ALIAS_EXPANSION = 10_000
"""Most values YAML aliases may add to a document once expanded (an alias bomb adds billions)."""
MAX_NUMBER_DIGITS = 50
"""Longest number (digits and signs) in a spec document or a JSON body."""
MAX_NODES = 2_000
"""Most nodes in one spec."""
MAX_EDGES = 4_000
"""Most edges (chain links counted one by one) in one spec."""
MAX_TOOLS_PER_MODEL = 128
"""Most tools one model node may call (OpenAI's own limit for a session or request)."""
COMPILE_TIMEOUT_S = 20.0
"""How long validating a change through the admin API or a watched file may take."""

# -- client messages (browser, text chat, Twilio) -----------------------------------------------

CLIENT_MAX_DEPTH = 32
"""Deepest nesting in a client's JSON message."""
CLIENT_MAX_NUMBER_DIGITS = 20
"""Longest number in a client's JSON message."""

# -- provider messages (Realtime and Responses events, tool arguments a model writes) -----------

PROVIDER_MAX_NUMBER_DIGITS = MAX_NUMBER_DIGITS
"""Longest number in a provider's event. Nesting needs no bound of its own there: nothing walks
an event's depth, and the decoder's own recursion limit is caught (`loads(max_depth=None)`)."""

# -- the server ---------------------------------------------------------------------------------

MAX_SESSIONS = 100
"""Live sessions one `flowspec serve` process holds (`--max-sessions`); transports may set
their own, lower `max_sessions`."""
HEADER_TIMEOUT_S = 10.0
"""How long a connection may take to send its request line and headers."""
BODY_TIMEOUT_S = 10.0
"""How long an admin request may take to send its body."""


class InputTooComplex(ValueError):
    """Input beyond one of the bounds above. `limit` names it (`depth`, `digits`, ...)."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


def loads(text: str | bytes, *, max_depth: int | None = MAX_DEPTH,
          max_digits: int = MAX_NUMBER_DIGITS) -> Any:
    """`json.loads` with bounds on nesting and number length (`max_depth` None: only the
    decoder's own recursion limit, which costs nothing to check).

    Raises ValueError (json.JSONDecodeError) for text that is not JSON, and InputTooComplex
    (also a ValueError) for JSON beyond the bounds, or with NaN or Infinity (not JSON)."""

    def parse_int(digits: str) -> int:
        if len(digits) > max_digits:
            raise InputTooComplex("digits", f"a number has {len(digits)} digits; at most "
                                  f"{max_digits} are accepted")
        return int(digits)

    def parse_float(digits: str) -> float:
        if len(digits) > max_digits:
            raise InputTooComplex("digits", f"a number has {len(digits)} characters; at most "
                                  f"{max_digits} are accepted")
        value = float(digits)
        if not math.isfinite(value):
            raise InputTooComplex("digits", f"the number {digits} is out of range")
        return value

    def parse_constant(name: str) -> Any:
        raise InputTooComplex("digits", f"{name} is not a JSON number")

    try:
        value = json.loads(text, parse_int=parse_int, parse_float=parse_float,
                           parse_constant=parse_constant)
    except RecursionError:
        raise InputTooComplex("depth", "the JSON is nested too deeply") from None
    if max_depth is not None and depth(value, max_depth + 1) > max_depth:
        raise InputTooComplex("depth", f"the JSON is nested deeper than {max_depth} levels")
    return value


def depth(value: Any, stop: int | None = None) -> int:
    """How deeply lists and dicts nest in `value` (a scalar is 0), without recursion; counting
    stops at `stop`."""
    deepest = 0
    stack: list[tuple[Iterator[Any], int]] = []
    current = _children(value)
    level = 1 if current is not None else 0
    while current is not None:
        deepest = max(deepest, level)
        if stop is not None and deepest >= stop:
            return deepest
        child = next(current, _END)
        if child is _END:
            current, level = stack.pop() if stack else (None, 0)
            continue
        inner = _children(child)
        if inner is not None:
            stack.append((current, level))
            current, level = inner, level + 1
    return deepest


_END = object()


def _children(value: Any) -> Iterator[Any] | None:
    if isinstance(value, dict):
        return iter(value.values())
    if isinstance(value, list | tuple):
        return iter(value)
    return None
