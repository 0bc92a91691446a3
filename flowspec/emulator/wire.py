"""Shared wire helpers of the emulator: JSON aliases, identifiers and the OpenAI error shape."""

from __future__ import annotations

import asyncio
import itertools
import secrets
from dataclasses import dataclass
from typing import Any, TypeAlias

from flowspec import limits

JSONObject: TypeAlias = dict[str, Any]

_counter = itertools.count(1)


def new_id(prefix: str) -> str:
    """An OpenAI-looking identifier (`resp_…`, `item_…`); unique within the process."""
    # The counter keeps ids ordered and unique; the random tail keeps them from looking reusable
    # across emulator runs, as real ids never are.
    return f"{prefix}_{next(_counter):06d}{secrets.token_hex(6)}"


@dataclass(frozen=True, slots=True)
class WireError(Exception):
    """An error the emulator reports to its client in OpenAI's shape, never a crash.

    `status` is the HTTP-like status used by the Responses API (HTTP replies and the WebSocket
    `status` field); Realtime ignores it.
    """

    message: str
    code: str | None = None
    param: str | None = None
    type: str = "invalid_request_error"
    status: int = 400

    def body(self, event_id: str | None = None, *, with_event_id: bool = False) -> JSONObject:
        body: JSONObject = {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        }
        if with_event_id:
            body["event_id"] = event_id
        return body


def invalid_value(param: str, message: str) -> WireError:
    return WireError(message, code="invalid_value", param=param)


def unknown_parameter(param: str) -> WireError:
    return WireError(f"Unknown parameter: '{param}'.", code="unknown_parameter", param=param)


def missing_parameter(param: str) -> WireError:
    return WireError(
        f"Missing required parameter: '{param}'.", code="missing_required_parameter", param=param
    )


def invalid_type(param: str, expected: str, value: Any) -> WireError:
    return WireError(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        code="invalid_type",
        param=param,
    )


def _type_name(value: Any) -> str:
    match value:
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case dict():
            return "an object"
        case None:
            return "null"
    return type(value).__name__


def parse_json_object(text: str) -> JSONObject:
    """Parse one client frame; anything but a JSON object becomes an `invalid_json` WireError."""
    try:
        value = limits.loads(text, max_depth=None)
    except ValueError as exc:
        raise WireError(
            f"We could not parse the JSON body of your request. ({exc})", code="invalid_json"
        ) from exc
    if not isinstance(value, dict):
        raise WireError(
            "We could not parse the JSON body of your request: expected a JSON object.",
            code="invalid_json",
        )
    return value


def require_str(obj: JSONObject, key: str, path: str, *, optional: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if optional:
            return None
        raise missing_parameter(f"{path}{key}")
    if not isinstance(value, str):
        raise invalid_type(f"{path}{key}", "a string", value)
    return value


def check_keys(obj: JSONObject, allowed: frozenset[str], path: str) -> None:
    """Reject the first key OpenAI would call an `unknown_parameter`."""
    for key in obj:
        if key not in allowed:
            raise unknown_parameter(f"{path}{key}")


def estimate_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer: about four characters per token."""
    return max(1, (len(text) + 3) // 4) if text else 0


async def cancelled_within(cancelled: asyncio.Event, seconds: float) -> bool:
    """Pause a reply for `seconds` (at least one loop turn); True when it was cancelled meanwhile,
    so pacing and scripted stalls end at once on `response.cancel`."""
    if seconds <= 0:
        await asyncio.sleep(0)
        return cancelled.is_set()
    try:
        async with asyncio.timeout(seconds):
            await cancelled.wait()
    except TimeoutError:
        return False
    return True
