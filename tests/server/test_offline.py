"""The offline default: which model nodes go to the emulator, and what the banner says."""

from __future__ import annotations

from pathlib import Path

from flowspec.server.offline import banner, emulated_nodes, offline_graphs
from flowspec.spec.compile import compile_file, compile_text
from flowspec.spec.models.realtime import RealtimeNodeSpec
from flowspec.spec.models.responses import ResponsesNodeSpec

SPECS = Path(__file__).resolve().parents[2] / "specs"


async def test_no_key_no_base_url_points_model_nodes_at_the_emulator() -> None:
    voice = compile_file(SPECS / "voice-assistant.yaml").raise_for_errors()
    chat = compile_file(SPECS / "text-chat.yaml").raise_for_errors()
    async with offline_graphs([voice, chat], {}, pace=0) as offline:
        assert offline.emulator_url is not None
        port = offline.emulator_url.rsplit(":", 1)[1]
        llm = offline.graphs[0].nodes["llm"]
        assert isinstance(llm, RealtimeNodeSpec)
        assert llm.base_url == f"ws://127.0.0.1:{port}/v1/realtime"
        responses = offline.graphs[1].nodes["llm"]
        assert isinstance(responses, ResponsesNodeSpec)
        assert responses.ws_url == f"ws://127.0.0.1:{port}/v1/responses"
        assert responses.base_url == f"http://127.0.0.1:{port}/v1"
        text = banner(offline)
        assert text is not None and "emulator" in text and "weather-voice/llm" in text
    # The compiled graphs themselves are untouched.
    original = voice.nodes["llm"]
    assert isinstance(original, RealtimeNodeSpec)
    assert original.base_url == "wss://api.openai.com/v1/realtime"
    assert offline.graphs[0].edges == voice.edges


async def test_a_key_or_an_explicit_url_keeps_the_spec_as_written() -> None:
    voice = compile_file(SPECS / "voice-assistant.yaml").raise_for_errors()
    assert emulated_nodes(voice, {"OPENAI_API_KEY": "sk-live"}) == []
    explicit = compile_text(
        (SPECS / "voice-assistant.yaml").read_text().replace(
            "type: openai.realtime\n", "type: openai.realtime\n    base_url: wss://proxy.example/v1/realtime\n"),
        env={}).raise_for_errors()
    assert emulated_nodes(explicit, {}) == []
    async with offline_graphs([explicit], {}) as offline:
        assert offline.emulator_url is None and banner(offline) is None
        assert offline.graphs == (explicit,)
