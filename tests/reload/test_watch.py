"""The spec file as the truth: saves are seen by content, other files in its directory are not,
a ConfigMap's symlink swap is, and admin changes are written back to it (comments kept)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from flowspec.runtime.bus import BusEvent
from flowspec.server.logging import configure_logging
from flowspec.testing import until

from .conftest import VOICE, Served, serving, settings, wait, without_id

ROOT = Path(__file__).resolve().parents[2]

PIRATE = VOICE.replace("You are terse.", "You are a pirate.")


@asynccontextmanager
async def following(tmp_path: Path, spec: Path | None = None) -> AsyncIterator[Served]:
    """A served spec whose truth is its file, followed (watched) while the block runs."""
    async with serving(tmp_path, source=True, spec=spec) as served:
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(served.reloader.follow(stop))
            await asyncio.sleep(0.2)  # let the watcher start listening
            try:
                yield served
            finally:
                stop.set()


async def test_saving_the_file_updates_live_sessions(tmp_path: Path) -> None:
    async with following(tmp_path) as served:
        _ws, _hello, record = await served.call()
        served.path.write_text(PIRATE)
        await until(lambda: served.reloader.store.version == 2, polls=400)
        async with wait():
            updates = await record.wait_received("session.update", count=2)
        assert without_id(updates[1])["session"] == {"type": "realtime",
                                                     "instructions": "You are a pirate."}


async def test_other_files_and_same_content_saves_do_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with following(tmp_path) as served:
        reloads: list[BusEvent] = []
        served.server.bus.subscribe(lambda event: reloads.append(event)
                                    if type(event).__name__ == "SpecReloaded" else None)
        started = len(caplog.records)
        log = tmp_path / "serve.log"
        transcripts = tmp_path / "transcripts"
        transcripts.mkdir()
        for n in range(40):  # 2 s of writes beside the spec
            (tmp_path / "notes.txt").write_text(f"hi {n}")
            with log.open("a") as handle:
                handle.write(f"line {n}\n")
            (transcripts / "call.jsonl").write_text("{}\n" * n)
            if n % 10 == 0:
                served.path.write_text(VOICE)  # the same bytes again
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert reloads == [] and served.reloader.store.version == 1
        noise = [r.getMessage() for r in caplog.records[started:]
                 if r.name.startswith("flowspec") and r.levelno >= logging.INFO]
        assert noise == [], noise
    # The file-event library reports each batch at INFO; serve's logging keeps that out.
    root = logging.getLogger()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(root, "handlers", list(root.handlers))
        mp.setattr(root, "level", root.level)
        configure_logging("text")
        assert not logging.getLogger("watchfiles.main").isEnabledFor(logging.INFO)


async def test_a_configmap_symlink_swap_is_applied_once(tmp_path: Path) -> None:
    mount = tmp_path / "mount"
    mount.mkdir()
    first = mount / "..2026_12_01_00_00_00.1"
    first.mkdir()
    (first / "bot.yaml").write_text(VOICE)
    (mount / "..data").symlink_to(first.name)
    (mount / "bot.yaml").symlink_to("..data/bot.yaml")
    async with following(tmp_path, spec=mount / "bot.yaml") as served:
        _ws, _hello, record = await served.call()
        applied: list[BusEvent] = []
        served.server.bus.subscribe(lambda event: applied.append(event)
                                    if type(event).__name__ == "SpecReloaded" else None)
        # What the kubelet does: a new timestamped directory, a new link, renamed over ..data.
        second = mount / "..2026_12_01_00_01_00.2"
        second.mkdir()
        (second / "bot.yaml").write_text(PIRATE)
        (mount / "..data_tmp").symlink_to(second.name)
        os.rename(mount / "..data_tmp", mount / "..data")
        await until(lambda: served.reloader.store.version == 2, polls=400)
        await asyncio.sleep(0.5)
        assert len(applied) == 1 and served.reloader.store.version == 2
        async with wait():
            updates = await record.wait_received("session.update", count=2)
        assert "pirate" in updates[1]["session"]["instructions"]


async def test_a_save_that_does_not_validate_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flowspec.reload")
    async with following(tmp_path) as served:
        _ws, _hello, record = await served.call()
        served.path.write_text(VOICE.replace("voice: marin", "voice: 12"))
        await until(lambda: any("bot.yaml:17:" in r.getMessage() for r in caplog.records),
                    polls=400)
        assert served.reloader.store.version == 1
        assert len(record.received_of("session.update")) == 1


async def test_an_admin_change_is_written_back_and_survives_a_restart(tmp_path: Path) -> None:
    async with following(tmp_path) as served:
        status, body = await served.patch(settings(system_instruction="Talk like a pirate."))
        assert status == 200, body
        text = served.path.read_text()
        [line] = [line for line in text.splitlines() if "system_instruction:" in line]
        assert "Talk like a pirate." in line and line.endswith("# the persona")
        assert "# A voice bot for reload tests." in text and "# the browser protocol" in text
        await asyncio.sleep(0.3)  # the watcher sees our own write: nothing happens
        assert served.reloader.store.version == 2
    # A new server on the same file starts from the change, with the same number.
    async with serving(tmp_path, source=True, write=False) as again:
        assert again.reloader.store.version == 2
        assert "Talk like a pirate." in again.reloader.store.text
        status, body = await again.get()
        assert body["version"] == 2


async def test_a_file_changed_since_the_admin_change_was_based_on_gets_409(
        tmp_path: Path) -> None:
    async with serving(tmp_path, source=True) as served:  # not watching: the file moves on
        served.path.write_text(PIRATE)
        status, body = await served.patch(settings(system_instruction="Be brief."))
        assert status == 409 and body["error"] == "conflict", body
        assert body["running"]["version"] == 1 and body["file"]["version"] == 2
        assert served.path.read_text() == PIRATE
        assert served.reloader.store.version == 1


async def test_a_read_only_spec_file_answers_read_only_source(tmp_path: Path) -> None:
    """As a mounted ConfigMap is: a read-only file system (root can write any file, so as root
    the directory is bind-mounted read-only in a mount namespace of the server's own)."""
    mount = tmp_path / "config"
    mount.mkdir()
    spec = mount / "bot.yaml"
    spec.write_text(TEXT_BOT)
    port = free_port()
    command = [sys.executable, "-m", "flowspec.cli", "serve", str(spec), "--port", str(port),
               "--no-watch", "--admin-token-file", str(tmp_path / "token")]
    (tmp_path / "token").write_text("read-only-test-token\n")
    if os.geteuid() == 0:
        command = ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" "$0" && '
                   'mount -o remount,ro,bind "$0" "$0" && exec "$@"', str(mount), *command]
    else:
        spec.chmod(0o444)
        mount.chmod(0o555)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=env | {"FLOWSPEC_STATE_DIR": str(tmp_path / "state")},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    auth = {"Authorization": "Bearer read-only-test-token"}
    try:
        async with aiohttp.ClientSession(headers=auth) as http:
            base = f"http://127.0.0.1:{port}"
            async with wait(30):
                while True:
                    try:
                        async with http.get(f"{base}/healthz") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
            async with http.patch(f"{base}/admin/spec", json={"description": "changed"},
                                  headers={"Content-Type": "application/merge-patch+json"}) as r:
                status, body = r.status, await r.json()
            async with http.get(f"{base}/admin/spec") as r:
                version = (await r.json())["version"]
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)
        mount.chmod(0o755)
    assert status == 409 and body["error"] == "read_only_source", body
    assert "--store" in body["message"] and version == 1
    assert spec.read_text() == TEXT_BOT


TEXT_BOT = """\
flowspec: 1
name: mounted
nodes:
  caller: {type: transport.text}
  llm: {type: openai.responses}
edges:
  - caller -> llm -> caller
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_refused_save_is_logged_once_with_its_location_and_pointer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flowspec")
    async with following(tmp_path) as served:
        await served.call()
        started = len(caplog.records)
        served.path.write_text(VOICE.replace("voice: marin", "voice: 12"))
        await until(lambda: any("rejected" in r.getMessage()
                                for r in caplog.records[started:]), polls=400)
        assert served.reloader.store.version == 1
    refusals = [r for r in caplog.records[started:] if r.levelno >= logging.WARNING
                and r.name.startswith("flowspec")]
    (refusal,) = refusals
    message = refusal.getMessage()
    assert "bot.yaml:17:" in message and "/audio/output/voice" in message, message
