"""Fixtures: a fast-paced emulator on a free loopback port and SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from openai import AsyncOpenAI

from flowspec.emulator import Emulator

from .conformance import ADAPTERS, check


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """A fast emulator; on teardown every event it sent must validate against the SDK models."""
    async with Emulator.start(pace=0, keep_records=True) as emu:
        yield emu
    assert_conformant(emu)


def assert_conformant(emu: Emulator) -> None:
    for record in emu.connections:
        realtime = record.kind in ("realtime", "transcription")
        adapter = ADAPTERS[record.dialect if realtime else record.kind]
        for event in record.sent:
            if "type" in event:
                check(adapter, event)


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(
        api_key="test-key",
        base_url=emulator.http_base_url,
        websocket_base_url=emulator.ws_base_url,
        max_retries=0,
    ) as openai_client:
        yield openai_client
