"""Replicas sharing one truth in Redis: two (then three) `flowspec serve` processes on one store,
against a real `redis-server` and one emulator that stands in for the provider of both."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from flowspec.emulator import Emulator

from .redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]
GUARD = 30.0
"""Seconds before a step counts as hung (a guard, not a timing assertion)."""
TOKEN = "replica-admin-token-5e1f"
MERGE = {"Content-Type": "application/merge-patch+json", "Authorization": f"Bearer {TOKEN}"}

SPEC = """\
# Served by every replica.
flowspec: 1
name: replicated
nodes:
  caller: {type: transport.websocket}
  llm:
    type: openai.realtime
    base_url: EMULATOR
    api_key: test-key
    settings:
      system_instruction: You are terse.   # the persona
edges:
  - caller -> llm -> caller
"""


class Replica:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.base = f"http://127.0.0.1:{port}"

    async def health(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        async with http.get(f"{self.base}/healthz") as response:
            body: dict[str, Any] = await response.json()
            body["http_status"] = response.status
            return body

    async def patch(self, http: aiohttp.ClientSession, body: Any,
                    if_match: str | None = None) -> tuple[int, dict[str, Any]]:
        headers = MERGE | ({"If-Match": if_match} if if_match else {})
        async with http.patch(f"{self.base}/admin/spec", json=body, headers=headers) as r:
            return r.status, await r.json()


@asynccontextmanager
async def replica(spec: Path, store: str, state: Path) -> AsyncIterator[Replica]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env |= {"FLOWSPEC_ADMIN_TOKEN": TOKEN, "FLOWSPEC_STATE_DIR": str(state)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowspec.cli", "serve", str(spec), "--port", str(port),
        "--store", store, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    served = Replica(process, port)
    try:
        async with asyncio.timeout(GUARD), aiohttp.ClientSession() as http:
            while True:
                try:
                    if (await served.health(http))["http_status"] == 200:
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), GUARD)


async def until(check: Any, what: str) -> Any:
    try:
        async with asyncio.timeout(GUARD):
            while True:
                value = await check()
                if value:
                    return value
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


def settings(**values: Any) -> dict[str, Any]:
    return {"nodes": {"llm": {"settings": values}}}


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator.start(pace=0, keep_records=True) as emu:
        yield emu


async def test_replicas_on_one_store(tmp_path: Path, emulator: Emulator) -> None:
    redis = RedisServer(tmp_path).start()
    spec = tmp_path / "bot.yaml"
    spec.write_text(SPEC.replace("EMULATOR", f"{emulator.ws_base_url}/realtime"))
    try:
        async with replica(spec, redis.url, tmp_path / "a") as a, \
                replica(spec, redis.url, tmp_path / "b") as b, aiohttp.ClientSession() as http:
            # A live session on B.
            ws = await http.ws_connect(b.base.replace("http", "ws") + "/ws")
            assert (await ws.receive_json())["type"] == "session.started"
            async with asyncio.timeout(GUARD):
                record = await emulator.wait_connection("realtime")
                await record.wait_sent("session.updated")

            # A change on A reaches B's live session as one session.update.
            status, body = await a.patch(http, settings(system_instruction="Be a pirate."))
            assert status == 200, body
            async with asyncio.timeout(GUARD):
                updates = await record.wait_received("session.update", count=2)
            assert updates[1]["session"] == {"type": "realtime", "instructions": "Be a pirate."}
            version = body["version"]
            for served in (a, b):
                health = await served.health(http)
                assert health["specs"][0]["version"] == version
                assert health["specs"][0]["source"]["ok"] is True
            assert "Be a pirate." not in spec.read_text()  # the store is the truth

            # Twenty changes based on the same version, across both replicas: one wins.
            etag = body["etag"]
            answers = await asyncio.gather(*(
                (a if n % 2 else b).patch(http, settings(system_instruction=f"Persona {n}."),
                                          if_match=etag) for n in range(20)))
            statuses = sorted(status for status, _ in answers)
            assert statuses == [200] + [409] * 19, answers
            winner = next(body for status, body in answers if status == 200)
            await until(lambda: _all_at(http, (a, b), winner["version"]), "both replicas")

            # Redis goes away: both keep serving their version, say so, and refuse changes.
            redis.stop()
            for served in (a, b):
                health = await until(lambda s=served: _source_down(http, s), "store down")
                assert health["http_status"] == 200
                assert health["specs"][0]["version"] == winner["version"]
            status, body = await a.patch(http, settings(system_instruction="Alone."))
            assert status == 503 and body["error"] == "store_unavailable", body
            metrics = await (await http.get(f"{a.base}/metrics")).text()
            assert 'flowspec_source_up{kind="redis",spec="replicated"} 0.0' in metrics
            await ws.send_json({"type": "text", "text": "still there?"})
            assert (await ws.receive_json())["type"]  # the call goes on meanwhile

            # It comes back (empty: no persistence): a change goes through again.
            redis = RedisServer(tmp_path, redis.port).start()

            async def accepted() -> bool:
                status, _ = await a.patch(http, settings(system_instruction="Back again."))
                return status == 200

            await until(accepted, "a change after the store is back")
            latest = (await a.health(http))["specs"][0]["version"]
            assert latest > winner["version"]  # numbers never go back
            await until(lambda: _all_at(http, (a, b), latest), "both replicas again")

            # A replica started later serves the latest version at once.
            async with replica(spec, redis.url, tmp_path / "c") as c:
                health = await c.health(http)
                assert health["specs"][0]["version"] == latest
            await ws.close()
    finally:
        redis.stop()


async def _all_at(http: aiohttp.ClientSession, replicas: tuple[Replica, ...],
                  version: int) -> bool:
    for served in replicas:
        if (await served.health(http))["specs"][0]["version"] != version:
            return False
    return True


async def _source_down(http: aiohttp.ClientSession, served: Replica) -> dict[str, Any] | None:
    health = await served.health(http)
    return None if health["specs"][0]["source"]["ok"] else health
