"""Recording a call's provider traffic: every message between a model node and its provider,
both directions, timestamped, secrets masked (`flowspec record`, and every test run, which reads
the model's audio arrival times from it).

The recorder sits in the model nodes' connector seam, so it sees exactly what goes on the wire.
A recording is JSON Lines: a header line, then one line per message:

    {"recording": 1, "spec": "weather-voice", "started": "2026-12-01T21:30:00Z"}
    {"t": 0.0123, "node": "llm", "api": "realtime", "dir": "out", "event": {...}}
    {"t": 0.0456, "node": "llm", "api": "realtime", "dir": "in", "event": {...}}

`dir` is `out` for what flowspec sent and `in` for what the provider sent; `t` is seconds since
the recording began. Audio payloads are kept (a replay plays them back). Values that came from the
environment are written as their `${NAME}` (`flowspec.redact`); connection headers (the API
key) are never recorded.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from flowspec.redact import Redactor

Direction = Literal["in", "out"]
Api = Literal["realtime", "responses"]
AUDIO_DELTAS = frozenset({"response.output_audio.delta", "response.audio.delta"})
"""The Realtime events carrying reply audio (GA, beta)."""


@dataclass(slots=True)
class Entry:
    t: float
    node: str
    api: Api
    dir: Direction
    event: dict[str, Any]
    perf: float = 0.0
    """`time.perf_counter()` when it passed (not written out)."""

    def to_json(self) -> dict[str, Any]:
        return {"t": round(self.t, 6), "node": self.node, "api": self.api, "dir": self.dir,
                "event": self.event}


@dataclass(slots=True)
class Recording:
    """Messages in the order they passed. `sink` (optional) gets each line as it happens."""

    spec: str = ""
    redactor: Redactor = field(default_factory=Redactor)
    entries: list[Entry] = field(default_factory=list)
    sink: TextIO | None = None
    _began: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        if self.sink is not None:
            started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            self._write({"recording": 1, "spec": self.spec, "started": started})

    def note(self, node: str, api: Api, direction: Direction, event: Mapping[str, Any]) -> None:
        now = time.perf_counter()
        entry = Entry(now - self._began, node, api, direction, self.redactor.data(dict(event)),
                      now)
        self.entries.append(entry)
        if self.sink is not None:
            self._write(entry.to_json())

    def _write(self, line: dict[str, Any]) -> None:
        assert self.sink is not None
        self.sink.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.sink.flush()

    def save(self, path: str | Path) -> None:
        """Write the whole recording (what a `sink` gets as it happens)."""
        with Path(path).open("w", encoding="utf-8") as out:
            started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            out.write(json.dumps({"recording": 1, "spec": self.spec, "started": started}) + "\n")
            for entry in self.entries:
                out.write(json.dumps(entry.to_json(), ensure_ascii=False,
                                     separators=(",", ":")) + "\n")

    def audio_arrivals(self) -> list[float]:
        """`perf_counter` times at which reply audio deltas arrived from the provider."""
        return [e.perf for e in self.entries
                if e.dir == "in" and e.event.get("type") in AUDIO_DELTAS]

    def registry(self, parent: Any = None) -> Any:
        """A node registry over `parent` (default: every node type) whose Realtime and
        Responses WebSocket nodes record their traffic here."""
        from flowspec.nodes.openai_realtime.connection import aiohttp_connect
        from flowspec.nodes.openai_realtime.node import RealtimeNode
        from flowspec.nodes.openai_responses.node import ResponsesNode
        from flowspec.nodes.openai_responses.ws import aiohttp_connector
        from flowspec.runtime.registry import DEFAULT_REGISTRY, Registry

        recorded = Registry(parent=parent or DEFAULT_REGISTRY)
        connect = self.realtime_connector(aiohttp_connect)

        def realtime(ctx: Any) -> RealtimeNode:
            return RealtimeNode(ctx, connect=connect)

        def responses(ctx: Any) -> ResponsesNode:
            inner = aiohttp_connector(ctx.node_id)
            return ResponsesNode(ctx, connect=self.responses_connector(inner, ctx.node_id))

        recorded.register("openai.realtime", realtime)
        recorded.register("openai.realtime_beta", realtime)
        recorded.register("openai.responses", responses)
        return recorded

    def realtime_connector(self, inner: Any) -> Any:
        """A Realtime `Connector` (url, headers, node_id) that records through `inner`."""

        async def connect(url: str, headers: Mapping[str, str], node_id: str) -> Any:
            return _RealtimeSocket(await inner(url, headers, node_id), self, node_id)

        return connect

    def responses_connector(self, inner: Any, node_id: str) -> Any:
        """A Responses WebSocket `Connector` (url, headers) that records through `inner`."""

        async def connect(url: str, headers: Mapping[str, str]) -> Any:
            return _ResponsesSocket(await inner(url, headers), self, node_id)

        return connect


class _RealtimeSocket:
    def __init__(self, inner: Any, recording: Recording, node: str) -> None:
        self._inner, self._recording, self._node = inner, recording, node

    async def send(self, event: Mapping[str, Any]) -> None:
        self._recording.note(self._node, "realtime", "out", event)
        await self._inner.send(event)

    async def receive(self) -> dict[str, Any] | None:
        event: dict[str, Any] | None = await self._inner.receive()
        if event is not None:
            self._recording.note(self._node, "realtime", "in", event)
        return event

    async def close(self) -> None:
        await self._inner.close()


class _ResponsesSocket:
    def __init__(self, inner: Any, recording: Recording, node: str) -> None:
        self._inner, self._recording, self._node = inner, recording, node

    async def send_text(self, text: str) -> None:
        self._recording.note(self._node, "responses", "out", _parsed(text))
        await self._inner.send_text(text)

    async def receive_text(self) -> str:
        text: str = await self._inner.receive_text()
        self._recording.note(self._node, "responses", "in", _parsed(text))
        return text

    async def close(self) -> None:
        await self._inner.close()


def _parsed(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_raw": text}


def read_recording(path: str | Path) -> list[dict[str, Any]]:
    """The message lines of a recording (its header left out). Raises ValueError with the line
    number for a line that is not a recorded message."""
    lines: list[dict[str, Any]] = []
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
        if not isinstance(line, dict):
            raise ValueError(f"{path}:{number}: not a recorded message")
        if "recording" in line:
            continue
        if line.get("dir") not in ("in", "out") or not isinstance(line.get("event"), dict):
            raise ValueError(f"{path}:{number}: not a recorded message (needs dir and event)")
        lines.append(line)
    return lines
