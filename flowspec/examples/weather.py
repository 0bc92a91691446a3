"""A deterministic weather lookup for the example specs: no network, same answer every time."""

from __future__ import annotations

import hashlib

_CONDITIONS = ("sunny", "partly cloudy", "overcast", "light rain", "windy", "foggy")


def get_weather(location: str, unit: str = "celsius") -> dict[str, object]:
    """Current weather for `location` (made up, but stable per city)."""
    seed = int(hashlib.sha256(location.strip().lower().encode()).hexdigest()[:8], 16)
    celsius = seed % 35 - 5
    temperature = celsius if unit == "celsius" else round(celsius * 9 / 5 + 32)
    return {
        "location": location,
        "temperature": temperature,
        "unit": unit,
        "conditions": _CONDITIONS[seed % len(_CONDITIONS)],
    }
