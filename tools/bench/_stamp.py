"""The stamp the benchmark emulator writes over the end of every audio delta (see
`_emulator_proc.py --stamp`), and how a client finds it in the audio it receives."""

from __future__ import annotations

import struct

MAGIC = b"\xff\x7f\x00\x80\xff\x7f"  # three full-scale PCM16 samples: +32767, -32768, +32767
STAMP = struct.Struct("<IQ")  # the emulator's connection number, its send time (ns)
STAMP_BYTES = len(MAGIC) + STAMP.size  # 18 bytes: 24 base64 characters, no padding


def pack(connection: int, sent_ns: int) -> bytes:
    return MAGIC + STAMP.pack(connection, sent_ns)


def find(data: bytes) -> list[tuple[int, int]]:
    """(connection, send time ns) of every whole stamp in `data`, in order."""
    out = []
    at = data.find(MAGIC)
    while 0 <= at <= len(data) - STAMP_BYTES:
        out.append(STAMP.unpack_from(data, at + len(MAGIC)))
        at = data.find(MAGIC, at + STAMP_BYTES)
    return out
