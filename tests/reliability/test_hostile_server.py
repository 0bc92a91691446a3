"""The hostile spec corpus (`hostile.py`) through a running server: as admin PUT bodies, as JSON
bodies no YAML parser sees (deep merge patches, huge numbers), and saved into the watched spec
file. Each is refused with located errors and a 4xx (never a 500), the running version keeps
serving, a live call's event loop never stalls, and time and memory stay bounded per case
(generous guards, not timings)."""

from __future__ import annotations

import asyncio
import io
import json
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from flowspec.runtime.bus import SpecReloaded
from tests.reload.conftest import Served, serving

from .conftest import Figures
from .hostile import EXPECTED, hostile_specs

TIME_GUARD_S = 10.0
MEMORY_GUARD_MB = 200.0
STALL_GUARD_S = 1.0
"""Longest the event loop may go without running a live call's work while a case is handled."""
MEASURED: dict[str, dict[str, float]] = {}


class LoopWatch:
    """The longest gap between ticks of a 10 ms timer: how long the event loop was held."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            self.longest = max(self.longest, now - last - 0.01)
            last = now

    def stop(self) -> None:
        self._stop.set()


@contextmanager
def guarded(kind: str, name: str) -> Iterator[None]:
    tracemalloc.start()
    started = time.monotonic()
    try:
        yield
    finally:
        took = time.monotonic() - started
        _now, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        MEASURED[f"{kind}/{name}"] = {"s": round(took, 3), "peak_mb": round(peak / 2**20, 1)}
    assert took < TIME_GUARD_S, f"{name}: {took:.1f} s"
    assert peak / 2**20 < MEMORY_GUARD_MB, f"{name}: {peak / 2**20:.0f} MB"


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(tmp_path, source=True) as s:
        yield s


def _located(errors: list[dict[str, Any]]) -> bool:
    return bool(errors) and all(e.get("line") is not None or e.get("pointer") is not None
                                for e in errors)


async def test_hostile_documents_through_the_admin_api(served: Served) -> None:
    _ws, _hello, record = await served.call()
    watch = LoopWatch()
    ticker = asyncio.ensure_future(watch.run())
    auth = served.auth
    url = f"http://{served.base}/admin/spec"
    try:
        for name, text in hostile_specs():
            with guarded("admin-put", name):
                body_bytes = io.BytesIO(text.encode("utf-8", "surrogatepass"))
                async with served.http.put(url, data=body_bytes, headers=auth) as response:
                    status, raw = response.status, await response.text()
            assert 400 <= status < 500, (name, status, raw[:300])
            body = json.loads(raw)
            if status == 422:
                assert EXPECTED[name] in {e["code"] for e in body["errors"]}, (name, raw[:300])
                assert _located(body["errors"]), name
            else:  # beyond the body limit: refused before it is read whole
                assert status == 413 and name.startswith("document-"), (name, status)
        for name, body in _json_bodies():
            with guarded("admin-patch", name):
                async with served.http.patch(url, data=io.BytesIO(body.encode()), headers=auth | {
                        "Content-Type": "application/merge-patch+json"}) as response:
                    status, raw = response.status, await response.text()
            assert status in (400, 413, 422), (name, status, raw[:300])
    finally:
        watch.stop()
        await ticker
    assert served.reloader.store.version == 1
    assert len(record.received_of("session.update")) == 1  # the call never saw any of it
    MEASURED["admin/longest-loop-stall"] = {"s": round(watch.longest, 3)}
    assert watch.longest < STALL_GUARD_S, watch.longest


def _json_bodies() -> list[tuple[str, str]]:
    """Merge patches that reach the store as data, never as YAML text."""
    return [
        ("deep-merge-patch", '{"description": ' + "[" * 50_000 + "]" * 50_000 + "}"),
        ("deep-merge-patch-objects", '{"nodes": ' + '{"a": ' * 150 + "1" + "}" * 150 + "}"),
        ("huge-number-patch", '{"nodes": {"llm": {"settings": {"temperature": '
         + "9" * 5000 + "}}}}"),
        ("huge-float-patch", '{"nodes": {"llm": {"settings": {"temperature": 1e999}}}}'),
        ("many-nodes-patch", json.dumps({"nodes": {f"n{i}": {"type": "transport.text"}
                                                   for i in range(10_000)}})),
    ]


async def test_a_large_valid_document_is_validated_off_the_event_loop(served: Served) -> None:
    """600 tool nodes: a valid spec that takes seconds to validate. After the whole validation
    (in a worker thread) the admin API refuses it: each handler is code it may not add."""
    _ws, _hello, record = await served.call()
    tools = "".join(f"  t{i}:\n    type: tool.python\n    handler: json:dumps\n"
                    f"    description: Tool {i}.\n" for i in range(600))
    text = served.reloader.store.text.replace("edges:", tools + "edges:")
    watch = LoopWatch()
    ticker = asyncio.ensure_future(watch.run())
    try:
        with guarded("admin-put", "valid-600-tools"):
            async with served.http.put(f"http://{served.base}/admin/spec",
                                       data=io.BytesIO(text.encode()),
                                       headers=served.auth) as response:
                status, body = response.status, await response.json()
    finally:
        watch.stop()
        await ticker
    assert status == 403, body
    assert len(body["errors"]) == 600
    assert {e["code"] for e in body["errors"]} == {"admin.privileged"}
    assert all(e["line"] for e in body["errors"])
    MEASURED["admin/valid-600-tools-loop-stall"] = {"s": round(watch.longest, 3)}
    assert watch.longest < STALL_GUARD_S, watch.longest
    assert len(record.received_of("session.update")) == 1


async def test_hostile_files_saved_into_the_watched_spec(served: Served) -> None:
    _ws, _hello, record = await served.call()
    rejected: list[SpecReloaded] = []
    arrived = asyncio.Event()

    def note(event: object) -> None:
        if isinstance(event, SpecReloaded) and not event.ok:
            rejected.append(event)
            arrived.set()

    served.server.bus.subscribe(note)
    stop = asyncio.Event()
    cases = [(n, t) for n, t in hostile_specs() if not n.startswith("document-")]
    async with asyncio.TaskGroup() as tg:
        tg.create_task(served.reloader.follow(stop))
        await asyncio.sleep(0.2)
        for name, text in cases:
            arrived.clear()
            with guarded("file", name):
                served.path.write_bytes(text.encode("utf-8", "surrogatepass"))
                async with asyncio.timeout(TIME_GUARD_S):
                    await arrived.wait()
            assert EXPECTED[name] in rejected[-1].codes, (name, rejected[-1].message)
        # Over the size bound the file is not even read: it is reported, nothing else.
        for name, text in hostile_specs():
            if name.startswith("document-"):
                with guarded("file", name):
                    served.path.write_text(text)
                    await asyncio.sleep(0.3)
        stop.set()
    assert served.reloader.store.version == 1
    assert len(record.received_of("session.update")) == 1
    status, body = await served.get("/healthz")
    assert status == 200 and body["specs"][0]["version"] == 1


def test_zz_figures(figures: Figures) -> None:
    assert MEASURED, "the tests above record their figures"
    slowest = max(MEASURED.items(), key=lambda item: item[1].get("s", 0))
    peak = max(v.get("peak_mb", 0) for v in MEASURED.values())
    stalls = {k: v["s"] for k, v in MEASURED.items() if "stall" in k}
    figures.record("hostile/server", cases=len(MEASURED), slowest=slowest[0],
                   slowest_s=slowest[1]["s"], peak_mb=peak, loop_stalls_s=stalls)
