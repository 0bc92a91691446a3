"""`tool.http`: a tool call as one HTTP request; a 2xx body is the result.

The arguments travel as a JSON body (`POST`, `PUT`, `PATCH`) or as query parameters (`GET`).
Header values come from the spec, with `${VAR}` already replaced by the compiler, and are never
printed: not to the model, not on the bus, not in logs. The frame contract is in
`flowspec.nodes.tools`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from flowspec.errors import UsageError
from flowspec.frames import Frame, FunctionCallFrame
from flowspec.nodes.tool_calls import UNAVAILABLE, Arguments, ToolCallFailed, ToolCalls, timed_out
from flowspec.runtime.node import Context
from flowspec.spec.models.tools import HttpToolSpec

EXCERPT_CHARS = 500
"""How much of an error response's body the model is shown."""


class HttpToolNode:
    """`tool.http`: one `aiohttp.ClientSession` per node instance, opened in `start` and closed
    in `stop`. `url`, `method`, `headers` and `timeout_s` are read at each call."""

    def __init__(self, ctx: Context) -> None:
        if not isinstance(ctx.spec, HttpToolSpec):
            raise UsageError(f"Node {ctx.node_id!r} needs a tool.http spec, not {ctx.spec!r}.")
        self.ctx = ctx
        self.calls = ToolCalls(ctx, self._invoke)
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession()

    async def handle(self, frame: Frame, port: str) -> None:
        self.calls.handle(frame)

    async def stop(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    async def _invoke(self, arguments: Arguments, call: FunctionCallFrame) -> str:
        spec = self.ctx.spec
        assert isinstance(spec, HttpToolSpec)
        url = URL(spec.url)
        if url.scheme not in ("http", "https") or self._http is None:
            raise ToolCallFailed(UNAVAILABLE, f"cannot call {url.scheme!r} URLs" if self._http
                                 else "the node is not started")
        if spec.method == "GET":
            payload: dict[str, Any] = {"params": _query(arguments)}
        else:
            payload = {"json": arguments}
        try:
            async with self._http.request(
                    spec.method, url, headers=spec.headers,
                    timeout=aiohttp.ClientTimeout(total=spec.timeout_s), **payload) as response:
                status = response.status
                body = await response.text(errors="replace")
        except TimeoutError as exc:  # aiohttp's own timeouts are TimeoutErrors too
            raise timed_out(spec) from exc
        except aiohttp.ClientError as exc:
            # The exception text names the host, never the headers.
            raise ToolCallFailed("The tool's service could not be reached.",
                                 f"{type(exc).__name__}: {exc}") from exc
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
