"""Summaries of repeated measurements: medians with their range, paired ratios."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any


def get(tree: Any, *path: str | int) -> Any:
    for key in path:
        if isinstance(tree, dict) and key in tree:
            tree = tree[key]
        elif isinstance(tree, list) and isinstance(key, int) and -len(tree) <= key < len(tree):
            tree = tree[key]
        else:
            return None
    return tree


def numbers(items: Iterable[Any]) -> list[float]:
    return [float(v) for v in items if isinstance(v, int | float) and not isinstance(v, bool)]


def series(reps: Sequence[Any] | None, *path: str | int) -> list[float]:
    """The value at `path` in each rep (reps lacking it are left out)."""
    return numbers(get(rep, *path) for rep in reps or [])


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def paired(ours: Sequence[float], theirs: Sequence[float]) -> list[float]:
    """ours[i] / theirs[i] for the reps measured side by side."""
    return [a / b for a, b in zip(ours, theirs, strict=False) if b]


def number(value: float | None, fmt: str = "{:,.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def cell(values: Sequence[float], fmt: str = "{:,.2f}") -> str:
    """"median (min–max)", or the one value, or "–"."""
    if not values:
        return "–"
    mid = fmt.format(statistics.median(values))
    if len(values) == 1:
        return mid
    return f"{mid} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def ratio_text(value: float) -> str:
    """Two decimals, or two significant digits below 0.1 (0.0021, not 0.00)."""
    if value == 0 or abs(value) >= 0.1 or not math.isfinite(value):
        return f"{value:.2f}"
    return f"{value:.{1 - math.floor(math.log10(abs(value)))}f}"


def ratio_cell(values: Sequence[float]) -> str:
    if not values:
        return "–"
    mid = ratio_text(statistics.median(values))
    if len(values) == 1:
        return mid
    return f"{mid} ({ratio_text(min(values))}–{ratio_text(max(values))})"
