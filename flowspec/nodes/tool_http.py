"""`tool.http`: a tool call as one HTTP request; a 2xx body is the result.

The arguments travel as a JSON body (`POST`, `PUT`, `PATCH`) or as query parameters (`GET`).
Header values come from the spec, with `${VAR}` already replaced by the compiler, and are never
printed: not to the model, not on the bus, not in logs. The frame contract is in
`flowspec.nodes.tools`.

Where it may connect is `flowspec.nodes.netpolicy`'s rule, applied at each call: to the URL (IP
literals, `localhost`, credentials) and, through the session's resolver, to every address its
host resolves to. Redirects are not followed: a public service could send the call on to
a private address.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from flowspec.errors import UsageError
from flowspec.frames import Frame, FunctionCallFrame
from flowspec.nodes.netguard import GuardedClient, PrivateAddressRefused
from flowspec.nodes.netpolicy import url_problem
from flowspec.nodes.tool_calls import UNAVAILABLE, Arguments, ToolCallFailed, ToolCalls, timed_out
from flowspec.runtime.node import Context
from flowspec.spec.models.tools import HttpToolSpec

EXCERPT_CHARS = 500
"""How much of an error response's body the model is shown."""
REFUSED = "The tool may not call that address: the server's network policy refuses it."


class HttpToolNode:
    """`tool.http`: one guarded `aiohttp.ClientSession` per node instance, opened in `start` and
    closed in `stop`. `url`, `method`, `headers`, `timeout_s` and `allow_private_network` are
    read at each call. `resolver` is the host name lookup the network policy guards (aiohttp's
    default when None)."""

    def __init__(self, ctx: Context, *, resolver: AbstractResolver | None = None) -> None:
        if not isinstance(ctx.spec, HttpToolSpec):
            raise UsageError(f"Node {ctx.node_id!r} needs a tool.http spec, not {ctx.spec!r}.")
        self.ctx = ctx
        self.calls = ToolCalls(ctx, self._invoke)
        self._client: GuardedClient | None = None
        self._resolver = resolver

    async def start(self) -> None:
        self._client = GuardedClient(self._resolver)

    async def handle(self, frame: Frame, port: str) -> None:
        self.calls.handle(frame)

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _invoke(self, arguments: Arguments, call: FunctionCallFrame) -> str:
        spec = self.ctx.spec
        assert isinstance(spec, HttpToolSpec)
        url = URL(spec.url)
        if url.scheme not in ("http", "https") or self._client is None:
            raise ToolCallFailed(UNAVAILABLE, f"cannot call {url.scheme!r} URLs" if self._client
                                 else "the node is not started")
        allow_private = spec.allow_private_network
        problem = url_problem(str(url), allow_private)
        if problem is not None:
            raise ToolCallFailed(REFUSED, f"{problem.host} {problem.reason}"
                                 if problem.kind == "private-network"
                                 else "the URL carries credentials")
        if spec.method == "GET":
            payload: dict[str, Any] = {"params": _query(arguments)}
        else:
            payload = {"json": arguments}
        http = await self._client.session(allow_private=allow_private)
        try:
            async with http.request(
                    spec.method, url, headers=spec.headers, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=spec.timeout_s), **payload) as response:
                status = response.status
                body = await response.text(errors="replace")
        except TimeoutError as exc:  # aiohttp's own timeouts are TimeoutErrors too
            raise timed_out(spec) from exc
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, PrivateAddressRefused):
                raise ToolCallFailed(REFUSED, str(exc.os_error.strerror)) from exc
            raise ToolCallFailed("The tool's service could not be reached.",
                                 f"{type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientError as exc:
            # The exception text names the host, never the headers.
            raise ToolCallFailed("The tool's service could not be reached.",
                                 f"{type(exc).__name__}: {exc}") from exc
        if 300 <= status < 400:
            # Following would let a public service send the call on to a private address.
            raise ToolCallFailed(f"The tool's service answered with a redirect (HTTP {status}); "
                                 "redirects are not followed.", f"HTTP {status} from {url.host}")
        if 200 <= status < 300:
            # An empty body (204) would leave the model with nothing to read.
            return body if body.strip() else json.dumps({"status": status})
        excerpt = body[:EXCERPT_CHARS]
        raise ToolCallFailed(f"The tool's service answered with HTTP status {status}: {excerpt}",
                             f"HTTP {status} from {url.host}")


def _query(arguments: Mapping[str, Any]) -> dict[str, str]:
    """Query parameters: strings as they are, everything else as JSON (`true`, `3`, `[1, 2]`)."""
    return {key: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            for key, value in arguments.items() if value is not None}
