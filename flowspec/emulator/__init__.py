"""A local, protocol-faithful OpenAI server (Realtime GA/beta, Responses SSE/WebSocket)."""

from flowspec.emulator.records import ConnectionRecord
from flowspec.emulator.script import Script, load_script, parse_script
from flowspec.emulator.server import Emulator, EmulatorOptions

__all__ = [
    "ConnectionRecord",
    "Emulator",
    "EmulatorOptions",
    "Script",
    "load_script",
    "parse_script",
]
