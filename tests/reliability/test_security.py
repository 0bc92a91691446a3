"""Secrets never leave the process; spec values cannot reach files or schemes they should not.

The canary test runs `flowspec serve` (and `graph`, `validate`) in subprocesses with a canary
`OPENAI_API_KEY`, drives a conversation and a provider error through an in-process emulator, and
greps every output: logs (text and JSON), error replies, /metrics, /healthz, the page and its
assets, `flowspec graph` and `flowspec validate --format json`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from flowspec.emulator import Emulator
from flowspec.errors import Severity
from flowspec.frames import FunctionCallFrame
from flowspec.spec.compile import compile_text

from .conftest import Figures

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e"
ROOT = Path(__file__).resolve().parents[2]
FLOWSPEC = [sys.executable, "-m", "flowspec.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bot(emu: Emulator, page: bool) -> str:
    entry = ("  caller: {type: transport.websocket}\n" if page
             else "  caller: {type: transport.text}\n")
    model = (f"  llm:\n    type: openai.realtime\n    base_url: {emu.ws_base_url}/realtime\n"
             if page else
             f"  llm:\n    type: openai.responses\n    base_url: {emu.http_base_url}\n"
             f"    ws_url: {emu.ws_base_url}/responses\n    api_key: ${{OPENAI_API_KEY}}\n")
    return f"flowspec: 1\nname: canary\nnodes:\n{entry}{model}edges:\n  - caller -> llm -> caller\n"


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *FLOWSPEC, *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=ROOT)
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def serve_and_drive(spec: Path, env: dict[str, str], log_format: str,
                          page: bool) -> str:
    """Serve `spec`, hold one conversation (its second turn fails at the provider), read every
    HTTP surface, stop the server; returns everything that came out."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *FLOWSPEC, "serve", str(spec), "--port", str(port), "--log-format", log_format,
        "--no-watch", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, cwd=ROOT)
    seen: list[str] = []
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(400):  # wait for the server to listen (a hang guard)
                try:
                    async with http.get(f"{base}/healthz") as response:
                        seen.append(await response.text())
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            path = "/ws" if page else "/chat"
            async with http.ws_connect(f"ws://127.0.0.1:{port}{path}") as ws:
                for text in ("hello", "please fail now", "hello again"):
                    await ws.send_json({"type": "text", "text": text})
                    if "fail" in text:
                        continue  # a provider error: logged, and maybe an `error` message
                    async with asyncio.timeout(20):  # a hang guard
                        async for message in ws:
                            if message.type is not aiohttp.WSMsgType.TEXT:
                                continue
                            seen.append(message.data)
                            event = json.loads(message.data)
                            if event["type"] == "response.ended" \
                                    and event.get("status") == "completed":
                                break
                await ws.send_json({"type": "not a thing"})
                seen.append(str((await ws.receive()).data))
            surfaces = ["/metrics", "/healthz", "/admin/spec"]
            if page:
                surfaces += ["/", "/flowspec/config.json", "/flowspec/static/app.js",
                             "/flowspec/static/capture.js"]
            for surface in surfaces:
                async with http.get(f"{base}{surface}") as response:
                    seen.append(f"{surface} {response.status} {await response.text()}")
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(process.communicate(), 30)
    seen.append(out.decode())
    return "\n".join(seen)


@pytest.mark.parametrize("page", [False, True], ids=["responses-text", "realtime-page"])
async def test_a_canary_key_never_appears_in_any_output(tmp_path: Path, page: bool,
                                                         figures: Figures) -> None:
    env = {**os.environ, "OPENAI_API_KEY": CANARY, "PYTHONUNBUFFERED": "1"}
    async with Emulator.start(pace=0, keep_records=True) as emu:
        # A provider error the call survives (a refused key would end it before the last turn).
        emu.load_script("rules: [{when: {contains: fail}, fail: {type: invalid_request_error, "
                        "code: invalid_value, message: Invalid value for the request}}]",
                        text=True)
        spec = tmp_path / "canary.yaml"
        spec.write_text(bot(emu, page))
        outputs = {}
        for log_format in ("text", "json"):
            outputs[f"serve --log-format {log_format}"] = await serve_and_drive(
                spec, env, log_format, page)
        # The key reached the provider (so it was in use), and only there.
        auth = [v for r in emu.connections for k, v in r.headers.items()
                if k.lower() == "authorization"]
        assert f"Bearer {CANARY}" in auth
    bad = tmp_path / "bad.yaml"
    bad.write_text(bot(emu, False).replace("api_key: ${OPENAI_API_KEY}",
                                           "api_key: ${OPENAI_API_KEY}\n    settings:\n"
                                           "      temperature: ${OPENAI_API_KEY}"))
    for name, args in {"graph": ["graph", str(spec)],
                       "graph dot": ["graph", str(spec), "--format", "dot"],
                       "validate": ["validate", str(spec), "--format", "json"],
                       "validate invalid": ["validate", str(bad), "--format", "json"],
                       "validate invalid text": ["validate", str(bad)]}.items():
        code, text = await run_cli(*args, env=env)
        outputs[name] = text
        if name.startswith("validate invalid"):
            assert code == 1 and "temperature" in text, text
    for name, text in outputs.items():
        assert text, name
        assert CANARY not in text, f"{name} printed the key:\n{text}"
        assert CANARY[8:] not in text, name  # nor a recognisable part of it
    figures.record(f"security/canary/{'page' if page else 'text'}",
                   outputs_checked=len(outputs), bytes_checked=sum(map(len, outputs.values())),
                   leaks=0)


def test_spec_errors_redact_interpolated_values() -> None:
    text = ("flowspec: 1\nname: t\nnodes:\n  caller: {type: transport.text}\n  llm:\n"
            "    type: openai.responses\n    settings: {temperature: '${KEY}', "
            "model: '${KEY}'}\nedges: [caller -> llm -> caller]\n")
    report = compile_text(text, env={"KEY": CANARY})
    assert not report.ok
    assert all(CANARY not in str(d) and CANARY not in repr(d) for d in report.diagnostics)


# -- spec values and the file system / URL schemes ------------------------------------------

BASE = """\
flowspec: 1
name: t
nodes:
  caller: {{type: transport.websocket}}
  llm: {{type: openai.realtime}}
  {extra}
edges:
  - caller -> llm -> caller
  {edges}
"""


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x",
                                 "gopher://127.0.0.1:70/", "unix:///var/run/docker.sock",
                                 "/etc/passwd", "javascript:alert(1)"])
def test_tool_http_only_calls_http_and_https(url: str) -> None:
    text = BASE.format(extra=(
        f"fetch: {{type: tool.http, url: '{url}', description: d, "
        "parameters: {type: object}}"), edges="").replace(
        "llm: {type: openai.realtime}", "llm: {type: openai.realtime, tools: [fetch]}")
    report = compile_text(text, env={})
    assert [d.pointer for d in report.errors] == ["/nodes/fetch/url"], report.diagnostics


async def test_tool_http_refuses_other_schemes_at_call_time_too() -> None:
    from flowspec.nodes.tool_http import HttpToolNode
    from flowspec.runtime import Executor
    from flowspec.spec.models.tools import HttpToolSpec
    from flowspec.testing import RecorderNode, graph, make_registry, until

    spec = HttpToolSpec.model_construct(
        type="tool.http", url="file:///etc/passwd", method="POST", headers={},
        timeout_s=5.0, description="d", parameters={"type": "object"},
        cancel_on_interruption=True)
    compiled = graph({"llm": "test.recorder", "fetch": spec}, tools={"llm": ["fetch"]})
    registry = make_registry()
    registry.register("tool.http", HttpToolNode)
    async with Executor(registry=registry).session(compiled) as session:
        llm = session.node("llm")
        assert isinstance(llm, RecorderNode)
        ctx = llm.ctx
        await ctx.call_tool(FunctionCallFrame(call_id="c1", name="fetch", arguments="{}"))
        await until(lambda: llm.frames)
    result = llm.frames[-1]
    assert getattr(result, "is_error", False), result
    assert "root:x:" not in str(result), result


@pytest.mark.parametrize(("node", "field"), [
    ("{type: log.transcript, path: /etc/cron.d/flowspec}", "path"),
    ("{type: log.transcript, path: ../../home/user/.bashrc}", "path"),
    ("{type: audio.record, path: 'recordings/../../../etc/x.wav'}", "path"),
    ("{type: audio.record, path: /tmp/x.wav}", "path"),
])
def test_record_and_log_paths_are_confined(node: str, field: str) -> None:
    text = BASE.format(extra=f"sink: {node}", edges="- llm -> sink")
    report = compile_text(text, env={})
    codes = {(d.code, d.pointer) for d in report.errors}
    assert ("spec.path-outside", f"/nodes/sink/{field}") in codes, report.diagnostics


def test_relative_record_and_log_paths_are_fine() -> None:
    text = BASE.format(extra="sink: {type: log.transcript, path: 'logs/{date}/{session_id}.jsonl'}",
                       edges="- llm -> sink")
    report = compile_text(text, env={})
    assert report.ok, report.diagnostics


@pytest.mark.parametrize("value", ["${file:/etc/passwd}", "${/etc/passwd}",
                                   "${env:HOME/../etc/passwd}"])
def test_interpolation_reads_the_environment_only(value: str) -> None:
    text = BASE.format(extra="", edges="").replace("name: t", f"name: t\ndescription: '{value}'")
    report = compile_text(text, env={"HOME": "/root"})
    assert [d.code for d in report.errors] == ["env.bad-reference"], report.diagnostics
    assert "root:x" not in str(report.diagnostics)


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['touch /tmp/pwned']",
                                 "!!python/name:os.system", "!include /etc/passwd"])
def test_yaml_tags_construct_nothing(tag: str, tmp_path: Path) -> None:
    text = BASE.format(extra="", edges="").replace("name: t", f"name: t\ndescription: {tag}")
    report = compile_text(text, env={})
    assert all(d.severity is not Severity.ERROR or d.line for d in report.diagnostics)
    assert not Path("/tmp/pwned").exists()
    assert "root:x" not in str(report.document.data if report.document else "")
