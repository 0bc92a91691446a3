"""Connection records: kept for tests that ask (`keep_records=True`), otherwise bounded and freed
with their connection, so that a served emulator does not grow with every session."""

from __future__ import annotations

import asyncio
import gc
import json
import tracemalloc
from typing import Any

import aiohttp
import pytest

from flowspec.emulator import Emulator
from flowspec.errors import UsageError
from flowspec.testing import until

SESSIONS = 150
WARM_UP = 20
MEMORY_GUARD = 3 * 1024 * 1024  # a kept record is ~10 KiB per session: 150 of them exceed this


async def realtime_session(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    """One short Realtime conversation: configure, one text turn answered, hang up."""
    url = f"{emulator.ws_base_url}/realtime?model=gpt-realtime"
    async with http.ws_connect(url, headers={"Authorization": "Bearer test"}) as ws:
        await ws.send_json({"type": "session.update", "session": {
            "type": "realtime", "output_modalities": ["text"],
            "instructions": "Answer briefly. " * 20}})
        await ws.send_json({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user",
            "content": [{"type": "input_text", "text": "Tell me something. " * 20}]}})
        await ws.send_json({"type": "response.create"})
        async for message in ws:
            if json.loads(message.data)["type"] == "response.done":
                break


async def responses_session(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    """One Responses request over each wire."""
    headers = {"Authorization": "Bearer test"}
    body: dict[str, Any] = {"model": "gpt-5", "input": "Hello there. " * 20, "store": False}
    async with http.post(f"{emulator.http_base_url}/responses", json={**body, "stream": True},
                         headers=headers) as response:
        await response.read()
    async with http.ws_connect(f"{emulator.ws_base_url}/responses", headers=headers) as ws:
        await ws.send_json({"type": "response.create", **body})
        async for message in ws:
            if json.loads(message.data)["type"] == "response.completed":
                break


async def many(http: aiohttp.ClientSession, emulator: Emulator, count: int) -> None:
    for start in range(0, count, 25):
        batch = min(25, count - start)
        await asyncio.gather(*(realtime_session(http, emulator) for _ in range(batch)),
                             *(responses_session(http, emulator) for _ in range(batch)))


async def test_without_kept_records_short_sessions_leave_nothing_behind() -> None:
    async with Emulator.start(pace=0) as emulator, aiohttp.ClientSession() as http:
        await many(http, emulator, WARM_UP)
        await until(lambda: not emulator.connections)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            await many(http, emulator, SESSIONS)
            await until(lambda: not emulator.connections)
            gc.collect()
            growth = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert emulator.connections == []
    assert growth < MEMORY_GUARD, f"traced memory grew by {growth} bytes over {SESSIONS} sessions"


async def test_a_record_lives_as_long_as_its_connection_and_keeps_no_messages() -> None:
    async with Emulator.start(pace=0) as emulator, aiohttp.ClientSession() as http:
        url = f"{emulator.ws_base_url}/realtime?model=gpt-realtime"
        async with http.ws_connect(url) as ws:
            await ws.receive_json()  # session.created
            (record,) = emulator.connections
            assert (record.kind, record.path, record.dialect) == ("realtime", "/v1/realtime",
                                                                  "ga")
            await ws.send_json({"type": "session.update", "session": {"type": "realtime"}})
            await ws.receive_json()
            assert record.received == [] and record.sent == []
            with pytest.raises(UsageError, match="keep_records"):
                record.received_of("session.update")
            with pytest.raises(UsageError, match="keep_records"):
                await record.wait_sent("session.updated")
            with pytest.raises(UsageError, match="keep_records"):
                await emulator.wait_connection("realtime")
        async with asyncio.timeout(10):  # a hang guard
            await record.wait_closed()
        assert emulator.connections == []


async def test_kept_records_hold_every_message_after_the_connection_closed() -> None:
    async with Emulator.start(pace=0, keep_records=True) as emulator, \
            aiohttp.ClientSession() as http:
        await realtime_session(http, emulator)
        await realtime_session(http, emulator)
        first, second = emulator.connections
        assert (first.id, second.id) == (1, 2) and first.closed and second.closed
        assert [m["type"] for m in first.received] == ["session.update",
                                                        "conversation.item.create",
                                                        "response.create"]
        assert first.sent_of("response.done")
