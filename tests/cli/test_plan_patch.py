"""`flowspec plan` and `flowspec patch`: exit codes, the printed plan, in-place edits that keep
comments, and patching a running server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest
from aiohttp import web

from flowspec.cli import main
from flowspec.server.admin import attach
from flowspec.server.app import Server
from flowspec.server.guard import write_token
from flowspec.spec.compile import compile_text
from flowspec.spec.load import parse

ROOT = Path(__file__).resolve().parents[2]
VOICE = (ROOT / "specs" / "voice-assistant.yaml").read_text()


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_plan_prints_the_exact_session_update(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    old = write(tmp_path, "old.yaml", VOICE)
    new = write(tmp_path, "new.yaml", VOICE.replace("Keep answers short.", "Be a pirate."))
    assert main(["plan", old, new]) == 0
    out = capsys.readouterr().out
    assert "/nodes/llm/settings/system_instruction  [live] live" in out
    wire = {"type": "session.update", "session": {
        "type": "realtime",
        "instructions": "You are a helpful, concise assistant. Be a pirate."}}
    assert json.dumps(wire) in out
    assert main(["plan", old, new, "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["nodes"][0]["wire"] == wire and plan["ok"] is True


def test_plan_exits_1_for_an_invalid_or_rejected_change_and_2_without_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write(tmp_path, "old.yaml", VOICE)
    bad = write(tmp_path, "bad.yaml", VOICE.replace("voice: marin", "voice: 7"))
    assert main(["plan", old, bad]) == 1
    out = capsys.readouterr().out
    assert "bad.yaml:20:" in out and "nothing would change" in out
    moved = write(tmp_path, "moved.yaml", VOICE.replace(
        "type: transport.websocket", "type: transport.websocket\n    path: /elsewhere"))
    assert main(["plan", old, moved]) == 1
    assert "rejected" in capsys.readouterr().out
    assert main(["plan", old, str(tmp_path / "missing.yaml")]) == 2


def test_patch_edits_the_file_in_place_keeping_comments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "bot.yaml", VOICE)
    assert main(["patch", path, "--set", "/nodes/llm/settings/session_properties/audio/output/"
                 "voice=cedar", "--set", "/nodes/llm/settings/session_properties/audio/input/"
                 "turn_detection=false"]) == 0
    text = Path(path).read_text()
    assert "output: {voice: cedar, speed: 1.0}" in text
    assert "turn_detection: false" in text
    for comment in ("# tool nodes by id", "# runtime settings: hot-reloadable",
                    "# chain shorthand: caller.out -> llm.in, llm.out -> caller.in",
                    "# yaml-language-server: $schema=../schemas/flowspec.schema.json"):
        assert comment in text
    assert "2 change(s) written" in capsys.readouterr().out
    patch = json.dumps([{"op": "replace", "path": "/nodes/llm/settings/system_instruction",
                         "value": "Hi."}])
    assert main(["patch", path, "--json-patch", patch]) == 0
    assert "system_instruction: Hi.\n" in Path(path).read_text()


def test_patch_refuses_an_invalid_change_and_leaves_the_file_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "bot.yaml", VOICE)
    assert main(["patch", path, "--set", "/nodes/llm/settings/temperature=2"]) == 1
    err = capsys.readouterr().err
    assert "bot.yaml:" in err and "the file is unchanged" in err and "Traceback" not in err
    assert main(["patch", path, "--json-patch", '[{"op": "remove", "path": "/nope"}]']) == 1
    assert main(["patch", path, "--set", "no-pointer"]) == 2
    assert main(["patch", path]) == 2
    assert Path(path).read_text() == VOICE


async def test_patch_reaches_a_running_server(tmp_path: Path) -> None:
    text = VOICE.replace("type: openai.realtime\n", "type: openai.realtime\n    api_key: x\n")
    graph = compile_text(text, "bot.yaml", {}).raise_for_errors()
    server = Server([graph])
    admin = attach(server, [(graph, text)], lambda g: g, env={})
    runner = web.AppRunner(server.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}"
    state = {"FLOWSPEC_STATE_DIR": str(tmp_path / "state")}
    env = {k: v for k, v in os.environ.items() if k != "FLOWSPEC_ADMIN_TOKEN"} | state
    try:
        async def flowspec(*args: str) -> tuple[int, str]:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "flowspec.cli", *args, cwd=ROOT, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await process.communicate()
            return process.returncode or 0, out.decode()

        code, out = await flowspec("patch", "--server", url, "--set",
                                   "/nodes/llm/settings/system_instruction=Hello.")
        assert code == 2 and "no admin token" in out, out  # no token anywhere yet
        # The token file the server writes at start, where the CLI looks for it.
        write_token(admin.token, port, state)
        code, out = await flowspec("patch", "--server", url, "--set",
                                   "/nodes/llm/settings/system_instruction=Hello.")
        assert code == 0, out
        # What the file patch prints: each change and where it applies, then the outcome.
        assert "replace /nodes/llm/settings/system_instruction  [live] live" in out
        assert "version 2 applied: 1 change(s); 0 live session(s)" in out
        assert admin.reloaders["weather-voice"].store.data["nodes"]["llm"]["settings"][
            "system_instruction"] == "Hello."
        code, out = await flowspec("patch", "--server", url, "--if-match", "1", "--format",
                                   "json", "--set", "/nodes/llm/settings/system_instruction=Late.")
        assert code == 1 and json.loads(out)["error"] == "conflict"
        code, out = await flowspec("patch", "--server", url, "--set",
                                   "/nodes/llm/settings/temperature=0.1")
        assert code == 1 and "/nodes/llm/settings/temperature" in out
        assert out.rstrip().splitlines()[-1].startswith("flowspec patch: The change was "
                                                        "rejected; nothing changed. (HTTP 422")
    finally:
        await site.stop()
        await server.drain(5)
        await runner.cleanup()


def test_plan_marks_privileged_changes_and_connection_checks_as_live(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write(tmp_path, "old.yaml", VOICE)
    new = write(tmp_path, "new.yaml", VOICE.replace(
        "handler: flowspec.examples.weather:get_weather", "handler: os:system").replace(
        "    audio: {encoding: pcm16, sample_rate: 24000}\n",
        "    audio: {encoding: pcm16, sample_rate: 24000}\n"
        "    allowed_origins: [https://app.example.com]\n    max_sessions: 5\n"))
    assert main(["plan", old, new]) == 0
    out = capsys.readouterr().out
    # The change's line, its values line, then its notes (indented deeper than the next change).
    handler = re.split(r"\n  \S", out.split("/nodes/get_weather/handler", 1)[1])[0]
    assert "privileged: it sets code, a file or a URL" in handler
    assert "--admin-allow-code" in handler
    assert "/nodes/caller/allowed_origins  [live] live: checked for each new connection" in out
    assert "/nodes/caller/max_sessions  [live] live: checked for each new connection" in out
    assert main(["plan", old, new, "--format", "json"]) == 0
    changes = {c["pointer"]: c for c in json.loads(capsys.readouterr().out)["changes"]}
    assert changes["/nodes/get_weather/handler"]["privileged"] is True
    assert "privileged" not in changes["/nodes/caller/allowed_origins"]


def test_set_keeps_text_whole_and_types_other_fields(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bot.yaml", VOICE)
    assert main(["patch", path, "--set", "/nodes/llm/settings/system_instruction=You are #1. "
                 "Be brief", "--set", "/nodes/get_weather/timeout_s=3"]) == 0
    data = parse(Path(path).read_text()).data
    assert data["nodes"]["llm"]["settings"]["system_instruction"] == "You are #1. Be brief"
    assert data["nodes"]["get_weather"]["timeout_s"] == 3
    assert main(["patch", path, "--set-json",
                 '/nodes/llm/settings/session_properties/audio/input/turn_detection='
                 '{"type": "server_vad"}']) == 0
    data = parse(Path(path).read_text()).data
    assert data["nodes"]["llm"]["settings"]["session_properties"]["audio"]["input"][
        "turn_detection"] == {"type": "server_vad"}
    capsys.readouterr()
    before = Path(path).read_text()
    assert main(["patch", path, "--set", "/nodes/nope/x=1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("flowspec patch: ") and "/nodes/nope does not exist" in err
    assert "transport.websocket" not in err and Path(path).read_text() == before
