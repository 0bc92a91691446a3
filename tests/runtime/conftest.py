"""Helper nodes shared by the runtime tests."""

from __future__ import annotations

import asyncio

import pytest

from flowspec.frames import Frame, TextFrame
from flowspec.runtime import Context, Executor, Registry
from flowspec.testing import RecorderNode, make_registry


class BoomError(Exception):
    pass


class FatalBoomError(Exception):
    fatal = True


class FlakyNode:
    """Forwards frames; raises on text 'boom' (or a fatal error on 'fatal')."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        return None

    async def handle(self, frame: Frame, port: str) -> None:
        if isinstance(frame, TextFrame) and frame.text == "boom":
            raise BoomError("boom")
        if isinstance(frame, TextFrame) and frame.text == "fatal":
            raise FatalBoomError("fatal")
        await self.ctx.emit(frame)

    async def stop(self) -> None:
        return None


class YieldingNode:
    """Forwards frames after suspending once on each, so its calls always leave the inline path."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def start(self) -> None:
        return None

    async def handle(self, frame: Frame, port: str) -> None:
        await asyncio.sleep(0)
        await self.ctx.emit(frame)

    async def stop(self) -> None:
        return None


@pytest.fixture
def registry() -> Registry:
    registry = make_registry()
    registry.register("test.flaky", FlakyNode)
    registry.register("test.yielding", YieldingNode)
    return registry


@pytest.fixture
def executor(registry: Registry) -> Executor:
    return Executor(registry=registry)


def texts(node: object) -> list[str]:
    assert isinstance(node, RecorderNode)
    return [f.text for f in node.of(TextFrame)]


async def settle(rounds: int = 20) -> None:
    """Let every ready task run (no timing: a fixed number of loop iterations)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
