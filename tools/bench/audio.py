"""Throughput of flowspec.audio in × real time on one core, next to audioop and soxr.

Streams 10 s of audio through each codec and resampler in 20 ms chunks (what transports do) and in
1 s chunks, reports the median of repeated runs, and prints one markdown table. For resampling it
also prints the in-band SNR of a sine sweep, since audioop's `ratecv` is a linear interpolator and
trades quality for speed. Run: `.venv/bin/python tools/bench/audio.py [--repeat N]`.
"""

from __future__ import annotations

import os

# One core: keep BLAS from spreading a matmul over threads, which would flatter the numbers.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from flowspec import audio  # noqa: E402

SECONDS = 10.0
CHUNKS_MS = (20, 1000)
PAIRS = [(8000, 24000), (24000, 8000), (16000, 24000), (24000, 16000), (24000, 48000),
         (48000, 24000)]

Step = Callable[[bytes], Any]


def _optional(name: str) -> ModuleType | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return __import__(name)
        except ImportError:
            return None


audioop = _optional("audioop")
soxr = _optional("soxr")


def sweep(rate: int, seconds: float, top: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 16000 * np.sin(2 * np.pi * (50 * t + (top - 50) / (2 * seconds) * t * t))


def pcm(x: np.ndarray) -> bytes:
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def rate_x(make: Callable[[], Step], parts: list[bytes], repeat: int) -> float:
    """Median × real time of feeding `parts` (SECONDS of audio) to a fresh step function."""
    times = []
    for _ in range(repeat):
        step = make()
        start = time.perf_counter()
        for part in parts:
            step(part)
        times.append(time.perf_counter() - start)
    return SECONDS / statistics.median(times)


def snr_db(out: bytes, dst: int, top: float) -> float:
    """In-band SNR against the ideal sweep, at the best lag (audioop's ratecv lags its input)."""
    got = np.frombuffer(out, dtype="<i2").astype(np.float64)
    ref = sweep(dst, SECONDS, top)
    edge = dst // 10
    ref = ref[edge : ref.size - edge]
    best = -math.inf
    for lag in range(-8, 9):
        seg = got[edge + lag : edge + lag + ref.size]
        if seg.size == ref.size:
            noise = float(np.sum((seg - ref) ** 2))
            best = max(best, 10 * math.log10(float(np.sum(ref**2)) / max(noise, 1e-9)))
    return best


def fmt_x(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}×"


def codec_rows(repeat: int) -> list[list[str]]:
    rows = []
    linear = pcm(sweep(8000, SECONDS, 3600))
    coded = {"μ-law": audio.ulaw_encode(linear), "A-law": audio.alaw_encode(linear)}
    ours: dict[str, tuple[Step, Step]] = {
        "μ-law": (audio.ulaw_encode, audio.ulaw_decode),
        "A-law": (audio.alaw_encode, audio.alaw_decode),
    }
    for name, (enc, dec) in ours.items():
        tag = "ulaw" if name == "μ-law" else "alaw"
        for ms in CHUNKS_MS:
            for verb, ours_fn, data, width in (
                ("encode", enc, linear, 2),
                ("decode", dec, coded[name], 1),
            ):
                parts = chunks(data, 8 * ms * width)
                ref: float | None = None
                if audioop is not None:
                    fn = getattr(audioop, f"lin2{tag}" if verb == "encode" else f"{tag}2lin")
                    ref = rate_x(lambda fn=fn: lambda b: fn(b, 2), parts, repeat)
                mine = rate_x(lambda f=ours_fn: f, parts, repeat)
                rows.append([f"{name} {verb}", f"{ms} ms", fmt_x(mine), fmt_x(ref), "–",
                             "bit-exact with audioop"])
    return rows


Stream = tuple[Step, Callable[[], bytes]]


def flowspec_stream(src: int, dst: int) -> Stream:
    r = audio.Resampler(src, dst)
    return r.process, r.flush


def audioop_stream(src: int, dst: int) -> Stream:
    assert audioop is not None
    op = audioop
    state: list[Any] = [None]

    def step(b: bytes) -> bytes:
        out, state[0] = op.ratecv(b, 2, 1, src, dst, state[0])
        return bytes(out)

    return step, bytes


def soxr_stream(src: int, dst: int) -> Stream:
    assert soxr is not None
    stream = soxr.ResampleStream(src, dst, 1, dtype="int16", quality="HQ")

    def step(b: bytes) -> bytes:
        return bytes(stream.resample_chunk(np.frombuffer(b, dtype="<i2")).tobytes())

    def flush() -> bytes:
        return bytes(stream.resample_chunk(np.zeros(0, dtype="<i2"), last=True).tobytes())

    return step, flush


def step_of(make: Callable[[int, int], Stream], src: int, dst: int) -> Step:
    return make(src, dst)[0]


def resample_rows(repeat: int) -> list[list[str]]:
    backends: list[Callable[[int, int], Stream] | None] = [
        flowspec_stream,
        audioop_stream if audioop is not None else None,
        soxr_stream if soxr is not None else None,
    ]
    rows = []
    for src, dst in PAIRS:
        top = 0.9 * min(src, dst) / 2
        data = pcm(sweep(src, SECONDS, top))
        for ms in CHUNKS_MS:
            parts = chunks(data, src * ms // 1000 * 2)
            speeds, quality = [], []
            for make in backends:
                if make is None:
                    speeds.append(fmt_x(None))
                    quality.append("–")
                    continue
                fresh = functools.partial(step_of, make, src, dst)
                speeds.append(fmt_x(rate_x(fresh, parts, repeat)))
                step, flush = make(src, dst)
                out = b"".join(map(step, parts)) + flush()
                quality.append(f"{snr_db(out, dst, top):.0f}")
            name = f"resample {src // 1000}k→{dst // 1000}k"
            rows.append([name, f"{ms} ms", *speeds, " / ".join(quality)])
    return rows


HEADER = ["operation", "chunk", "flowspec", "audioop", "soxr HQ",
          "in-band SNR dB (flowspec / audioop / soxr)"]


def table(repeat: int) -> list[list[str]]:
    """Every row of the table (cells as printed), the header first."""
    return [HEADER, *codec_rows(repeat), *resample_rows(repeat)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="runs per cell (median is shown)")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON line")
    args = parser.parse_args()
    rows = table(args.repeat)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "|".join("---" for _ in rows[0]) + "|")
    for row in rows[1:]:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
