"""What the emulator received and sent, per connection, for tests to inspect.

Only an emulator started with `keep_records=True` keeps messages: a served emulator (`flowspec
emulate`, or the one `flowspec serve` embeds) would otherwise hold every message of every
connection for as long as it runs. Without them a record is the connection's identity (kind,
path, headers) while it is open, and leaves `Emulator.connections` when it closes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from flowspec.emulator.wire import JSONObject
from flowspec.errors import UsageError

Kind = Literal["realtime", "transcription", "responses_ws", "responses_http", "speech"]


@dataclass(eq=False)
class ConnectionRecord:
    """One WebSocket connection or one HTTP request.

    With `keep`, `received` holds every client message in order, parsed as JSON (a frame that
    is not a JSON object is kept as `{"_raw": text}`); for HTTP it holds the request body. `sent`
    holds every event the emulator sent, as JSON objects. Without `keep` both stay empty, and
    asking for messages (`received_of`, the waits) raises UsageError rather than wait forever.
    """

    id: int
    kind: Kind
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    dialect: Literal["ga", "beta"] | None = None
    received: list[JSONObject] = field(default_factory=list)
    sent: list[JSONObject] = field(default_factory=list)
    closed: bool = False
    cut_short: bool = False
    """An HTTP reply the client hung up on before it ended (a cancelled request)."""
    keep: bool = True
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def received_of(self, kind: str) -> list[JSONObject]:
        """Client messages of one `type` (e.g. every `session.update` payload, in order)."""
        self._kept()
        return [message for message in self.received if message.get("type") == kind]

    def sent_of(self, kind: str) -> list[JSONObject]:
        self._kept()
        return [event for event in self.sent if event.get("type") == kind]

    # The waits have no deadline of their own: wrap them in `asyncio.timeout(...)`.
    async def wait_received(self, kind: str, *, count: int = 1) -> list[JSONObject]:
        """Wait until `count` messages of `kind` arrived; returns all of that kind so far."""
        while len(self.received_of(kind)) < count:
            await self._wait_change()
        return self.received_of(kind)

    async def wait_sent(self, kind: str, *, count: int = 1) -> list[JSONObject]:
        while len(self.sent_of(kind)) < count:
            await self._wait_change()
        return self.sent_of(kind)

    async def wait_closed(self) -> None:
        while not self.closed:
            await self._wait_change()

    async def _wait_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    def _kept(self) -> None:
        if not self.keep:
            raise UsageError("This emulator keeps no messages: start it with "
                             "keep_records=True to inspect them.")

    def note_received(self, text: str) -> None:
        if not self.keep:
            return
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = None
        self.received.append(value if isinstance(value, dict) else {"_raw": text})
        self._changed.set()

    def note_sent(self, event: JSONObject) -> None:
        if not self.keep:
            return
        self.sent.append(event)
        self._changed.set()

    def note_closed(self) -> None:
        self.closed = True
        self._changed.set()
