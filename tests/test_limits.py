"""The bounded JSON reader every client message and admin body goes through."""

from __future__ import annotations

import pytest

from flowspec import limits


@pytest.mark.parametrize(("text", "limit"), [
    ('{"type": "playback", "played_ms": ' + "9" * 400 + "}", "digits"),
    ("[" * 30_000, "depth"),
    ("[" * 101 + "]" * 101, "depth"),
    ('{"a": ' * 200 + "1" + "}" * 200, "depth"),
    ("[1e999]", "digits"),
    ("[-1e999]", "digits"),
    ("[NaN]", "digits"),
    ("[Infinity]", "digits"),
    ("[0." + "1" * 80 + "]", "digits"),
])
def test_input_beyond_a_bound_is_refused_with_the_bound_named(text: str, limit: str) -> None:
    with pytest.raises(limits.InputTooComplex) as refused:
        limits.loads(text)
    assert refused.value.limit == limit
    assert isinstance(refused.value, ValueError)  # callers that catch bad JSON catch this too


def test_json_within_the_bounds_reads_as_json() -> None:
    assert limits.loads("[" * 100 + "]" * 100) is not None
    assert limits.loads('{"played_ms": 1234.5, "n": -12345678901234567890}') == {
        "played_ms": 1234.5, "n": -12345678901234567890}
    assert limits.loads("[1]", max_depth=1) == [1]
    with pytest.raises(limits.InputTooComplex):
        limits.loads("[[1]]", max_depth=1)
    with pytest.raises(ValueError):
        limits.loads("{nope")


def test_depth_counts_without_recursing() -> None:
    deep: list[object] = []
    node = deep
    for _ in range(100_000):
        child: list[object] = []
        node.append(child)
        node = child
    assert limits.depth(deep) == 100_001
    assert limits.depth(deep, stop=10) == 10
    assert (limits.depth(1), limits.depth([]), limits.depth({"a": [{"b": 1}]})) == (0, 1, 3)
