"""Throughput of flowspec.audio in × real time on one core, next to audioop and soxr.

Streams 10 s of audio through each codec and resampler in 20 ms chunks (what transports do) and in
1 s chunks, reports the median of repeated runs (the backends interleaved run by run), and prints
one markdown table. For resampling it
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


def rates(makes: dict[str, Callable[[], Step]], parts: list[bytes],
          repeat: int) -> dict[str, list[float]]:
    """× real time of feeding `parts` (SECONDS of audio) to a fresh step function, `repeat`
    times per backend, the backends interleaved (A B C A B C ...) so that they share the
    machine's conditions."""
    out: dict[str, list[float]] = {name: [] for name in makes}
    for _ in range(repeat):
        for name, make in makes.items():
            step = make()
            start = time.perf_counter()
            for part in parts:
                step(part)
            out[name].append(SECONDS / (time.perf_counter() - start))
    return out


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


def fmt_x(values: list[float] | None) -> str:
    return "–" if not values else f"{statistics.median(values):,.0f}×"


def codec_rows(repeat: int) -> list[dict[str, Any]]:
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
                makes: dict[str, Callable[[], Step]] = {"flowspec": lambda f=ours_fn: f}
                if audioop is not None:
                    fn = getattr(audioop, f"lin2{tag}" if verb == "encode" else f"{tag}2lin")
                    makes["audioop"] = lambda fn=fn: lambda b: fn(b, 2)
                measured = rates(makes, parts, repeat)
                exact = audioop is None or all(
                    ours_fn(p) == makes["audioop"]()(p) for p in parts[:50])
                rows.append({"family": "codec", "operation": f"{name} {verb}", "chunk_ms": ms,
                             **measured, "note": "bit-exact with audioop" if exact and audioop
                             else ("differs from audioop" if audioop else "")})
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


def resample_rows(repeat: int) -> list[dict[str, Any]]:
    backends: dict[str, Callable[[int, int], Stream]] = {"flowspec": flowspec_stream}
    if audioop is not None:
        backends["audioop"] = audioop_stream
    if soxr is not None:
        backends["soxr"] = soxr_stream
    rows = []
    for src, dst in PAIRS:
        top = 0.9 * min(src, dst) / 2
        data = pcm(sweep(src, SECONDS, top))
        for ms in CHUNKS_MS:
            parts = chunks(data, src * ms // 1000 * 2)
            makes = {name: functools.partial(step_of, make, src, dst)
                     for name, make in backends.items()}
            row: dict[str, Any] = {"family": "resample",
                                   "operation": f"resample {src // 1000}k→{dst // 1000}k",
                                   "chunk_ms": ms, **rates(makes, parts, repeat), "snr_db": {}}
            for name, make in backends.items():
                step, flush = make(src, dst)
                out = b"".join(map(step, parts)) + flush()
                row["snr_db"][name] = snr_db(out, dst, top)
            rows.append(row)
    return rows


HEADER = ["operation", "chunk", "flowspec", "audioop", "soxr HQ",
          "in-band SNR dB (flowspec / audioop / soxr)"]


def table(repeat: int) -> list[dict[str, Any]]:
    """Every row: the operation, chunk size, × real time per run for each backend."""
    return [*codec_rows(repeat), *resample_rows(repeat)]


def cells(row: dict[str, Any]) -> list[str]:
    snr = row.get("snr_db")
    quality = (" / ".join(f"{snr[n]:.0f}" if n in snr else "–"
                          for n in ("flowspec", "audioop", "soxr")) if snr else row["note"])
    return [row["operation"], f"{row['chunk_ms']} ms", fmt_x(row.get("flowspec")),
            fmt_x(row.get("audioop")), fmt_x(row.get("soxr")), quality]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="runs per cell (median is shown)")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON line")
    args = parser.parse_args()
    rows = table(args.repeat)
    if args.json:
        print(json.dumps({"rows": rows, "repeat": args.repeat, "seconds": SECONDS},
                         ensure_ascii=False))
        return
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "|".join("---" for _ in HEADER) + "|")
    for row in rows:
        print("| " + " | ".join(cells(row)) + " |")


if __name__ == "__main__":
    main()
