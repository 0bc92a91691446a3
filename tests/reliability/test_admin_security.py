"""The admin API's door: loopback only without a token; with one, other addresses need it, and it
is compared in constant time. (The patch endpoint's fuzzing is not covered here.)"""

from __future__ import annotations

import hmac

import pytest

from flowspec.server import admin

TOKEN = "admin-token-4b1d"


@pytest.mark.parametrize(("remote", "headers", "token", "expected"), [
    ("127.0.0.1", {}, None, 0),
    ("::1", {}, None, 0),
    ("10.0.0.5", {}, None, 403),
    ("203.0.113.9", {"Authorization": f"Bearer {TOKEN}"}, None, 403),
    ("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}, None, 403),
    ("127.0.0.1", {"Forwarded": "for=203.0.113.9"}, None, 403),
    (None, {}, None, 403),
    ("not-an-address", {}, None, 403),
    ("10.0.0.5", {}, TOKEN, 401),
    ("10.0.0.5", {"Authorization": "Bearer wrong"}, TOKEN, 401),
    ("10.0.0.5", {"Authorization": f"Basic {TOKEN}"}, TOKEN, 401),
    ("10.0.0.5", {"Authorization": f"Bearer {TOKEN[:-1]}"}, TOKEN, 401),
    ("10.0.0.5", {"Authorization": f"Bearer {TOKEN}"}, TOKEN, 0),
    ("127.0.0.1", {}, TOKEN, 0),
])
def test_who_may_use_the_admin_api(remote: str | None, headers: dict[str, str],
                                   token: str | None, expected: int) -> None:
    assert admin.allowed(remote, headers, token) == expected


def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(admin.hmac, "compare_digest", spy)
    assert admin.allowed("10.0.0.5", {"Authorization": "Bearer guess"}, TOKEN) == 401
    assert compared == [(b"guess", TOKEN.encode())]
