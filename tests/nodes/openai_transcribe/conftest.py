"""Fixtures: a fast-paced emulator on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flowspec.emulator import Emulator


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator.start(pace=0, keep_records=True) as emu:
        yield emu
