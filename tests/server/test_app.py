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


# -- the doors: Origin, Twilio signature, session caps -------------------------------------------


async def test_browser_sockets_are_same_origin_unless_allowed_origins_says_otherwise() -> None:
    open_to = WebsocketTransportSpec.model_validate({
        "type": "transport.websocket", "path": "/open",
        "allowed_origins": ["https://app.example.com"]})
    text = TextTransportSpec.model_validate({"type": "transport.text"})
    graphs = [VOICE, echo_graph(open_to, "open"), echo_graph(text, "echo-text")]
    async with running(graphs, REGISTRY) as (server, host), aiohttp.ClientSession() as http:
        for path in ("/ws", "/chat", "/open"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"ws://{host}{path}",
                                      headers={"Origin": "https://attacker.example"})
            assert refused.value.status == 403, path
        accepted = [
            ("/ws", {}),  # no Origin: not a browser
            ("/ws", {"Origin": f"http://{host}"}),  # the server's own page
            ("/chat", {"Origin": f"http://{host}"}),
            ("/open", {"Origin": "https://app.example.com"}),
        ]
        for path, headers in accepted:
            async with http.ws_connect(f"ws://{host}{path}", headers=headers) as ws:
                assert (await ws.receive_json())["type"] == "session.started", (path, headers)
        metrics = await (await http.get(f"http://{host}/metrics")).text()
        assert metric(metrics, "flowspec_sessions_refused_total", reason="origin") == 3
        await until(lambda: not server.sessions)


async def test_a_twilio_stream_needs_a_valid_signature_when_auth_token_is_set() -> None:
    spec = TwilioTransportSpec.model_validate({
        "type": "transport.twilio", "auth_token": "s3cret",
        "public_url": "https://bot.example.com"})
    async with running([echo_graph(spec, "phone")], REGISTRY) as (server, host), \
            aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Twilio-Signature": "AAAA"},
                        {"X-Twilio-Signature": signature("wrong", "wss://bot.example.com"
                                                                  "/twilio/stream", {})}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"ws://{host}/twilio/stream", headers=headers)
            assert refused.value.status == 403
        assert not server.sessions
        signed = signature("s3cret", "wss://bot.example.com/twilio/stream", {})
        async with http.ws_connect(f"ws://{host}/twilio/stream",
                                   headers={"X-Twilio-Signature": signed}) as ws:
            await until(lambda: len(server.sessions) == 1)
            await ws.send_json({"event": "stop"})
        metrics = await (await http.get(f"http://{host}/metrics")).text()
        assert metric(metrics, "flowspec_sessions_refused_total", reason="signature") == 3


async def test_session_caps_per_server_and_per_transport() -> None:
    capped = TextTransportSpec.model_validate({"type": "transport.text", "max_sessions": 1})
    graphs = [VOICE, echo_graph(capped, "echo-text")]
    server = Server(graphs, registry=REGISTRY, max_sessions=2)
    async with running(graphs, REGISTRY, server=server) as (_server, host), \
            aiohttp.ClientSession() as http:
        chat = await http.ws_connect(f"ws://{host}/chat")
        assert (await chat.receive_json())["type"] == "session.started"
        refused = await http.ws_connect(f"ws://{host}/chat")  # the transport's own cap
        message = await refused.receive_json()
        assert message["code"] == "server_busy" and "echo-text" in message["message"]
        assert (await refused.receive()).type is aiohttp.WSMsgType.CLOSE
        assert refused.close_code == 1013
        voice = await http.ws_connect(f"ws://{host}/ws")
        assert (await voice.receive_json())["type"] == "session.started"
        full = await http.ws_connect(f"ws://{host}/ws")  # the server's cap
        assert (await full.receive_json())["code"] == "server_busy"
        assert (await full.receive()).type is aiohttp.WSMsgType.CLOSE
        assert full.close_code == 1013
        assert len(server.sessions) == 2
        metrics = await (await http.get(f"http://{host}/metrics")).text()
        assert metric(metrics, "flowspec_sessions_refused_total", reason="capacity") == 2
        await chat.close()
        await voice.close()
        await until(lambda: not server.sessions)
        again = await http.ws_connect(f"ws://{host}/chat")  # room again
        assert (await again.receive_json())["type"] == "session.started"
        await again.close()
