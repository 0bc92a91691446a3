"""The signature on every webhook delivery, and how a receiver checks it.

`X-Flowspec-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. Signing the
timestamp with the body lets a receiver refuse a delivery replayed later (`tolerance_s`), and
the `v1=` scheme leaves room for another algorithm without breaking old receivers.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Flowspec-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300.0


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    """The signature header's value for `body` sent now (or at `timestamp`)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return f"t={stamp},{SCHEME}={_digest(secret, stamp, body)}"


def verify(secret: str, header: str, body: bytes, *, tolerance_s: float = DEFAULT_TOLERANCE_S,
           now: float | None = None) -> bool:
    """Whether `header` is a valid signature of `body` by `secret`, made within `tolerance_s`
    of `now`. Compares in constant time; a malformed header is simply not valid."""
    parts: dict[str, list[str]] = {}
    for piece in header.split(",")[:8]:
        key, eq, value = piece.strip().partition("=")
        if eq:
            parts.setdefault(key, []).append(value)
    stamps = parts.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit() or len(stamps[0]) > 12:
        return False
    stamp = int(stamps[0])
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance_s:
        return False
    expected = _digest(secret, stamp, body)
    return any(hmac.compare_digest(expected, given) for given in parts.get(SCHEME, []))


def _digest(secret: str, stamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(stamp).encode() + b"." + body,
                    hashlib.sha256).hexdigest()
