"""Hypothesis profiles for the reliability tests, and the figures file they write.

`ci` (the default) keeps the whole directory well inside the suite's time budget;
`FLOWSPEC_HYPOTHESIS=heavy` tries many more inputs. Each test records what it measured with
`figures.record(...)`; the collected figures are written to `build/reliability.json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, database=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "heavy", max_examples=2000, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("FLOWSPEC_HYPOTHESIS", "ci"))

FIGURES = Path(__file__).resolve().parents[2] / "build" / "reliability.json"


class Figures:
    """What the reliability tests measured, by test and name."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}

    def record(self, test: str, **values: Any) -> str:
        """Keep `values` under `test`; returns them as text for assertion messages."""
        self.values.setdefault(test, {}).update(values)
        text = json.dumps(values, sort_keys=True)
        print(f"[reliability] {test}: {text}")
        return text


_FIGURES = Figures()


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    yield _FIGURES
    if _FIGURES.values:
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        previous: dict[str, Any] = {}
        if FIGURES.exists():
            try:
                previous = json.loads(FIGURES.read_text())
            except ValueError:
                previous = {}
        previous.update(_FIGURES.values)
        previous["_profile"] = os.environ.get("FLOWSPEC_HYPOTHESIS", "ci")
        FIGURES.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures this run measured, at the end of the output: `-q` and captured output hide
    what the tests print."""
    if not _FIGURES.values:
        return
    terminalreporter.section("reliability figures")
    for test, values in sorted(_FIGURES.values.items()):
        terminalreporter.write_line(f"{test}: {json.dumps(values, sort_keys=True)}")
    terminalreporter.write_line(f"(also in {FIGURES.relative_to(FIGURES.parents[1])})")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`slow` tests run only when asked for (`-m slow`): keep them out of the default run."""
    if config.getoption("markexpr"):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]
