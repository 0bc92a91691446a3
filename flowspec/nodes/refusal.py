"""Why a provider refused a WebSocket handshake, in its own words.

aiohttp reports a refused upgrade by status alone (`401, message='Invalid response status'`)
and drops the body, which is where OpenAI says what is wrong ("Incorrect API key provided").
For a refusal that retrying cannot mend (401, 403) the same URL is asked once more as a plain
HTTP request, and the JSON error it answers is read within a short time and size limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

import aiohttp

ACCESS_STATUSES = frozenset({401, 403})
ACCESS_CODES = frozenset({"invalid_api_key"})
_BODY_LIMIT = 64 * 1024
_TIMEOUT_S = 5.0


def is_access_code(code: object) -> bool:
    return isinstance(code, str) and code in ACCESS_CODES


def error_text(status: int, body: bytes) -> str:
    """`the server answered HTTP 401: <message> [<code>]`, from an OpenAI-style error body."""
    message = code = None
    try:
        data = json.loads(body.decode("utf-8", "replace")) if body else None
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message, code = error.get("message"), error.get("code")
    elif isinstance(error, str):
        message = error
    elif isinstance(data, dict) and isinstance(data.get("message"), str):
        message = data["message"]
    text = f"the server answered HTTP {status}"
    if isinstance(message, str) and message.strip():
        text += f": {message.strip()[:500]}"
    if isinstance(code, str) and code:
        text += f" [{code}]"
    return text


async def handshake_refusal(http: aiohttp.ClientSession, url: str, headers: Mapping[str, str],
                            status: int) -> str:
    """The provider's reason for answering the upgrade to `url` with `status`."""
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    plain = urlunsplit((scheme, *parts[1:]))
    body = b""
    try:
        async with asyncio.timeout(_TIMEOUT_S), http.get(plain, headers=dict(headers),
                                                         allow_redirects=False) as response:
            if response.status == status:
                body = await response.content.read(_BODY_LIMIT)
    except (aiohttp.ClientError, OSError, TimeoutError):
        pass  # the status alone is still the answer
    return error_text(status, body)
