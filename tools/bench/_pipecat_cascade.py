"""Pipecat 1.14's cascaded voice bot for the cascade benchmark, run with Pipecat's own venv.

    .venv-peers/pipecat/bin/python tools/bench/_pipecat_cascade.py PORT [--turns 200]
        [--warmup 10] [--worker lean|default]

PORT is a `flowspec emulate --pace 0` already listening (cascade.py starts it). The pipeline is
the cascade of Pipecat's examples, every service as Pipecat ships it, pointed at the emulator by
its public arguments (api_key "bench"):
`OpenAIRealtimeSTTService` (a Realtime transcription session over `websockets`,
`/v1/realtime?intent=transcription`) → the context aggregator pair's user side →
`OpenAIResponsesLLMService` (the Responses API over its WebSocket, `/v1/responses`) →
`OpenAITTSService` (`POST /v1/audio/speech` through the openai SDK's httpx client, PCM) → a sink
standing in for the output transport → the assistant side of the pair, in a `PipelineWorker` run
by a `WorkerRunner`. All three class names exist in 1.14 as named.

Turns are manual, as on flowspec's side (`turn_detection: false` there): the STT service runs
with `turn_detection=False` and commits its buffer on `VADUserStoppedSpeakingFrame`, so each
turn queues `VADUserStartedSpeakingFrame`, 300 ms of audio in 20 ms `InputAudioRawFrame`s and
`VADUserStoppedSpeakingFrame`, which is what Pipecat's VAD would push. What closes the user turn
is Pipecat's user turn stop strategy: its default runs a local smart-turn model, and
`SpeechTimeoutUserTurnStopStrategy` (like `ExternalUserTurnStopStrategy`) waits on timers after
the VAD stop or the transcript. The aggregator is given `SpeechTimeoutUserTurnStopStrategy` with
`user_speech_timeout=0` and the STT service `ttfs_p99_latency=0` (both public arguments), so the
turn closes as the final transcript arrives and the hop measures Pipecat's processing, not a
policy wait that flowspec's manual turns do not have. `--worker lean` (the default here) turns
off RTVI, turn tracking and the idle timeout (`enable_rtvi=False, enable_turn_tracking=False,
idle_timeout_secs=None`), Pipecat at its cheapest; `default` keeps the worker as users get it,
with only the idle timeout off.

The stamps are taken at the same seams as flowspec's side, without changing Pipecat's code: each
service's `_websocket_connect` is wrapped on the instance so that the `websockets` connection it
returns stamps its own `send` and `recv` (the STT commit written and its final transcript off the
socket; `response.create` handed to and written by `send`; the reply's text deltas off the
socket); the TTS service gets an httpx client (its public `http_client` argument) whose request
hook stamps a request handed to the client and asks httpcore's `trace` extension for the moment
its headers are written; the sink stamps each `TTSAudioRawFrame`, and the turn ends when
`LLMFullResponseEndFrame` reaches it (the TTS service queues that frame behind the turn's audio).
One difference of place: flowspec's socket parses a message before handing it over, Pipecat's
services parse after `recv` returns, so the transcript event's `json.loads` falls inside Pipecat's
first hop.

CPU is `time.process_time()` over the measured turns (after `--warmup`), this whole process. The
last stdout line is the JSON result (`_cascade_common.result`). Imports nothing from flowspec.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger
from openai import DefaultAsyncHttpxClient
from pipecat.audio.vad.vad_analyzer import VAD_STOP_SECS
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    LLMFullResponseEndFrame,
    TTSAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.openai.responses.llm import OpenAIResponsesLLMService
from pipecat.services.openai.stt import OpenAIRealtimeSTTService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.turns.user_start import VADUserTurnStartStrategy
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cascade_common import (  # noqa: E402
    COMPLETED,
    RATE,
    SYSTEM_INSTRUCTION,
    TRANSCRIBE_MODEL,
    TURN_TIMEOUT_S,
    Stamps,
    is_commit,
    is_create,
    result,
    turn_chunks,
)

OnSend = Callable[[str, bool], None]
OnRecv = Callable[[str], None]


def stamp_socket(service: Any, on_send: OnSend, on_recv: OnRecv) -> None:
    """Wrap the connection `service` opens so that its `send` (before and after the write) and
    `recv` report each message; the service's own code runs unchanged around them."""
    connect = service._websocket_connect

    async def stamped(uri: str, **kwargs: Any) -> Any:
        ws = await connect(uri, **kwargs)
        send, recv = ws.send, ws.recv

        async def stamped_send(message: Any, *args: Any, **kw: Any) -> None:
            text = message if isinstance(message, str) else ""
            on_send(text, False)
            await send(message, *args, **kw)
            on_send(text, True)

        async def stamped_recv(*args: Any, **kw: Any) -> Any:
            message = await recv(*args, **kw)
            if isinstance(message, str):
                on_recv(message)
            return message

        # The connection's own `__aiter__` calls `self.recv`, so the STT's `async for` goes
        # through the instance attribute as well.
        ws.send, ws.recv = stamped_send, stamped_recv
        return ws

    service._websocket_connect = stamped


class Sink(FrameProcessor):
    """Where the output transport would be: stamps each piece of speech audio and says when
    the reply has been spoken."""

    def __init__(self, stamps: Stamps) -> None:
        super().__init__()
        self.stamps = stamps
        self.ended = asyncio.Event()
        self._last: float | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self._last = time.perf_counter()
        elif isinstance(frame, LLMFullResponseEndFrame) and direction == FrameDirection.DOWNSTREAM:
            if self._last is not None:
                self.stamps.last_audio.append(self._last)
                self._last = None
            self.ended.set()
        await self.push_frame(frame, direction)


def speech_client(stamps: Stamps) -> Any:
    async def trace(event: str, _info: dict[str, Any]) -> None:
        if event == "http11.send_request_headers.complete":
            stamps.speech_sent.append(time.perf_counter())

    async def on_request(request: Any) -> None:
        if request.url.path.endswith("/audio/speech"):
            stamps.speech_starts.append(time.perf_counter())
            request.extensions["trace"] = trace

    return DefaultAsyncHttpxClient(event_hooks={"request": [on_request]})


class Bot:
    def __init__(self, port: int, worker_config: str, stamps: Stamps) -> None:
        base = f"127.0.0.1:{port}/v1"
        self.stamps = stamps
        self.ready = asyncio.Event()
        self.stt = OpenAIRealtimeSTTService(
            api_key="bench", base_url=f"ws://{base}/realtime", turn_detection=False,
            ttfs_p99_latency=0,
            settings=OpenAIRealtimeSTTService.Settings(model=TRANSCRIBE_MODEL))
        self.llm = OpenAIResponsesLLMService(
            api_key="bench", base_url=f"http://{base}", ws_url=f"ws://{base}/responses",
            settings=OpenAIResponsesLLMService.Settings(system_instruction=SYSTEM_INSTRUCTION))
        self.tts = OpenAITTSService(api_key="bench", base_url=f"http://{base}",
                                    http_client=speech_client(stamps))
        stamp_socket(self.stt, self._stt_sent, self._stt_received)
        stamp_socket(self.llm, self._llm_sent, stamps.received)
        strategies = UserTurnStrategies(
            start=[VADUserTurnStartStrategy()],
            stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0)])
        pair = LLMContextAggregatorPair(
            LLMContext(), user_params=LLMUserAggregatorParams(user_turn_strategies=strategies))
        self.sink = Sink(stamps)
        pipeline = Pipeline([self.stt, pair.user(), self.llm, self.tts, self.sink,
                             pair.assistant()])
        options: dict[str, Any] = {"idle_timeout_secs": None}
        if worker_config == "lean":
            options |= {"enable_rtvi": False, "enable_turn_tracking": False}
        self.worker = PipelineWorker(pipeline, params=PipelineParams(
            audio_in_sample_rate=RATE, audio_out_sample_rate=RATE), **options)
        self.runner = WorkerRunner(handle_sigint=False)
        self.task: asyncio.Task[None] | None = None

    def _stt_sent(self, text: str, written: bool) -> None:
        if written and is_commit(text):
            self.stamps.commits.append(time.perf_counter())

    def _stt_received(self, text: str) -> None:
        if COMPLETED in text:
            self.stamps.finals.append(time.perf_counter())
        elif '"session.updated"' in text:
            self.ready.set()

    def _llm_sent(self, text: str, written: bool) -> None:
        if not is_create(text):
            return
        if written:
            self.stamps.created()
        else:
            self.stamps.handed.append(time.perf_counter())

    async def start(self) -> None:
        await self.runner.add_workers(self.worker)
        self.task = asyncio.create_task(self.runner.run())
        async with asyncio.timeout(TURN_TIMEOUT_S):
            await self.ready.wait()

    async def turn(self) -> None:
        self.sink.ended.clear()
        frames: list[Frame] = [VADUserStartedSpeakingFrame()]
        frames += [InputAudioRawFrame(audio=chunk, sample_rate=RATE, num_channels=1)
                   for chunk in turn_chunks()]
        frames.append(VADUserStoppedSpeakingFrame(stop_secs=VAD_STOP_SECS))
        await self.worker.queue_frames(frames)
        async with asyncio.timeout(TURN_TIMEOUT_S):
            await self.sink.ended.wait()

    async def stop(self) -> None:
        await self.worker.cancel()
        if self.task is not None:
            await asyncio.wait_for(self.task, TURN_TIMEOUT_S)


async def measure(port: int, turns: int, warmup: int, worker_config: str) -> dict[str, Any]:
    stamps = Stamps()
    bot = Bot(port, worker_config, stamps)
    await bot.start()
    try:
        for _ in range(warmup):
            await bot.turn()
        cpu = time.process_time()
        for _ in range(turns):
            await bot.turn()
        cpu = time.process_time() - cpu
    finally:
        await bot.stop()
    return result("pipecat", stamps, turns, warmup, cpu, worker=worker_config,
                  pipecat_version=importlib.metadata.version("pipecat-ai"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--turns", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--worker", choices=["lean", "default"], default="lean")
    a = ap.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    out = asyncio.run(measure(a.port, a.turns, a.warmup, a.worker))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
