"""`flowspec serve` as a process: what a load balancer sees while it drains, connections that
never finish their headers, and `--workers` serving one truth."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from flowspec.server.guard import token_path

ROOT = Path(__file__).resolve().parents[2]
GUARD = 30.0
"""Seconds before a step counts as hung (a guard, not a timing assertion)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowspec.cli", "serve", "specs/text-chat.yaml", "--port",
        str(port), "--no-watch", "--no-admin", *args, cwd=ROOT, env=env | {
            "PYTHONUNBUFFERED": "1"}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    async with asyncio.timeout(GUARD), aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return process, base
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)


async def stop(process: asyncio.subprocess.Process) -> str:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(process.communicate(), GUARD)
    return out.decode()


async def test_healthz_answers_503_while_calls_drain() -> None:
    process, base = await start("--drain-timeout", "20")
    try:
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(base.replace("http", "ws") + "/chat")
            assert (await ws.receive_json())["type"] == "session.started"
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(GUARD):
                while True:
                    async with http.get(f"{base}/healthz") as response:
                        if response.status == 503:
                            body = await response.json()
                            break
                    await asyncio.sleep(0.02)
            assert body["status"] == "draining" and body["sessions"] == 1
            async with http.get(f"{base}/chat") as refused:  # no new calls meanwhile
                assert refused.status == 503
            await ws.send_json({"type": "end"})
            async with asyncio.timeout(GUARD):
                await process.wait()
    finally:
        out = await stop(process)
    assert process.returncode == 0, out


async def test_connections_that_never_finish_their_headers_are_closed() -> None:
    process, base = await start("--header-timeout", "0.5")
    port = int(base.rsplit(":", 1)[1])
    try:
        sockets = []
        for index in range(50):
            sock = socket.create_connection(("127.0.0.1", port))
            # Half a request line, or a request line and a header that never ends.
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " if index % 2
                         else b"GET /heal")
            sock.setblocking(False)
            sockets.append(sock)
        started = time.monotonic()
        closed = 0
        async with asyncio.timeout(GUARD):
            while closed < len(sockets):
                closed = 0
                for sock in sockets:
                    try:
                        closed += sock.recv(1024) == b""
                    except BlockingIOError:
                        pass
                    except ConnectionError:
                        closed += 1
                await asyncio.sleep(0.05)
        held = time.monotonic() - started
        for sock in sockets:
            sock.close()
        async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as response:
            assert response.status == 200  # the server went on serving meanwhile
        print(f"50 slow-header connections closed after {held:.2f} s")
    finally:
        await stop(process)


async def test_workers_print_one_banner_share_one_emulator_and_serve_every_change(
        tmp_path: Path) -> None:
    spec = tmp_path / "bot.yaml"
    spec.write_text((ROOT / "specs" / "text-chat.yaml").read_text())
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "FLOWSPEC_ADMIN_TOKEN")}
    env |= {"FLOWSPEC_STATE_DIR": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowspec.cli", "serve", str(spec), "--port", str(port),
        "--workers", "2", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        # A new connection per request, so the kernel spreads them over the workers.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) \
                as http:
            async with asyncio.timeout(GUARD):
                workers: set[int] = set()
                while len(workers) < 2:  # both workers answer
                    try:
                        async with http.get(f"{base}/healthz") as response:
                            workers.add((await response.json())["pid"])
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
            token = token_path(port, env).read_text().strip()
            auth = {"Authorization": f"Bearer {token}"}
            async with http.patch(f"{base}/admin/spec", json={"description": "Changed."},
                                  headers=auth | {"Content-Type": "application/merge-patch+json"}
                                  ) as response:
                assert response.status == 200, await response.text()
                changed = await response.json()
            # Every worker serves the change within the bound README states (1 s).
            await asyncio.sleep(1.0)
            seen = []
            for _ in range(20):
                async with http.get(f"{base}/healthz") as r:
                    body = await r.json()
                    seen.append((body["pid"], body["specs"][0]["version"],
                                 body["specs"][0]["etag"]))
            assert {pid for pid, _v, _e in seen} == workers
            assert {(v, f'"{e}"') for _p, v, e in seen} == {(changed["version"],
                                                             changed["etag"])}
    finally:
        out = await stop(process)
    assert out.count("listening on") == 1, out
    assert out.count("built-in OpenAI emulator") == 1, out
    assert out.count(token) == 1, out


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_serve_over_tls(certificate: tuple[Path, Path]) -> None:
    """https and wss, as a browser needs for the page's microphone anywhere but localhost."""
    import ssl

    cert, key = certificate
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowspec.cli", "serve", "specs/text-chat.yaml", "--port",
        str(port), "--no-watch", "--no-admin", "--tls-cert", str(cert), "--tls-key", str(key),
        cwd=ROOT, env=env | {"PYTHONUNBUFFERED": "1"}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(GUARD):
                while True:
                    try:
                        async with http.get(f"https://127.0.0.1:{port}/healthz",
                                            ssl=trust) as response:
                            assert response.status == 200
                            break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
            async with http.ws_connect(f"wss://127.0.0.1:{port}/chat", ssl=trust) as ws:
                assert (await ws.receive_json())["type"] == "session.started"
    finally:
        out = await stop(process)
    assert f"listening on https://127.0.0.1:{port}/" in out
