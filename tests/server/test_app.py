"""The server: sessions per connection, the page, health, metrics, Twilio webhook, draining."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flowspec.errors import UsageError
from flowspec.server.app import Server
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.models.base import NodeSpec
from flowspec.spec.models.transports import (
    ConsoleTransportSpec,
    TextTransportSpec,
    TwilioTransportSpec,
    WebsocketTransportSpec,
)
from flowspec.testing import graph, until
from flowspec.transports.twilio import signature

from .conftest import echo_registry, running


def echo_graph(transport: NodeSpec, name: str = "echo-voice") -> CompiledGraph:
    return graph({"caller": transport, "llm": "test.echo"}, ["caller -> llm -> caller"],
                 entry="caller", name=name)


VOICE = echo_graph(WebsocketTransportSpec.model_validate(
    {"type": "transport.websocket", "audio": {"sample_rate": 16000}}))
TEXT = echo_graph(TextTransportSpec.model_validate({"type": "transport.text"}), "echo-text")
REGISTRY = echo_registry()


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def test_a_session_per_connection_and_metrics_that_move() -> None:
    async with running([VOICE, TEXT], REGISTRY) as (server, host), aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{host}/ws") as ws:
            hello = await ws.receive_json()
            assert hello["spec"] == {"name": "echo-voice", "version": 1}
            await ws.send_bytes(bytes(640))
            assert (await ws.receive_json())["type"] == "audio.started"
            assert (await ws.receive()).data == bytes(640)
            async with http.ws_connect(f"ws://{host}/chat") as chat:
                assert (await chat.receive_json())["spec"]["name"] == "echo-text"
                await chat.send_json({"type": "text", "text": "hi"})
                assert (await chat.receive_json())["type"] == "response.started"
                assert len(server.sessions) == 2
                health = await (await http.get(f"http://{host}/healthz")).json()
                assert health["status"] == "ok" and health["sessions"] == 2
                response = await http.get(f"http://{host}/metrics")
                assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                text = await response.text()
        assert metric(text, "flowspec_sessions_total", spec="echo-voice") == 1
        assert metric(text, "flowspec_sessions_active") == 2
        assert metric(text, "flowspec_transport_frames_total", spec="echo-voice",
                      direction="in", kind="AudioFrame") == 1
        assert metric(text, "flowspec_transport_frames_total", spec="echo-voice",
                      direction="out", kind="AudioFrame") == 1
        assert "flowspec_edge_queue_depth" in text
        await until(lambda: not server.sessions)
        text = (await (await http.get(f"http://{host}/metrics")).text())
        assert metric(text, "flowspec_sessions_active") == 0
        assert metric(text, "flowspec_sessions_total") == 2


async def test_the_page_and_its_assets_are_served_locally() -> None:
    async with running([VOICE], REGISTRY) as (_server, host), aiohttp.ClientSession() as http:
        page = await (await http.get(f"http://{host}/")).text()
        assert "<title>flowspec</title>" in page
        assets = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert assets and all(a.startswith("/flowspec/static/") for a in assets)
        for name in ("app.js", "capture.js", "style.css"):
            response = await http.get(f"http://{host}/flowspec/static/{name}")
            assert response.status == 200
            assert "://" not in (await response.text()).replace("wss:", "").replace("ws:", "")
        config = await (await http.get(f"http://{host}/flowspec/config.json")).json()
        assert config["name"] == "echo-voice" and config["path"] == "/ws"
        assert config["audio"]["sample_rate"] == 16000
        assert (await http.get(f"http://{host}/flowspec/static/secret.py")).status == 404


async def test_oversize_and_bad_messages_over_a_real_socket() -> None:
    spec = WebsocketTransportSpec.model_validate({"type": "transport.websocket",
                                                  "max_message_bytes": 2048})
    async with running([echo_graph(spec)], REGISTRY) as (server, host), \
            aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{host}/ws") as ws:
            await ws.receive_json()
            await ws.send_str("{{")
            assert (await ws.receive_json())["code"] == "invalid_json"
            await ws.send_bytes(bytes(4096))
            message = await ws.receive()
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 1009
        await until(lambda: not server.sessions)


async def test_twilio_webhook_answers_twiml_and_checks_signatures() -> None:
    spec = TwilioTransportSpec.model_validate({
        "type": "transport.twilio", "auth_token": "s3cret",
        "public_url": "https://bot.example.com"})
    async with running([echo_graph(spec, "phone")], REGISTRY) as (_server, host), \
            aiohttp.ClientSession() as http:
        form = {"CallSid": "CA1", "From": "+15551234"}
        sig = signature("s3cret", "https://bot.example.com/twilio/voice", form)
        response = await http.post(f"http://{host}/twilio/voice", data=form,
                                   headers={"X-Twilio-Signature": sig})
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/xml")
        xml = await response.text()
        assert '<Stream url="wss://bot.example.com/twilio/stream">' in xml
        assert '<Parameter name="From" value="+15551234"/>' in xml
        forged = await http.post(f"http://{host}/twilio/voice", data=form,
                                 headers={"X-Twilio-Signature": "AAAA"})
        assert forged.status == 403
        metrics = await (await http.get(f"http://{host}/metrics")).text()
        assert "s3cret" not in metrics


async def test_drain_refuses_new_calls_and_lets_running_ones_finish() -> None:
    async with running([VOICE], REGISTRY) as (server, host), aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{host}/ws") as ws:
            await ws.receive_json()
            drain = asyncio.ensure_future(server.drain(30))
            await until(lambda: server.draining)
            assert (await http.get(f"http://{host}/healthz")).status == 503
            refused = await http.get(f"http://{host}/ws")
            assert refused.status == 503
            assert not drain.done()  # the running call is not cut
            await ws.send_json({"type": "end"})
            assert (await ws.receive_json())["type"] == "session.ended"
            await drain
        assert not server.sessions


async def test_drain_ends_calls_left_after_the_timeout() -> None:
    async with running([VOICE], REGISTRY) as (server, host), aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{host}/ws") as ws:
            await ws.receive_json()
            await server.drain(0)
            assert (await ws.receive_json())["type"] == "session.ended"
            assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 1001


def test_unservable_specs_and_path_clashes_are_usage_errors() -> None:
    console = echo_graph(ConsoleTransportSpec.model_validate({"type": "transport.console"}))
    with pytest.raises(UsageError, match="flowspec chat"):
        Server([console])
    with pytest.raises(UsageError, match="both serve /ws"):
        Server([VOICE, echo_graph(VOICE.nodes["caller"], "other")])
