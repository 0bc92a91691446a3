"""The admin API: who may use it, what it shows (never a secret), and how it refuses bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from flowspec.server.admin import Admin, allowed, attach
from flowspec.server.app import Server
from flowspec.spec.compile import compile_text

SECRET = "sk-test-4f9a1b2c3d"
LITERAL = "sk-literal-77e1aa"

SPEC = """\
flowspec: 1
name: admin-bot   # shown on the page
nodes:
  caller: {type: transport.text}
  llm:
    type: openai.responses
    api_key: ${MY_KEY}
    settings: {system_instruction: Be brief.}
edges:
  - caller -> llm -> caller
"""

OTHER = """\
flowspec: 1
name: other-bot
nodes:
  caller: {type: transport.text, path: /other}
  llm:
    type: openai.responses
    api_key: LITERAL
edges:
  - caller -> llm -> caller
""".replace("LITERAL", LITERAL)


def authorized(admin: Admin) -> aiohttp.ClientSession:
    """A client that sends the admin token with every request."""
    return aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin.token}"})


@asynccontextmanager
async def admin_server(token: str | None = None) -> AsyncIterator[tuple[Admin, str]]:
    env = {"MY_KEY": SECRET}
    specs = [(compile_text(text, f"{name}.yaml", env).raise_for_errors(), text)
             for name, text in (("admin", SPEC), ("other", OTHER))]
    server = Server([graph for graph, _text in specs])
    admin = attach(server, specs, lambda graph: graph, token=token, env=env)
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield admin, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await site.stop()
        await server.drain(5)
        await runner.cleanup()


async def test_get_shows_the_document_as_written_and_never_a_secret() -> None:
    async with admin_server() as (admin, base), authorized(admin) as http:
        async with http.get(f"{base}/admin/spec?spec=admin-bot") as response:
            assert response.status == 200
            store = admin.reloaders["admin-bot"].store
            assert response.headers["ETag"] == f'"{store.graph.content_hash}"'
            raw = await response.text()
            body = await response.json()
        assert body["version"] == 1 and body["name"] == "admin-bot"
        assert "# shown on the page" in body["text"]
        assert body["spec"]["nodes"]["llm"]["api_key"] == "${MY_KEY}"
        assert SECRET not in raw
        async with http.get(f"{base}/admin/spec?spec=other-bot") as response:
            raw = await response.text()
            body = await response.json()
        assert LITERAL not in raw and body["spec"]["nodes"]["llm"]["api_key"] == "***"
        async with http.get(f"{base}/admin/spec") as response:
            assert response.status == 404  # two specs served: name one
            assert "admin-bot" in (await response.json())["message"]


async def test_put_replaces_the_document_and_patches_need_a_patch_media_type() -> None:
    async with admin_server() as (admin, base), authorized(admin) as http:
        url = f"{base}/admin/spec?spec=admin-bot"
        async with http.patch(url, data="{}", headers={"Content-Type": "application/json"}) as r:
            assert r.status == 415
        async with http.patch(url, data="{nope", headers={
                "Content-Type": "application/merge-patch+json"}) as r:
            assert r.status == 400 and (await r.json())["error"] == "bad_json"
        async with http.put(url, data=SPEC.replace("Be brief.", "Be kind."),
                            headers={"If-Match": '"1"'}) as r:
            body = await r.json()
            assert r.status == 200 and body["version"] == 2
            assert r.headers["ETag"] == body["etag"] != '"1"'  # content-addressed
        assert body["plan"]["changes"][0]["pointer"] == "/nodes/llm/settings/system_instruction"
        assert admin.reloaders["admin-bot"].store.text.count("# shown on the page") == 1
        async with http.put(url, data=SPEC, headers={"If-Match": '"1"'}) as r:
            assert r.status == 409


async def test_a_change_the_server_cannot_route_is_rejected_whole() -> None:
    async with admin_server() as (admin, base), authorized(admin) as http:
        patch = {"nodes": {"caller": {"path": "/moved"}}}
        async with http.patch(f"{base}/admin/spec?spec=admin-bot", json=patch, headers={
                "Content-Type": "application/merge-patch+json"}) as r:
            body = await r.json()
        assert r.status == 422 and body["errors"][0]["pointer"] == "/nodes/caller/path"
        assert body["errors"][0]["line"] == 4
        assert body["plan"]["changes"][0]["applies"] == "rejected"
        assert admin.reloaders["admin-bot"].store.version == 1


async def test_every_request_needs_the_token_loopback_included() -> None:
    async with admin_server() as (admin, base), aiohttp.ClientSession() as http:
        for path in ("/admin/spec", "/admin/sessions"):
            async with http.get(f"{base}{path}?spec=admin-bot") as r:
                assert r.status == 401 and "Bearer" in (await r.json())["message"]
        async with http.patch(f"{base}/admin/spec?spec=admin-bot", json={"name": "x"}, headers={
                "Content-Type": "application/merge-patch+json"}) as r:
            assert r.status == 401
        assert admin.reloaders["admin-bot"].store.version == 1
    async with admin_server(token="s3cret") as (_admin, base), aiohttp.ClientSession() as http:
        wrong = {"Authorization": "Bearer nope"}
        async with http.get(f"{base}/admin/spec?spec=admin-bot", headers=wrong) as r:
            assert r.status == 401
        right = {"Authorization": "Bearer s3cret"}
        async with http.get(f"{base}/admin/spec?spec=admin-bot", headers=right) as r:
            assert r.status == 200
        relayed = right | {"X-Forwarded-For": "203.0.113.9"}
        async with http.get(f"{base}/admin/sessions?spec=admin-bot", headers=relayed) as r:
            assert r.status == 200 and (await r.json())["sessions"] == []


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, 401),
    ({"Authorization": "Bearer t"}, 0),
    ({"Authorization": "bearer t"}, 0),
    ({"Authorization": "Bearer t "}, 0),
    ({"Authorization": "Basic t"}, 401),
    ({"Authorization": "Bearer tt"}, 401),
    ({"Authorization": "Bearer t", "Origin": "https://evil.example", "Host": "127.0.0.1:8"},
     403),
    ({"Authorization": "Bearer t", "Origin": "null", "Host": "127.0.0.1:8"}, 403),
    ({"Authorization": "Bearer t", "Origin": "http://127.0.0.1:8", "Host": "127.0.0.1:8"}, 0),
])
def test_who_may_use_the_admin_api(headers: dict[str, str], expected: int) -> None:
    assert allowed(headers, "t") == expected
