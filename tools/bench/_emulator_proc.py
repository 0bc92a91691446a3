"""The emulator in its own process, for benchmarks that must keep its CPU out of flowspec's.

    python tools/bench/_emulator_proc.py [--chunk-ms 20] [--say-words 400]

Prints `PORT <n>` once it listens. Every reply says the same long text (`--say-words` words), so a
session that asks once keeps receiving real-time audio for minutes (the speech is synthesised
once, at start-up, and reused). Each line on stdin is a
command; the answer is one JSON line on stdout:
  `stats`  per realtime connection: audio bytes appended by the client, audio deltas sent
  `quit`   stop
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import json
import sys
from typing import Any

from flowspec.emulator import Emulator, parse_script, voice

WORDS = "the quick brown fox jumps over the lazy dog while the band plays on".split()


def long_text(words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(words)) + "."


def stats(emulator: Emulator) -> dict[str, Any]:
    rows = []
    for record in emulator.of_kind("realtime"):
        appended = sum(len(base64.b64decode(m.get("audio", ""))) for m in record.received
                       if m.get("type") == "input_audio_buffer.append")
        deltas = sum(1 for m in record.sent if m.get("type") == "response.output_audio.delta")
        rows.append({"appended_bytes": appended, "deltas": deltas, "closed": record.closed})
        # Keep memory flat over long runs: the records are only read here.
        record.received.clear()
        record.sent.clear()
    return {"connections": rows}


async def main(chunk_ms: int, say_words: int) -> None:
    # Every reply says the same text: synthesise it once, not once per session, so that the
    # emulator's CPU goes to the wire protocol the benchmark is about.
    voice.synthesize = functools.lru_cache(maxsize=4)(voice.synthesize)
    voice.synthesize(long_text(say_words), 24000)
    script = parse_script(json.dumps({"rules": [{"say": long_text(say_words)}]}))
    async with Emulator.start(pace=1.0, chunk_ms=chunk_ms, script=script,
                              keep_records=True) as emulator:
        print(f"PORT {emulator.port}", flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            command = line.strip()
            if command == "stats":
                print(json.dumps(stats(emulator)), flush=True)
            elif command in ("quit", ""):
                return


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunk-ms", type=int, default=20)
    ap.add_argument("--say-words", type=int, default=400)
    a = ap.parse_args()
    asyncio.run(main(a.chunk_ms, a.say_words))
