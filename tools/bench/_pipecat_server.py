"""Pipecat 1.14's realtime voice bot for the sessions benchmark, run with Pipecat's own venv.

    .venv-peers/pipecat/bin/python tools/bench/_pipecat_server.py MODEL_URL [--worker default|lean]

One session is the pipeline Pipecat's realtime examples build: its WebSocket server transport
(`SingleClientWebsocketServerTransport`, raw PCM16 at 24 kHz both ways through the serializer
below), the context aggregator pair and `OpenAIRealtimeLLMService` on the GA protocol with server
VAD, pointed at MODEL_URL, in a `PipelineWorker` run by a `WorkerRunner`. Every session of the
process shares its one event loop, as Pipecat runs them. That transport serves one client at a
time, so each session has its own listening port. `--worker default` is the pipeline as the
examples build it and `PipelineWorker(pipeline)` as users get it (RTVI processor and observers);
`lean` turns those off with public arguments (`enable_rtvi=False, enable_turn_tracking=False,
idle_timeout_secs=None`) and gives the user aggregator `ExternalUserTurnStrategies()` at once, the
strategies the realtime service asks for anyway, so that it builds no local turn analyzer.

Commands on stdin, one JSON line answered on stdout for each:
  `open N`  start N sessions; answers their ports once every one listens
  `close`   cancel every open session
  `quit`    stop
Prints `READY` once imported. Imports nothing from flowspec.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.services.openai.realtime import events
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
from pipecat.transports.websocket.server import (
    SingleClientWebsocketServerParams,
    SingleClientWebsocketServerTransport,
)
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.workers.runner import WorkerRunner

RATE = 24000


class RawPCMSerializer(FrameSerializer):
    """Binary messages are PCM16 audio both ways; an interruption tells the client to drop
    what it has not played (`transport.websocket`'s `audio.clear`)."""

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, OutputAudioRawFrame):
            return frame.audio
        if isinstance(frame, InterruptionFrame):
            return json.dumps({"type": "audio.clear"})
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if isinstance(data, bytes):
            return InputAudioRawFrame(audio=data, sample_rate=RATE, num_channels=1)
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Session:
    def __init__(self, model_url: str, worker_config: str) -> None:
        self.port = free_port()
        self.listening = asyncio.Event()
        self.transport = SingleClientWebsocketServerTransport(
            params=SingleClientWebsocketServerParams(
                audio_in_enabled=True, audio_out_enabled=True, audio_in_sample_rate=RATE,
                audio_out_sample_rate=RATE, serializer=RawPCMSerializer(), allowed_origins=[]),
            host="127.0.0.1", port=self.port)

        @self.transport.event_handler("on_websocket_ready")
        async def ready(_transport: Any) -> None:
            self.listening.set()

        settings = OpenAIRealtimeLLMService.Settings(
            model="gpt-realtime", system_instruction="You are a helpful, concise assistant.",
            session_properties=events.SessionProperties(audio=events.AudioConfiguration(
                input=events.AudioInput(turn_detection=events.TurnDetection()),
                output=events.AudioOutput(voice="marin"))))
        llm = OpenAIRealtimeLLMService(api_key="bench", base_url=model_url, settings=settings)
        # The lean configuration also tells the user aggregator up front that the service
        # drives turns; by default it first builds its local turn analyzer (a model per session).
        user = (LLMUserAggregatorParams(user_turn_strategies=ExternalUserTurnStrategies())
                if worker_config == "lean" else None)
        pair = LLMContextAggregatorPair(LLMContext(), user_params=user)
        pipeline = Pipeline([self.transport.input(), pair.user(), llm, self.transport.output(),
                             pair.assistant()])
        lean: dict[str, Any] = ({"enable_rtvi": False, "enable_turn_tracking": False,
                                 "idle_timeout_secs": None} if worker_config == "lean" else {})
        self.worker = PipelineWorker(pipeline, params=PipelineParams(
            audio_in_sample_rate=RATE, audio_out_sample_rate=RATE), **lean)
        self.runner = WorkerRunner(handle_sigint=False)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.runner.add_workers(self.worker)
        self.task = asyncio.create_task(self.runner.run())
        await self.listening.wait()

    async def cancel(self) -> None:
        await self.worker.cancel()
        if self.task is not None:
            await asyncio.wait_for(self.task, 30)


async def main(model_url: str, worker_config: str) -> None:
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    sessions: list[Session] = []
    loop = asyncio.get_running_loop()
    print("READY", flush=True)
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not line or line[0] == "quit":
            break
        if line[0] == "open":
            fresh = [Session(model_url, worker_config) for _ in range(int(line[1]))]
            await asyncio.gather(*(s.start() for s in fresh))
            sessions += fresh
            chunks = SingleClientWebsocketServerParams().audio_out_10ms_chunks
            answer: dict[str, Any] = {"ports": [s.port for s in fresh],
                                      "audio_out_chunk_ms": 10 * chunks}
        elif line[0] == "close":
            await asyncio.gather(*(s.cancel() for s in sessions))
            answer = {"closed": len(sessions)}
            sessions = []
        else:
            answer = {"error": f"unknown command {line[0]!r}"}
        print(json.dumps(answer), flush=True)
    await asyncio.gather(*(s.cancel() for s in sessions))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_url")
    ap.add_argument("--worker", choices=["default", "lean"], default="default")
    a = ap.parse_args()
    asyncio.run(main(a.model_url, a.worker))
