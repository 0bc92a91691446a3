"""Helpers shared by the emulator tests."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np


async def events_until(connection: Any, last: str) -> list[Any]:
    """Receive SDK events up to and including the first of type `last`."""
    events = []
    async for event in connection:
        events.append(event)
        if event.type == last:
            return events
    raise AssertionError(f"connection closed before {last}")


def types(events: list[Any]) -> list[str]:
    return [event["type"] if isinstance(event, dict) else event.type for event in events]


def tone(ms: int, *, rate: int = 24000, amplitude: float = 0.3, freq: float = 220.0) -> bytes:
    count = rate * ms // 1000
    t = np.arange(count) / rate
    return (np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype("<i2").tobytes()


def silence(ms: int, *, rate: int = 24000) -> bytes:
    return bytes(rate * ms // 1000 * 2)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def chunks(data: bytes, size: int = 960) -> list[bytes]:
    """20 ms chunks of 24 kHz PCM16, as the SDK's examples send them."""
    return [data[i : i + size] for i in range(0, len(data), size)]
