"""Why a provider refused a WebSocket handshake, in its own words; and which provider errors
refuse access outright, at connect or mid-session (`refuses_access`).

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

from flowspec.errors import AccessRefused

ACCESS_STATUSES = frozenset({401, 403})
ACCESS_CODES = frozenset({"invalid_api_key", "insufficient_quota", "credit_balance_exhausted"})
"""Error codes that say the key, or the account behind it, may not be used. A spent quota is
not a refused key, but no retry can mend it within a call either."""
ACCESS_TYPES = frozenset({"authentication_error", "permission_error", "insufficient_quota"})
_BODY_LIMIT = 64 * 1024
_TIMEOUT_S = 5.0


def refuses_access(code: object, type_: object = None, status: object = None) -> bool:
    """Whether a provider error (an `error` event, a failed response's error, an error body)
    refuses the key, its permissions or its quota: the call cannot go on, and nothing is gained
    by trying again. Other errors (rate limits, server errors, bad requests) are the turn's."""
    return (code in ACCESS_CODES or type_ in ACCESS_TYPES or status in ACCESS_STATUSES)


def access_refused(node_id: str, message: str, code: object = None, type_: object = None,
                   status: object = None, *, fatal: bool = False) -> AccessRefused | None:
    """The error to end the call with, in the provider's words (`message [code]`), when its
    error refuses access (`refuses_access`); None for any other error."""
    if not refuses_access(code, type_, status):
        return None
    tag = next((t for t in (code, type_) if isinstance(t, str) and t), None)
    return AccessRefused(node_id, message + (f" [{tag}]" if tag else ""), fatal=fatal,
                         code=code if isinstance(code, str) else None)


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
