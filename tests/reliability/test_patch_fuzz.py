"""The patch endpoint under random input: JSON Patches, merge patches and raw bodies.

Whatever arrives, the answer is JSON with a status among the documented ones (never a 500), a
refused patch changes nothing (same version, same text), an accepted one bumps the version by one
and leaves a valid spec that keeps its comments (a patch that changes nothing keeps the version),
no answer carries the secret, and the server keeps answering.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import aiohttp
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from flowspec.server.admin import attach
from flowspec.server.app import Server
from flowspec.spec.compile import compile_text

from .conftest import Figures

SECRET = "sk-canary-patch-5e1f0c"
SPEC = """\
flowspec: 1
name: fuzz-bot   # a comment that must survive
nodes:
  caller: {type: transport.text}
  llm:
    type: openai.responses
    api_key: ${MY_KEY}
    settings: {system_instruction: Be brief., temperature: 0.5}
edges:
  - caller -> llm -> caller
"""
DOCUMENTED = {200, 400, 403, 409, 412, 413, 415, 422}
POINTERS = [
    "", "/name", "/description", "/nodes", "/nodes/llm", "/nodes/llm/type", "/nodes/llm/settings",
    "/nodes/llm/settings/temperature", "/nodes/llm/settings/system_instruction",
    "/nodes/llm/settings/model", "/nodes/llm/api_key", "/nodes/caller/path", "/edges",
    "/edges/0", "/edges/-", "/nodes/ghost", "/nodes/llm/settings/reasoning/effort", "/~1x/~0y",
]
TALLY: Counter[str] = Counter()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.sampled_from(["gpt-4.1", "Be terse.", "${MY_KEY}", "${NOPE}"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8,
)
operations = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "frobnicate"]),
     "path": st.sampled_from(POINTERS) | st.text(max_size=12)},
    optional={"value": json_values, "from": st.sampled_from(POINTERS)},
)
json_patches = st.lists(operations, max_size=4).map(json.dumps)
merge_patches = st.recursive(
    json_values,
    lambda inner: st.dictionaries(
        st.sampled_from(["name", "nodes", "llm", "settings", "temperature", "system_instruction",
                         "edges", "caller", "type", "bogus"]), inner, max_size=3),
    max_leaves=8,
).map(json.dumps)
bodies = st.one_of(
    st.tuples(st.just("application/json-patch+json"), json_patches),
    st.tuples(st.just("application/merge-patch+json"), merge_patches),
    st.tuples(st.sampled_from(["application/json-patch+json", "application/merge-patch+json",
                               "text/plain", "application/json"]),
              st.text(max_size=60) | st.binary(max_size=60).map(lambda b: b.decode("latin-1"))),
)
if_matches = st.sampled_from([None, '"1"', "1", "*", '"7"', 'W/"1"', "garbage"])


async def _exchange(content_type: str, body: str, if_match: str | None) -> str:
    env = {"MY_KEY": SECRET}
    graph = compile_text(SPEC, "fuzz.yaml", env).raise_for_errors()
    server = Server([graph])
    admin = attach(server, [(graph, SPEC)], lambda g: g, token=None, env=env)
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        auth = {"Authorization": f"Bearer {admin.token}"}
        async with aiohttp.ClientSession(headers=auth) as http:
            async with http.get(f"{base}/admin/spec") as response:
                before = await response.json()
            headers = {"Content-Type": content_type}
            if if_match is not None:
                headers["If-Match"] = if_match
            async with http.patch(f"{base}/admin/spec", data=body.encode("utf-8", "replace"),
                                  headers=headers) as response:
                status, raw = response.status, await response.text()
            async with http.get(f"{base}/admin/spec") as response:
                after_raw = await response.text()
                after = json.loads(after_raw)
            async with http.get(f"{base}/healthz") as response:
                healthy = response.status == 200
    finally:
        await site.stop()
        await server.drain(5)
        await runner.cleanup()
    assert status in DOCUMENTED, (status, raw[:300])
    answer = json.loads(raw)
    assert isinstance(answer, dict)
    assert SECRET not in raw and SECRET not in after_raw
    assert healthy
    if status == 200 and after["version"] != before["version"]:
        assert after["version"] == before["version"] + 1
        assert compile_text(after["text"], "after.yaml", env).ok
        assert "# a comment that must survive" in after["text"]
    else:
        assert (after["version"], after["text"]) == (before["version"], before["text"])
    return str(status)


@given(body=bodies, if_match=if_matches)
def test_random_patches_never_break_the_endpoint(body: tuple[str, str],
                                                 if_match: str | None) -> None:
    content_type, text = body
    TALLY[asyncio.run(_exchange(content_type, text, if_match))] += 1


def test_zz_figures(figures: Figures) -> None:
    tried = sum(TALLY.values())
    figures.record("admin/patch", tried=tried, by_status=dict(sorted(TALLY.items())),
                   server_errors=0)
    assert tried >= 50
