"""The node families flowspec ships, declared exactly as an installed package declares its own.

This list is the one place a built-in node type is registered. Each declaration points at pieces
that live beside their concern: the spec models in `flowspec.spec.models`, ports in
`flowspec.spec.ports`, rules in `flowspec.spec.rules`, live paths in `flowspec.families.live`,
implementations (by path, imported when a session first needs one) under `flowspec.nodes` and
`flowspec.transports`. The order is the order of the spec's node union and of the schema's
`oneOf`.
"""

from __future__ import annotations

from typing import Any

from flowspec.families.family import NO_PORTS, NO_RULES, EmulatorEndpoints, NodeFamily
from flowspec.families.live import ModelLive, SettingsLive, ToolLive
from flowspec.spec import ports, rules
from flowspec.spec.models.audio import AudioConvertSpec, AudioRecordSpec, TranscriptLogSpec
from flowspec.spec.models.events import WebhookSpec
from flowspec.spec.models.realtime import RealtimeNodeSpec
from flowspec.spec.models.realtime_beta import RealtimeBetaNodeSpec
from flowspec.spec.models.responses import ResponsesNodeSpec
from flowspec.spec.models.speech import SpeechNodeSpec, TranscribeNodeSpec
from flowspec.spec.models.tools import HttpToolSpec, PythonToolSpec
from flowspec.spec.models.transports import (
    ConsoleTransportSpec,
    TextTransportSpec,
    TwilioTransportSpec,
    WavTransportSpec,
    WebsocketTransportSpec,
)

_TOOL_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
_REALTIME_EMULATED = EmulatorEndpoints({"base_url": "{ws}/realtime"})

BUILTIN_FAMILIES: tuple[NodeFamily[Any], ...] = (
    NodeFamily(
        name="openai.realtime",
        models=(RealtimeNodeSpec,),
        ports=ports.realtime_ports,
        rules=rules.realtime_rules,
        implementation="flowspec.nodes.openai_realtime.node:RealtimeNode",
        snippets=({
            "type": "openai.realtime",
            "tools": [],
            "settings": {
                "model": "gpt-realtime-1.5",
                "system_instruction": "You are a helpful, concise assistant.",
                "session_properties": {
                    "audio": {
                        "input": {"turn_detection": {"type": "semantic_vad"}},
                        "output": {"voice": "marin"},
                    }
                },
            },
        },),
        live=ModelLive("realtime", frozenset({"settings", "session_properties"})),
        emulator=_REALTIME_EMULATED,
    ),
    NodeFamily(
        name="openai.realtime_beta",
        models=(RealtimeBetaNodeSpec,),
        ports=ports.beta_ports,
        rules=rules.beta_rules,
        implementation="flowspec.nodes.openai_realtime.node:RealtimeNode",
        snippets=({
            "type": "openai.realtime_beta",
            "base_url": "ws://localhost:8000/v1/realtime",
            "settings": {
                "model": "gpt-4o-realtime-preview-2025-06-03",
                "system_instruction": "You are a helpful assistant.",
                "session_properties": {"voice": "alloy", "turn_detection": {"type": "server_vad"}},
            },
        },),
        live=ModelLive("realtime_beta", frozenset({"settings", "model", "session_properties"})),
        emulator=_REALTIME_EMULATED,
    ),
    NodeFamily(
        name="openai.responses",
        models=(ResponsesNodeSpec,),
        ports=ports.responses_ports,
        rules=rules.responses_rules,
        implementation="flowspec.nodes.openai_responses.node:ResponsesNode",
        snippets=({
            "type": "openai.responses",
            "transport": "websocket",
            "tools": [],
            "settings": {"model": "gpt-4.1", "system_instruction": "You are a helpful assistant."},
        },),
        live=ModelLive("responses"),
        emulator=EmulatorEndpoints({"base_url": "{http}", "ws_url": "{ws}/responses"}),
    ),
    NodeFamily(
        name="openai.transcribe",
        models=(TranscribeNodeSpec,),
        ports=ports.transcribe_ports,
        rules=rules.transcribe_rules,
        implementation="flowspec.nodes.openai_transcribe.node:TranscribeNode",
        snippets=({
            "type": "openai.transcribe",
            "settings": {"model": "gpt-4o-transcribe", "language": "en",
                         "turn_detection": {"type": "server_vad"}},
        },),
        live=SettingsLive(when="as one session.update of its own"),
        emulator=EmulatorEndpoints({"base_url": "{ws}/realtime"}),
    ),
    NodeFamily(
        name="openai.speech",
        models=(SpeechNodeSpec,),
        ports=ports.speech_ports,
        rules=rules.speech_rules,
        implementation="flowspec.nodes.openai_speech.node:SpeechNode",
        snippets=({
            "type": "openai.speech",
            "settings": {"model": "gpt-4o-mini-tts", "voice": "marin"},
        },),
        live=SettingsLive(),
        emulator=EmulatorEndpoints({"base_url": "{http}"}),
    ),
    NodeFamily(
        name="transport.websocket",
        models=(WebsocketTransportSpec,),
        ports=ports.audio_transport_ports,
        rules=rules.audio_transport_rules,
        implementation="flowspec.transports.websocket:WebsocketTransport",
        snippets=({"type": "transport.websocket",
                   "audio": {"encoding": "pcm16", "sample_rate": 24000}},),
    ),
    NodeFamily(
        name="transport.twilio",
        models=(TwilioTransportSpec,),
        ports=ports.twilio_ports,
        rules=rules.twilio_rules,
        implementation="flowspec.transports.twilio:TwilioTransport",
        snippets=({"type": "transport.twilio"},),
    ),
    NodeFamily(
        name="transport.text",
        models=(TextTransportSpec, ConsoleTransportSpec),
        ports=ports.text_transport_ports,
        rules=NO_RULES,
        implementation={"transport.text": "flowspec.transports.text:TextTransport",
                        "transport.console": "flowspec.transports.console:ConsoleTransport"},
        snippets=({"type": "transport.text"}, {"type": "transport.console"}),
    ),
    NodeFamily(
        name="transport.wav",
        models=(WavTransportSpec,),
        ports=ports.audio_transport_ports,
        rules=rules.audio_transport_rules,
        implementation="flowspec.transports.wav:WavTransport",
        snippets=({"type": "transport.wav", "input": "in.wav", "output": "out.wav"},),
    ),
    NodeFamily(
        name="tool",
        models=(PythonToolSpec, HttpToolSpec),
        ports=NO_PORTS,
        rules=rules.tool_rules,
        implementation={"tool.python": "flowspec.nodes.tools:PythonToolNode",
                        "tool.http": "flowspec.nodes.tools:HttpToolNode"},
        snippets=({"type": "tool.python", "handler": "package.module:function",
                   "description": "What the tool does.", "parameters": _TOOL_PARAMETERS},
                  {"type": "tool.http", "url": "https://api.example.com/endpoint",
                   "description": "What the tool does.", "parameters": _TOOL_PARAMETERS}),
        live=ToolLive(),
    ),
    NodeFamily(
        name="events.webhook",
        models=(WebhookSpec,),
        ports=NO_PORTS,
        rules=rules.webhook_rules,
        implementation="flowspec.events.webhook:WebhookNode",
        snippets=({"type": "events.webhook", "url": "https://hooks.example.com/flowspec",
                   "secret": "${WEBHOOK_SECRET}",
                   "events": ["call.started", "transcript", "tool.called", "call.ended"]},),
    ),
    NodeFamily(
        name="audio.convert",
        models=(AudioConvertSpec,),
        ports=ports.convert_ports,
        rules=NO_RULES,
        implementation="flowspec.nodes.audio_nodes:ConvertNode",
        snippets=({"type": "audio.convert",
                   "input": {"encoding": "pcmu", "sample_rate": 8000},
                   "output": {"encoding": "pcm16", "sample_rate": 24000}},),
    ),
    NodeFamily(
        name="audio.record",
        models=(AudioRecordSpec,),
        ports=ports.record_ports,
        rules=rules.path_rules("path"),
        implementation="flowspec.nodes.audio_nodes:RecordNode",
        snippets=({"type": "audio.record", "path": "recordings/{session_id}.wav"},),
    ),
    NodeFamily(
        name="log.transcript",
        models=(TranscriptLogSpec,),
        ports=ports.transcript_log_ports,
        rules=rules.path_rules("path"),
        implementation="flowspec.nodes.logs:TranscriptLogNode",
        snippets=({"type": "log.transcript", "path": "transcripts/{session_id}.jsonl"},),
    ),
)
