"""The watched spec file: a save reloads through the same pipeline; a bad save changes nothing."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from flowspec.reload.watch import reload_file, watch_file
from flowspec.testing import until

from .conftest import VOICE, serving, wait, without_id


async def test_saving_the_file_updates_live_sessions(tmp_path: Path) -> None:
    async with serving(tmp_path) as served:
        _ws, _hello, record = await served.call()
        stop = asyncio.Event()
        new_text = VOICE.replace("You are terse.", "You are a pirate.")
        async with asyncio.TaskGroup() as tg:
            tg.create_task(watch_file(served.path, served.reloader, stop, debounce_ms=10))
            # The watcher starts listening at some point after the task starts: save until it
            # has seen one (each save of the same text is one more change event).
            for _attempt in range(200):
                served.path.write_text(new_text)
                try:
                    await until(lambda: served.reloader.store.version == 2, polls=50)
                    break
                except AssertionError:
                    continue
            stop.set()
        assert served.reloader.store.version == 2
        async with wait():
            updates = await record.wait_received("session.update", count=2)
        assert without_id(updates[1])["session"] == {"type": "realtime",
                                                     "instructions": "You are a pirate."}


async def test_a_save_that_does_not_validate_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="flowspec.reload")
    async with serving(tmp_path) as served:
        _ws, _hello, record = await served.call()
        served.path.write_text(VOICE.replace("voice: marin", "voice: 12"))
        result = await reload_file(served.path, served.reloader)
        assert result is not None and result.status == 422
        [error] = result.body["errors"]
        assert (error["line"], error["pointer"]) == (
            17, "/nodes/llm/settings/session_properties/audio/output/voice")
        assert served.reloader.store.text == VOICE and served.reloader.store.version == 1
        assert len(record.received_of("session.update")) == 1
        assert any("bot.yaml:17:" in r.getMessage() for r in caplog.records)
        # Saving the running text again (or touching another file) does nothing at all.
        served.path.write_text(VOICE)
        assert await reload_file(served.path, served.reloader) is None
