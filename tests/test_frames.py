import ast
import dataclasses
import inspect

import pytest

import flowspec.frames as frames_module
from flowspec.frames import (
    FRAME_TYPES,
    AudioFrame,
    ErrorFrame,
    Frame,
    FunctionResultFrame,
    InterruptFrame,
    Lane,
    TextFrame,
)


def test_frames_module_imports_nothing_from_flowspec() -> None:
    tree = ast.parse(inspect.getsource(frames_module))
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert not [name for name in imported if name.startswith("flowspec")]


@pytest.mark.parametrize("kind", FRAME_TYPES, ids=lambda k: k.__name__)
def test_every_frame_is_frozen_slotted_keyword_only_with_a_lane(kind: type[Frame]) -> None:
    assert dataclasses.is_dataclass(kind)
    params = kind.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    assert "__slots__" in kind.__dict__
    assert all(f.kw_only for f in dataclasses.fields(kind))
    assert isinstance(kind.lane, Lane)
    assert kind.__name__.endswith("Frame")


def test_frames_reject_mutation_and_positional_arguments() -> None:
    frame = TextFrame(text="hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.text = "bye"  # type: ignore[misc]
    with pytest.raises(TypeError):
        TextFrame("hi")  # type: ignore[call-arg]
    assert dataclasses.replace(frame, text="bye").text == "bye"


def test_lanes_follow_the_design() -> None:
    assert AudioFrame.lane is Lane.DATA
    assert FunctionResultFrame.lane is Lane.CONTROL
    assert InterruptFrame.lane is Lane.SYSTEM
    assert ErrorFrame.lane is Lane.SYSTEM


def test_vocabulary_stays_small() -> None:
    assert 20 <= len(FRAME_TYPES) <= 32
    assert len(set(FRAME_TYPES)) == len(FRAME_TYPES)


@pytest.mark.parametrize(
    ("encoding", "rate", "channels", "size", "expected_ms"),
    [("pcm16", 24000, 1, 960, 20.0), ("pcmu", 8000, 1, 160, 20.0), ("pcm16", 16000, 2, 640, 10.0)],
)
def test_audio_duration(encoding: str, rate: int, channels: int, size: int,
                        expected_ms: float) -> None:
    frame = AudioFrame(audio=bytes(size), encoding=encoding,  # type: ignore[arg-type]
                       sample_rate=rate, channels=channels)
    assert frame.duration_ms == pytest.approx(expected_ms)


def test_audio_is_raw_bytes() -> None:
    frame = AudioFrame(audio=b"\x00\x01")
    assert isinstance(frame.audio, bytes)
    assert frame.encoding == "pcm16"
